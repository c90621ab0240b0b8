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
from ganeditor.core.device import cpu_has_bf16
from ganeditor.core.errors import CheckpointError, GanEditorError
from ganeditor.core.imageio import read_image, to_8bit
from ganeditor.core.model_store import companion, resolve_model
from ganeditor.core.progress import Task
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.pipelines.align import AlignedFace, align_face
from ganeditor.pipelines.direction_io import generator_fingerprint, load_directions
from ganeditor.pipelines.directions import Direction, sefa
from ganeditor.pipelines.edit import PreviewRenderer, apply_edits
from ganeditor.pipelines.face_detect import Face, detect_faces, find_weights, get_detector, unavailable_message
from ganeditor.pipelines.generate import FaceRequest, generate_face, to_uint8
from ganeditor.pipelines.invert import ProjectOptions, center_crop_resize, invert, with_noise
from ganeditor.pipelines.invert_loss import make_inversion_loss
from ganeditor.pipelines.invert_pti import PTIOptions, add_delta, pti_delta
from ganeditor.pipelines.paste_back import PasteTarget
from ganeditor.pipelines.sliders import SliderSpec, slider_specs
from ganeditor.pipelines.teach import USER_LIBRARY_ROLE, Marks, latent_of, sample_grid, save_user_direction, teach_direction

SEFA_DIRECTIONS = 8
LANDMARK_NAMES = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")


# ------------------------------------------------------------------------------- loading helpers
PASTE_BACK_OP = "paste-back"  # the operation Apply records: {"op", "model_path", "directions", "landmarks", ...}


def unapplied_edit(sliders: dict[str, float], operations: list[dict]) -> dict[str, float]:
    """The slider values (name -> α, zeros left out) that the current result does not hold yet: ``{}``
    when no slider is off 0 or when the operation that made the current result (the last of
    ``operations``) pasted exactly these values back."""
    active = {k: float(v) for k, v in sliders.items() if v != 0.0}
    last = operations[-1] if operations else {}
    held = last.get("directions") if last.get("op") == PASTE_BACK_OP else None
    if isinstance(held, dict) and held.keys() == active.keys() and all(abs(held[k] - v) < 1e-6 for k, v in active.items()):
        return {}
    return active


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
                  device: torch.device | str = "cpu", face: int = 0) -> np.ndarray:
    """Read a photo and bring it to the generator's resolution: the aligned face ('auto' detects it,
    ``face`` picks one of several, 0 = largest; or landmark points [N, 2]) or, with ``align='none'``,
    a centre crop."""
    px = to_uint8_rgb(read_image(path).pixels)
    if isinstance(align, str) and align == "none":
        return center_crop_resize(px, resolution)
    return np.asarray(align_face(px, landmarks=align, output_size=resolution, device=device, face_index=face).image)


# ----------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class GeneratorInfo:
    """What a loaded generator offers the editor."""

    resolution: int
    num_ws: int
    w_dim: int
    directions: tuple[str, ...]  # direction names, in library order
    sliders: tuple[SliderSpec, ...]  # how the window shows each direction (name, group, tooltip, layers)
    source: str  # where the directions came from
    encoder: bool  # an encoder made for this generator was found
    fingerprint: str
    classes: int = 0  # conditional generators: how many classes


