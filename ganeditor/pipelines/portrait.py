"""The portrait workflow without Qt: load a StyleGAN (with its directions and encoder), detect and
align a face, invert it, render slider edits, paste the edit back into the photo.

``ganeditor invert/edit/directions`` use the loading and photo helpers; the window keeps one
``PortraitSession`` per Portrait panel.  A session holds only the loaded networks and the current
latent, and its methods run on one worker thread at a time (the window's device lane); everything
the caller sees (the aligned face, the reconstruction, the figures) is returned as numpy arrays and
frozen dataclasses, and comes back in as arguments, so no object is shared between threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ganeditor.archs.generator_api import StyleGANGenerator, require_stylegan
from ganeditor.core.errors import CheckpointError, GanEditorError
from ganeditor.core.imageio import read_image, to_8bit
from ganeditor.core.model_store import resolve_model
from ganeditor.core.progress import Task
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.pipelines.align import AlignedFace, align_face
from ganeditor.pipelines.direction_io import generator_fingerprint, load_directions
from ganeditor.pipelines.directions import Direction, sefa
from ganeditor.pipelines.edit import PreviewRenderer, apply_edits
from ganeditor.pipelines.face_detect import Face, detect_faces, find_weights, get_detector, unavailable_message
from ganeditor.pipelines.generate import to_uint8
from ganeditor.pipelines.invert import METHODS, center_crop_resize, invert, with_noise
from ganeditor.pipelines.invert_loss import make_inversion_loss
from ganeditor.pipelines.invert_pti import add_delta, pti_delta
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


# ------------------------------------------------------------------------------- loading helpers
def to_uint8_rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 [H, W, C] or [H, W] -> uint8 [H, W, 3] (what detection and inversion take)."""
    a = pixels[:, :, None] if pixels.ndim == 2 else pixels
    a = to_8bit(a)
    return np.repeat(a[:, :, :1], 3, axis=2) if a.shape[2] == 1 else np.ascontiguousarray(a[:, :, :3])


def load_stylegan(network: str | Path, device: torch.device) -> tuple[Checkpoint, StyleGANGenerator]:
    """(Checkpoint, generator) for a StyleGAN file or model name; one-line error for other networks."""
    ckpt = load_checkpoint(resolve_model(network), device)
    return ckpt, require_stylegan(ckpt.primary, ckpt.path)


def load_encoder(path: str | Path, G: StyleGANGenerator, device: torch.device) -> torch.nn.Module:
    """The encoder (role 'E') of an encoder checkpoint, checked against the generator."""
    ck = load_checkpoint(resolve_model(path), device)
    if "E" not in ck.nets:
        raise CheckpointError("not an encoder checkpoint (no network with role 'E')", ck.path)
    E = ck.nets["E"]
    fp = ck.meta.get("generator_fingerprint")
    if fp and fp != generator_fingerprint(G):
        raise CheckpointError("this encoder was trained for another generator", ck.path)
    if (E.num_ws, E.w_dim) != (G.num_ws, G.w_dim):
        raise CheckpointError(f"encoder predicts [{E.num_ws}, {E.w_dim}], the generator needs [{G.num_ws}, {G.w_dim}]", ck.path)
    return E


def prepare_photo(path: str | Path, resolution: int, align: str | np.ndarray = "auto",
                  device: torch.device | str = "cpu") -> np.ndarray:
    """Read a photo and bring it to the generator's resolution: the aligned face ('auto' detects it,
    or landmark points [N, 2]) or, with ``align='none'``, a centre crop."""
    px = to_uint8_rgb(read_image(path).pixels)
    if isinstance(align, str) and align == "none":
        return center_crop_resize(px, resolution)
    return np.asarray(align_face(px, landmarks=align, output_size=resolution, device=device).image)


# ----------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class GeneratorInfo:
    """What a loaded generator offers the editor."""

    resolution: int
    num_ws: int
    w_dim: int
    directions: tuple[str, ...]  # direction names, in library order
    groups: tuple[str, ...]  # each direction's family ('interfacegan', 'sefa', ...)
    source: str  # where the directions came from
    encoder: bool  # an encoder made for this generator was found
    fingerprint: str


