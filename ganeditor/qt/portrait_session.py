"""Engine state of the portrait workflow (no Qt): generator, directions, aligned face, latent.

Its methods are called on the device lane's worker thread (one at a time) and return numpy
arrays and plain data only; the Qt panel never touches torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ganeditor.core.errors import GanEditorError
from ganeditor.core.progress import Task
from ganeditor.formats import load_checkpoint
from ganeditor.pipelines.align import AlignedFace, align_face
from ganeditor.pipelines.direction_io import generator_fingerprint, load_directions
from ganeditor.pipelines.directions import Direction, sefa
from ganeditor.pipelines.edit import PreviewRenderer, apply_edits
from ganeditor.pipelines.face_detect import detect_faces, find_weights, unavailable_message
from ganeditor.pipelines.generate import to_uint8
from ganeditor.pipelines.invert import METHODS, ProjectOptions, invert, with_noise
from ganeditor.pipelines.invert_pti import PTIOptions
from ganeditor.pipelines.invert_loss import make_inversion_loss
from ganeditor.pipelines.paste_back import paste_back

SEFA_DIRECTIONS = 8
LANDMARK_NAMES = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")
METHOD_LABELS = {
    "encoder": "Encoder (instant)",
    "w": "Optimise W (projector)",
    "wplus": "Optimise W+ (closer fit)",
    "pti": "W + pivotal tuning (best fit)",
    "progressive": "Progressive (encoder → W+ → PTI)",
}
assert set(METHOD_LABELS) == set(METHODS)


def to_uint8_rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 [H, W, C] -> uint8 [H, W, 3] (what detection and inversion take)."""
    a = pixels[:, :, None] if pixels.ndim == 2 else pixels
    a = (a >> 8).astype(np.uint8) if a.dtype == np.uint16 else a
    return np.repeat(a[:, :, :1], 3, axis=2) if a.shape[2] == 1 else np.ascontiguousarray(a[:, :, :3])