@dataclass(frozen=True)
class EditFrame:
    """A rendered edit: the edited face and the photo with it pasted in (reduced for a live preview)."""

    alphas: dict[str, float]  # the slider values it shows
    face: np.ndarray  # uint8 [S, S, 3] edited face (S = R, or less for a live preview's draft)
    photo: np.ndarray  # the photo with the edit (reduced copy unless ``full``)
    full: bool  # full resolution (what Apply puts in the document)


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
    seconds: float  # the whole run, every stage included
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
    mtcnn_dir: str = ""  # another MTCNN weights file of our format (or a folder holding mtcnn.safetensors)


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
        self.generator_path: Path | None = None
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
        dirs = list(dirs) + self._user_directions(path, fp, G.w_dim, {d.name for d in dirs})
        E = find_encoder(list(encoders), G, device)
        self.device, self.ckpt, self.G, self.G_edit, self.E = device, ckpt, G, G, E
        self.directions, self.generator_path = dirs, Path(path)
        self.renderer = PreviewRenderer(G)
        self.ws, self.noise, self.G_tuned = None, {}, None
        return GeneratorInfo(int(G.img_resolution), int(G.num_ws), int(G.w_dim), tuple(d.name for d in dirs),
                             tuple(slider_specs(dirs, G.num_ws)), source, E is not None, fp, int(G.c_dim))

    @staticmethod
    def _user_directions(path: str | Path, fp: str, w_dim: int, taken: set[str]) -> list[Direction]:
        """The sliders the user taught for this generator (its '-my-directions' library), if any."""
        lib_path = companion(path, USER_LIBRARY_ROLE)
        if lib_path is None:
            return []
        lib = load_directions(lib_path)
        lib.check_generator(fp, w_dim, lib_path)
        return [d for d in lib.directions if d.name not in taken]

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
        for up in invert(G, target, loss, method, E=self.E, task=task, projection=ProjectOptions(steps=steps, preview_every=5),
                         pti=PTIOptions(steps=pti_steps, preview_every=5)):
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
        return InversionSummary(self.render({}), bool(final.cancelled), final.loss_name, stages,
                                float(final.seconds), self.latent_state())

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
    def render(self, alphas: dict[str, float], max_res: int | None = None) -> np.ndarray:
        """The inverted face moved by each direction's α (cached synthesis blocks); with ``max_res``
        below the generator's resolution a draft of that size (``PreviewRenderer.render``), computed
        in bfloat16 where the device does that natively (a draft is never the result)."""
        if self.ws is None or self.renderer is None:
            raise GanEditorError("invert a face first")
        by_name = {d.name: d for d in self.directions}
        edits = [(by_name[n], a) for n, a in alphas.items() if a and n in by_name]
        fast = max_res is not None and (self.device.type == "cuda" or (self.device.type == "cpu" and cpu_has_bf16()))
        with torch.no_grad():
            img = self.renderer.render(apply_edits(self.ws, edits), max_res, fast=fast)
        return to_uint8(img)[0]

    def edit_frame(self, alphas: dict[str, float], target: PasteTarget, full: bool) -> EditFrame:
        """The edit of ``alphas`` rendered (cached synthesis blocks) and pasted into ``target``: into its
        reduced copy for a live preview, or at full resolution (``full``).  A live preview of a face
        smaller there than the generator renders a draft at the block resolution that covers it (fp32
        drafts leave their blocks cached for the full render that follows; bf16 ones have their own)."""
        side = None if full or self.renderer is None else target.preview_face_side()
        face = self.render(alphas, None if side is None else self.renderer.draft_resolution(side))
        return EditFrame(dict(alphas), face, target.paste(face, full, self.device), full)

    def use_latent(self, ws: np.ndarray) -> np.ndarray:
        """Edit a latent directly (a generated face: no inversion); returns its rendering."""
        G = self._need_generator()
        w = torch.from_numpy(np.asarray(ws, np.float32))
        if tuple(w.shape) != (1, G.num_ws, G.w_dim):
            raise GanEditorError(f"latent {list(w.shape)} does not fit this generator [1, {G.num_ws}, {G.w_dim}]")
        self._set_latent(w, {}, None)
        return self.render({})

    def generate(self, requests: list[FaceRequest]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(ws [1, num_ws, w_dim] float32, uint8 image) per request (the Generate panel)."""
        G = self._need_generator()
        return [(ws.float().cpu().numpy(), img) for ws, img in (generate_face(G, r) for r in requests)]

    def sample_faces(self, seeds: list[int], psi: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
        """Faces to mark when teaching a slider: (W latents [N, w_dim], uint8 images [N, R, R, 3])."""
        return sample_grid(self._need_generator(), seeds, psi)

    def current_w(self) -> np.ndarray | None:
        """The face being edited as a W latent [w_dim] (its W+ averaged over layers), if any."""
        return None if self.ws is None else latent_of(self.ws)

    def teach(self, label: str, marks: Marks, independent: bool = False) -> SliderSpec:
        """Fit a slider from the user's marks (independent of the verified named sliders if asked), save it
        to the user's library for this generator, and add it to the session's directions."""
        G = self._need_generator()
        verified = {s.name for s in slider_specs(self.directions, G.num_ws) if s.verified}
        conditions = [d for d in self.directions if d.name in verified] if independent else []
        d = teach_direction(G, label, marks, conditions)
        save_user_direction(G, self.generator_path or "generator", d)
        self.directions = [x for x in self.directions if x.name != d.name] + [d]
        return slider_specs([d], G.num_ws)[0]


def warm_up(task: Task | None = None) -> None:
    """Import what the first inversion would import (torch.optim pulls in ~900 modules on its first
    step), so it happens once at start-up on a worker rather than as GUI stutter in the middle of work."""
    import ganeditor.pipelines.train.engine  # noqa: F401  (deferred: heavy, and only the window warms up)

    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()