@dataclass(frozen=True)
class InversionPreview:
    """A stage preview of a running inversion."""

    stage: str
    step: int
    steps: int
    image: np.ndarray  # uint8 [R, R, 3]
    progress: float  # 0..1 over all stages
    psnr: float | None  # set when a stage ended


@dataclass(frozen=True)
class StageFigures:
    method: str
    psnr: float
    ssim: float
    seconds: float
    steps: int
    cancelled: bool


@dataclass(frozen=True)
class InversionSummary:
    """The end of an inversion: the reconstruction and each stage's figures."""

    image: np.ndarray  # uint8 [R, R, 3]: the inverted face rendered with no edit
    cancelled: bool  # stopped early: the best result so far
    loss: str
    stages: tuple[StageFigures, ...]
    latent: "LatentState"  # what a project file keeps to bring this inversion back


@dataclass(frozen=True)
class LatentState:
    """Everything needed to bring an inversion back (project files): numpy only."""

    ws: np.ndarray  # float32 [1, num_ws, w_dim]
    noise: dict[str, np.ndarray]  # optimised noise maps by buffer name (may be empty)
    pti_delta: dict[str, np.ndarray]  # tuned − base generator weights by state-dict key (empty without PTI)
    fingerprint: str  # the generator they belong to


@dataclass(frozen=True)
class WeightPaths:
    """Weights chosen by the user (e.g. in Preferences), tried before the usual places."""

    vgg16: str = ""  # VGG16 weights file (enables LPIPS)
    mtcnn_dir: str = ""  # folder with pnet.pt, rnet.pt, onet.pt


def detector_available(paths: WeightPaths = WeightPaths()) -> tuple[bool, str]:
    """(True, '') when MTCNN weights exist, else (False, the reason and what to do)."""
    return (True, "") if find_weights(paths.mtcnn_dir or None) is not None else (False, unavailable_message())


def find_encoder(paths: list[Path], G: StyleGANGenerator, device: torch.device) -> torch.nn.Module | None:
    """The first encoder among ``paths`` that fits ``G`` (unreadable or unfit ones are skipped)."""
    for p in paths:
        try:
            return load_encoder(p, G, device)
        except GanEditorError:
            continue
    return None


