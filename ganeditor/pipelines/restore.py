"""Old-photo restoration: dust and scratches, global restoration, colourisation, upscaling, faces --
each optional with a strength, always in this order, at full resolution with bounded memory.

Order (``STAGE_ORDER``): damage is found and filled first (the other networks would otherwise
smear it), the whole photo is restored, colourised when asked (from the cleaned luma), upscaled, and
faces are restored last on the upscaled photo (as GFPGAN pastes faces into the upscaled
background), found on the photo before upscaling.

Models: each stage has a default model name (``DEFAULT_MODELS``, the shipped demo models and
Real-ESRGAN x4plus); ``models`` overrides any of them with a file or model name -- ours, or any
checkpoint spandrel recognises (SCUNet/NAFNet/FBCNN/... for 'global', LaMa for 'inpaint',
GFPGAN/RestoreFormer for 'faces', any SR model for 'upscale').  ``RestoreModels.load`` checks each
model is of the stage's kind and says what it found otherwise.  Strength per stage in [0, 1]
(default 1); what it scales is documented by each stage (``restore_damage``, ``restore_stages``,
``restore_faces``).  A user-drawn damage ``mask`` replaces detection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.nn as nn

from ganeditor.archs.generator_api import is_stylegan
from ganeditor.core.device import pick_device
from ganeditor.core.errors import CheckpointError, GanEditorError
from ganeditor.core.imageio import LoadedImage
from ganeditor.core.model_store import companion, resolve_model
from ganeditor.core.progress import Task, null_task
from ganeditor.core.provenance import Step, record
from ganeditor.core.tiling_common import large_allocations_mapped
from ganeditor.formats import load_checkpoint
from ganeditor.pipelines.image2image import Image2ImageOptions, check_model
from ganeditor.pipelines.restore_damage import detect_damage, inpaint
from ganeditor.pipelines.restore_faces import FacePrior, restore_faces
from ganeditor.pipelines.restore_stages import colourise, restore_global, upscale_stage

STAGE_ORDER = ("scratches", "global", "colour", "upscale", "faces")
DEFAULT_STAGES = ("scratches", "global")  # faces on request: the demo prior lowers face fidelity (bench_restore)
ALIASES = {"color": "colour", "scratch": "scratches", "dust": "scratches", "face": "faces", "sr": "upscale"}
MODEL_SLOTS = ("scratches", "inpaint", "global", "colour", "upscale", "faces")  # 'scratches' has two models
DEFAULT_MODELS = {
    "scratches": "restore-scratches",
    "inpaint": "restore-inpaint",
    "global": "restore-global",
    "colour": "restore-colorize",
    "upscale": "realesrgan-x4plus",
    "faces": "portrait-stylegan2",
}
STAGE_WORK = {"scratches": 3, "global": 3, "colour": 1, "upscale": 5, "faces": 2}  # progress weights
KIND_WANTED = {
    "scratches": "a dust/scratch detector (restore-scratches)",
    "inpaint": "an inpainting model (restore-inpaint, LaMa)",
    "global": "a 1x restoration model (restore-global, SCUNet, NAFNet, FBCNN, ...)",
    "colour": "a colouriser (restore-colorize)",
    "faces": "a face restoration model (GFPGAN, RestoreFormer) or a StyleGAN generator",
}


def canonical_stage(name: str) -> str:
    """A stage or model-slot name from user text ('color' -> 'colour'); GanEditorError if unknown."""
    n = ALIASES.get(name.strip().lower(), name.strip().lower())
    if n not in MODEL_SLOTS:
        raise GanEditorError(f"unknown stage {name!r} (choose from {', '.join(STAGE_ORDER)}; models also for inpaint)")
    return n


@dataclass(frozen=True, kw_only=True)
class RestoreOptions:
    """What to do (the models are loaded separately, see ``RestoreModels``)."""

    stages: tuple[str, ...] = DEFAULT_STAGES  # any of STAGE_ORDER; always run in that order
    strength: Mapping[str, float] = field(default_factory=dict)  # stage -> 0..1 (default 1)
    upscale: float = 4.0  # factor of the 'upscale' stage
    fidelity: float = 0.7  # faces: share of the photo's own face (1) vs the prior's (0)
    face_steps: int = 0  # faces with our StyleGAN prior: W+ optimisation steps after the encoder
    mask: np.ndarray | None = None  # [H, W] bool damage mask (e.g. painted by the user): replaces detection
    tile: int | None = None  # tile side for the tiled stages; None = from free memory
    fast: bool = False  # bf16/fp16 autocast in the tiled stages

    def __post_init__(self) -> None:
        stages = tuple(canonical_stage(s) for s in self.stages)
        if "inpaint" in stages:
            raise GanEditorError("'inpaint' is part of the 'scratches' stage")
        object.__setattr__(self, "stages", tuple(s for s in STAGE_ORDER if s in stages))
        strength = {canonical_stage(k): float(v) for k, v in self.strength.items()}
        bad = {k: v for k, v in strength.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise GanEditorError(f"strengths are between 0 and 1, got {bad}")
        object.__setattr__(self, "strength", strength)
        if not 0.0 <= self.fidelity <= 1.0:
            raise GanEditorError(f"fidelity is between 0 and 1, got {self.fidelity:g}")
        if not 1.0 <= self.upscale <= 8.0:
            raise GanEditorError(f"upscale factor must be between 1 and 8, got {self.upscale:g}")

    def strength_of(self, stage: str) -> float:
        return self.strength.get(stage, 1.0)

    def image_options(self) -> Image2ImageOptions:
        return Image2ImageOptions(tile=self.tile, fast=self.fast)


def parse_stages(text: str) -> tuple[str, ...]:
    """'scratches,global' -> ('scratches', 'global'); 'all' -> every stage; 'none' -> ()."""
    t = text.strip().lower()
    if t == "all":
        return STAGE_ORDER
    if t in ("", "none"):
        return ()
    return tuple(canonical_stage(s) for s in t.split(",") if s.strip())


@dataclass
class RestoreModels:
    """The loaded networks of the asked stages (slot -> network), and where they came from."""

    nets: dict[str, nn.Module]
    face_prior: FacePrior | None
    paths: dict[str, Path]  # slot -> the model file
    device: torch.device

    @classmethod
    def load(cls, stages: tuple[str, ...], models: Mapping[str, str] | None = None, device: str = "auto",
             face_steps: int = 0) -> "RestoreModels":
        """Load and check the model of every asked stage (``models``: slot -> file or name overrides)."""
        dev = pick_device(device)
        chosen = {canonical_stage(k): v for k, v in (models or {}).items()}
        slots = [s for s in MODEL_SLOTS if s in stages or (s == "inpaint" and "scratches" in stages)]
        nets, paths, prior = {}, {}, None
        for slot in slots:
            paths[slot] = resolve_model(chosen.get(slot, DEFAULT_MODELS[slot]))
            ckpt = load_checkpoint(paths[slot], dev)
            if slot == "faces":
                prior = _face_prior(ckpt, dev, face_steps)
            else:
                nets[slot] = _check(slot, ckpt)
        return cls(nets, prior, paths, dev)

    def provenance(self, options: RestoreOptions) -> tuple[Step, ...]:
        """One provenance step per model used, with its stage's settings (hashes the files: not on a GUI thread)."""
        return tuple(record("restore", path, {"stage": slot, "strength": options.strength.get(slot),
                                              "fidelity": options.fidelity if slot == "faces" else None,
                                              "factor": options.upscale if slot == "upscale" else None})
                     for slot, path in self.paths.items())  # fmt: skip