class PortraitSession:
    """Generator + directions + the face being edited."""

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.ckpt = None
        self.G: torch.nn.Module | None = None
        self.G_edit: torch.nn.Module | None = None  # G with the inversion's noise maps / PTI weights
        self.E: torch.nn.Module | None = None
        self.directions: list[Direction] = []
        self.directions_source = ""
        self.renderer: PreviewRenderer | None = None
        self.aligned: AlignedFace | None = None
        self.target: np.ndarray | None = None
        self.ws: torch.Tensor | None = None  # [1, num_ws, w_dim] on the device
        self.reconstruction: np.ndarray | None = None

    # ------------------------------------------------------------------------------ models
    def load_generator(self, path: str | Path, device: torch.device, directions: str | Path | None = None,
                       encoders: list[Path] = (), task: Task | None = None) -> dict[str, Any]:
        """Load a StyleGAN and its directions (library, else SeFa computed now); returns facts."""
        ckpt = load_checkpoint(path, device)
        G = ckpt.primary
        if not all(hasattr(G, a) for a in ("mapping", "synthesis", "num_ws")):
            raise GanEditorError(f"not a StyleGAN generator ({getattr(G, 'arch_name', type(G).__name__)})", path)
        if task:
            task.report(0.5, 1, "directions")
        fp = generator_fingerprint(G)
        dirs, source = [], ""
        if directions is not None:
            lib = load_directions(directions)
            lib.check_generator(fp, G.w_dim, directions)
            dirs, source = lib.directions, Path(directions).name
        if not dirs:
            dirs, source = sefa(G, None, SEFA_DIRECTIONS, sigma_samples=1000), "SeFa (computed now)"
        self.E = None
        for p in encoders:
            try:
                ek = load_checkpoint(p, device)
            except GanEditorError:
                continue
            E = ek.nets.get("E")
            if E is not None and ek.meta.get("generator_fingerprint") in (None, fp) and \
                    (E.num_ws, E.w_dim) == (G.num_ws, G.w_dim):  # fmt: skip
                self.E = E
                break
        self.device, self.ckpt, self.G, self.G_edit = device, ckpt, G, G
        self.directions, self.directions_source = dirs, source
        self.renderer = PreviewRenderer(G)
        self.ws = None
        self.reconstruction = None
        return {"resolution": int(G.img_resolution), "num_ws": int(G.num_ws), "w_dim": int(G.w_dim),
                "directions": [d.name for d in dirs], "groups": [d.source or "directions" for d in dirs],
                "source": source, "encoder": self.E is not None}  # fmt: skip

    # ------------------------------------------------------------------------------- faces
    @staticmethod
    def detector_available(device: torch.device | None = None) -> tuple[bool, str]:
        """(True, '') when MTCNN weights exist, else (False, the reason and what to do)."""
        return (True, "") if find_weights() is not None else (False, unavailable_message())

    def detect(self, photo: np.ndarray) -> list[dict[str, Any]]:
        """Faces in the photo, largest first: box, score, landmarks (numpy)."""
        faces = detect_faces(to_uint8_rgb(photo), self.device)
        return [{"box": f.box.astype(float), "score": float(f.score), "landmarks": f.landmarks.astype(float)} for f in faces]

    def align(self, photo: np.ndarray, landmarks: np.ndarray) -> dict[str, Any]:
        """Align the face given by ``landmarks`` at the generator's resolution."""
        if self.G is None:
            raise GanEditorError("load a generator first (Models panel)")
        self.aligned = align_face(photo, landmarks=landmarks, output_size=self.G.img_resolution, device=self.device)
        self.target = to_uint8_rgb(self.aligned.image)
        self.ws, self.reconstruction = None, None
        return {"image": self.target, "quad": self.aligned.quad.copy(), "notes": list(self.aligned.notes)}

    # ---------------------------------------------------------------------------- inversion
    def invert(self, method: str, steps: int, pti_steps: int, task: Task) -> Iterator[dict[str, Any]]:
        """Invert the aligned face; yields stage previews, returns the final figures."""
        if self.G is None or self.target is None:
            raise GanEditorError("align a face first")
        if method == "encoder" and self.E is None:
            raise GanEditorError("no encoder was found for this generator: choose an optimisation method")
        loss = make_inversion_loss(self.G, self.ckpt, self.device, "auto")
        final = None
        for up in invert(self.G, self.target, loss, method, E=self.E, task=task,
                         projection=ProjectOptions(steps=steps, preview_every=5),
                         pti=PTIOptions(steps=pti_steps, preview_every=5)):  # fmt: skip
            if up.result is not None:
                final = up.result
            elif up.image is not None:
                sr = up.stage_result
                yield {"stage": up.stage, "step": up.step, "steps": up.steps, "image": up.image,
                       "progress": float(up.extra.get("progress", 0.0)),
                       "psnr": None if sr is None else float(sr.psnr)}  # fmt: skip
        if final is None:
            raise GanEditorError("inversion produced no result")
        G_edit = final.G_tuned if final.G_tuned is not None else self.G
        if final.G_tuned is None and final.noise:
            G_edit = with_noise(self.G, {k: v.to(self.device) for k, v in final.noise.items()})
        self.G_edit = G_edit
        self.renderer = PreviewRenderer(G_edit)
        self.ws = final.ws.to(self.device)
        self.reconstruction = self.render({})
        return {"image": self.reconstruction, "cancelled": bool(final.cancelled), "loss": final.loss_name,
                "seconds": float(final.seconds),
                "stages": [{"method": s.method, "psnr": s.psnr, "ssim": s.ssim, "seconds": s.seconds,
                            "steps": s.steps_done, "cancelled": s.cancelled} for s in final.stages]}  # fmt: skip

    # ------------------------------------------------------------------------------ editing
    def render(self, alphas: dict[str, float]) -> np.ndarray:
        """The inverted face moved by each direction's α (cached synthesis blocks)."""
        if self.ws is None or self.renderer is None:
            raise GanEditorError("invert a face first")
        by_name = {d.name: d for d in self.directions}
        edits = [(by_name[n], a) for n, a in alphas.items() if a and n in by_name]
        with torch.no_grad():
            img = self.renderer.render(apply_edits(self.ws, edits))
        return to_uint8(img)[0]

    def paste(self, photo: np.ndarray, edited: np.ndarray) -> np.ndarray:
        """The full-resolution photo with the edited face blended in."""
        if self.aligned is None:
            raise GanEditorError("align a face first")
        return paste_back(photo, edited, self.aligned, reconstruction=self.reconstruction, device=self.device)


def warm_up(task: Task | None = None) -> None:
    """Import what the first inversion would import (torch.optim pulls in ~900 modules on its first
    step), so it happens once at start-up rather than as GUI stutter in the middle of work."""
    import ganeditor.pipelines.invert_pti  # noqa: F401
    import ganeditor.pipelines.train.engine  # noqa: F401

    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