# ----------------------------------------------------------------------------------- session
class PortraitSession:
    """The loaded generator, its directions and encoder, and the current latent (worker thread only)."""

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.ckpt: Checkpoint | None = None
        self.G: StyleGANGenerator | None = None
        self.G_edit: torch.nn.Module | None = None  # G with the inversion's noise maps / PTI weights
        self.E: torch.nn.Module | None = None
        self.directions: list[Direction] = []
        self.renderer: PreviewRenderer | None = None
        self.ws: torch.Tensor | None = None  # [1, num_ws, w_dim] on the device
        self.noise: dict[str, torch.Tensor] = {}  # the inversion's noise maps (W/W+ methods)
        self.G_tuned: torch.nn.Module | None = None  # the PTI-tuned generator

    def load_generator(self, path: str | Path, device: torch.device, directions: str | Path | None = None,
                       encoders: list[Path] = (), task: Task | None = None) -> GeneratorInfo:
        """Load a StyleGAN and its directions (library, else SeFa computed now).  On any error the
        session keeps the generator it had."""
        ckpt, G = load_stylegan(path, device)
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
        E = find_encoder(list(encoders), G, device)
        self.device, self.ckpt, self.G, self.G_edit, self.E = device, ckpt, G, G, E
        self.directions = dirs
        self.renderer = PreviewRenderer(G)
        self.ws, self.noise, self.G_tuned = None, {}, None
        return GeneratorInfo(int(G.img_resolution), int(G.num_ws), int(G.w_dim), tuple(d.name for d in dirs),
                             tuple(d.source or "directions" for d in dirs), source, E is not None, fp)

    def _need_generator(self) -> StyleGANGenerator:
        if self.G is None:
            raise GanEditorError("load a generator first (Models panel)")
        return self.G

    # ------------------------------------------------------------------------------- faces
    def detect(self, photo: np.ndarray, paths: WeightPaths = WeightPaths()) -> list[Face]:
        """Faces in the photo, largest first (box, score, landmarks in photo pixels)."""
        detector = get_detector(self.device, paths.mtcnn_dir or None)
        return detect_faces(to_uint8_rgb(photo), self.device, detector)

    def align(self, photo: np.ndarray, landmarks: np.ndarray) -> AlignedFace:
        """The face given by ``landmarks`` aligned at the generator's resolution (image as uint8 RGB)."""
        G = self._need_generator()
        aligned = align_face(photo, landmarks=landmarks, output_size=G.img_resolution, device=self.device)
        aligned.image = to_uint8_rgb(aligned.image)
        return aligned

    # ---------------------------------------------------------------------------- inversion
    def invert(self, target: np.ndarray, method: str, steps: int, pti_steps: int, task: Task,
               paths: WeightPaths = WeightPaths()) -> Iterator[InversionPreview]:
        """Invert the aligned face ``target``; yields stage previews, returns an InversionSummary."""
        G = self._need_generator()
        if method == "encoder" and self.E is None:
            raise GanEditorError("no encoder was found for this generator: choose an optimisation method")
        loss = make_inversion_loss(G, self.ckpt, self.device, "auto", paths.vgg16 or None)
        final = None
        for up in invert(G, target, loss, method, steps, pti_steps, E=self.E, task=task, preview_every=5):
            if up.result is not None:
                final = up.result
            elif up.image is not None:
                sr = up.stage_result
                yield InversionPreview(up.stage, up.step, up.steps, up.image, float(up.extra.get("progress", 0.0)),
                                       None if sr is None else float(sr.psnr))  # fmt: skip
        if final is None:
            raise GanEditorError("inversion produced no result")
        noise = {k: v.to(self.device) for k, v in (final.noise or {}).items()}
        self._set_latent(final.ws, noise, final.G_tuned)
        stages = tuple(StageFigures(s.method, float(s.psnr), float(s.ssim), float(s.seconds), int(s.steps_done),
                                    bool(s.cancelled)) for s in final.stages)  # fmt: skip
        return InversionSummary(self.render({}), bool(final.cancelled), final.loss_name, stages, self.latent_state())

    def _set_latent(self, ws: torch.Tensor, noise: dict[str, torch.Tensor], G_tuned: torch.nn.Module | None) -> None:
        G = self._need_generator()
        G_edit = G_tuned if G_tuned is not None else (with_noise(G, noise) if noise else G)
        self.G_edit, self.renderer = G_edit, PreviewRenderer(G_edit)
        self.ws, self.noise, self.G_tuned = ws.to(self.device), noise, G_tuned

    def latent_state(self) -> LatentState:
        """The current inversion as numpy (for a project file)."""
        G = self._need_generator()
        if self.ws is None:
            raise GanEditorError("invert a face first")
        delta = {}
        if self.G_tuned is not None:
            delta = {k: v.numpy() for k, v in pti_delta(G, self.G_tuned).nets["G_delta"].state_dict().items()}
        return LatentState(self.ws.detach().cpu().float().numpy(), {k: v.cpu().numpy() for k, v in self.noise.items()},
                           delta, generator_fingerprint(G))  # fmt: skip

    def restore_latent(self, state: LatentState) -> np.ndarray:
        """Bring back a saved inversion; returns the reconstruction.  Error if it belongs to another generator."""
        G = self._need_generator()
        if state.fingerprint != generator_fingerprint(G):
            raise GanEditorError("the project's latent was made with another generator")
        G_tuned = add_delta(G, {k: torch.from_numpy(np.asarray(v)) for k, v in state.pti_delta.items()}) \
            if state.pti_delta else None  # fmt: skip
        noise = {k: torch.from_numpy(np.asarray(v)).to(self.device) for k, v in state.noise.items()}
        self._set_latent(torch.from_numpy(np.asarray(state.ws, np.float32)), noise, G_tuned)
        return self.render({})

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

    def paste(self, photo: np.ndarray, edited: np.ndarray, aligned: AlignedFace,
              reconstruction: np.ndarray | None) -> np.ndarray:
        """The full-resolution photo with the edited face blended in."""
        return paste_back(photo, edited, aligned, reconstruction=reconstruction, device=self.device)


def warm_up(task: Task | None = None) -> None:
    """Import what the first inversion would import (torch.optim pulls in ~900 modules on its first
    step), so it happens once at start-up on a worker rather than as GUI stutter in the middle of work."""
    import ganeditor.pipelines.train.engine  # noqa: F401  (deferred: heavy, and only the window warms up)

    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()