def _check(slot: str, ckpt) -> nn.Module:
    """The checkpoint's network if it serves ``slot``; CheckpointError naming what it holds otherwise."""
    if slot == "upscale":
        return check_model(ckpt, "upscale")
    net = ckpt.primary
    if getattr(net, "restore_stage", "") != slot:
        what = getattr(net, "describe", lambda: {})().get("summary") or getattr(net, "arch_name", type(net).__name__)
        raise CheckpointError(f"--model {slot}: this file holds {what}, not {KIND_WANTED[slot]}", ckpt.path)
    return net


def _face_prior(ckpt, device: torch.device, steps: int) -> FacePrior:
    net = ckpt.primary
    if getattr(net, "restore_stage", "") == "faces":
        return FacePrior(net=net, name=getattr(net, "arch_name", "face model"))
    if not is_stylegan(net):
        what = getattr(net, "arch_name", type(net).__name__)
        raise CheckpointError(f"--model faces: this file holds {what}, not {KIND_WANTED['faces']}", ckpt.path)
    E = None
    enc = companion(ckpt.path, "encoder") if ckpt.path else None
    if enc is not None:
        from ganeditor.pipelines.portrait import load_encoder

        E = load_encoder(enc, net, device)
    return FacePrior(G=net, E=E, steps=steps, name=f"the StyleGAN prior {ckpt.path.stem if ckpt.path else ''}".strip())


@dataclass
class RestoreResult:
    """The restored image, the damage mask used (input resolution; None without the stage), what happened."""

    image: LoadedImage
    mask: np.ndarray | None
    faces: int
    notes: list[str]
    seconds: dict[str, float]


def restore(image: LoadedImage, models: RestoreModels, options: RestoreOptions, *,
            task: Task | None = None) -> RestoreResult:
    """Run the asked stages over ``image`` in ``STAGE_ORDER``."""
    h, w = image.pixels.shape[:2]
    with large_allocations_mapped(h * w):  # the whole run, its tilers and what lies between them
        return _restore(image, models, options, task or null_task())


def _restore(image: LoadedImage, models: RestoreModels, options: RestoreOptions, task: Task) -> RestoreResult:
    stages = options.stages
    total = sum(STAGE_WORK[s] for s in stages) or 1
    done, notes, seconds = 0, list(image.notes), {}
    mask, faces, opts = None, 0, options.image_options()
    cur = image
    before_upscale = None
    for stage in stages:
        t0 = time.monotonic()
        sub = task.sub(done, STAGE_WORK[stage], total)
        s = options.strength_of(stage)
        if stage == "scratches":
            mask = options.mask if options.mask is not None else \
                detect_damage(models.nets["scratches"], cur.pixels, strength=s, options=opts, task=sub)
            if mask.shape != cur.pixels.shape[:2]:
                raise GanEditorError(f"the damage mask is {mask.shape[1]}x{mask.shape[0]}, the photo "
                                     f"{cur.pixels.shape[1]}x{cur.pixels.shape[0]}")
            if mask.any():
                px, n = inpaint(models.nets["inpaint"], cur.pixels, mask, task=sub)
                cur, notes = _with(cur, px), notes + n
            notes.append(f"scratches: {mask.mean() * 100:.2f} % of the pixels filled")
        elif stage == "global":
            cur = restore_global(models.nets["global"], cur, strength=s, options=opts, task=sub)
        elif stage == "colour":
            cur = _with(cur, colourise(models.nets["colour"], cur.pixels, strength=s, task=sub))
        elif stage == "upscale":
            before_upscale = cur.pixels
            cur = upscale_stage(models.nets["upscale"], cur, factor=options.upscale, strength=s, options=opts, task=sub)
        elif stage == "faces":
            scale = cur.pixels.shape[1] / before_upscale.shape[1] if before_upscale is not None else 1.0
            px, faces, n = restore_faces(models.face_prior, cur.pixels, detect_on=before_upscale, landmark_scale=scale,
                                         fidelity=options.fidelity, strength=s, device=models.device, task=sub)
            cur, notes = _with(cur, px), notes + n
        seconds[stage] = round(time.monotonic() - t0, 3)
        done += STAGE_WORK[stage]
        task.report(done, total, f"{stage} done")
    return RestoreResult(cur, mask, faces, notes, seconds)


def _with(image: LoadedImage, pixels: np.ndarray) -> LoadedImage:
    """``image`` with new pixels of the same size (alpha and metadata kept)."""
    return replace(image, pixels=pixels, notes=list(image.notes))
