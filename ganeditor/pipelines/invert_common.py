"""What every inversion stage shares: its results and progress updates, the target tensor, the
quality figures, noise-map helpers and the per-step report.  ``invert`` (W / W+ / encoder and the
chains) and ``invert_pti`` (pivotal tuning) both build on this module and on nothing of each other
but ``invert`` -> ``invert_pti``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.errors import GanEditorError
from ganeditor.core.metrics import psnr, ssim
from ganeditor.core.progress import Task
from ganeditor.pipelines.generate import to_uint8


@dataclass
class StageResult:
    """One method's outcome: latent, image and quality vs the target."""

    method: str
    ws: torch.Tensor  # [1, num_ws, w_dim] on CPU
    image: np.ndarray  # uint8 [R, R, C]
    psnr: float
    ssim: float
    seconds: float  # this stage's own time
    steps_done: int = 0
    steps: int = 0
    cancelled: bool = False
    noise: dict[str, torch.Tensor] | None = None  # optimised noise maps (buffer name -> [R, R])
    G_tuned: nn.Module | None = None  # PTI only


@dataclass
class InversionResult:
    """The final latent and image plus every stage's figures."""

    ws: torch.Tensor  # [1, num_ws, w_dim] on CPU
    image: np.ndarray  # uint8 [R, R, C]
    stages: list[StageResult]
    loss_name: str
    seconds: float  # the whole run, every stage included
    cancelled: bool = False
    noise: dict[str, torch.Tensor] | None = None
    G_tuned: nn.Module | None = None

    @property
    def psnr(self) -> float:
        return self.stages[-1].psnr

    @property
    def ssim(self) -> float:
        return self.stages[-1].ssim


@dataclass
class InversionUpdate:
    """Progress of an inversion; ``stage_result`` when a stage ends, ``result`` on the last update."""

    stage: str
    step: int
    steps: int
    loss: float = float("nan")
    image: np.ndarray | None = None
    stage_result: StageResult | None = None
    result: InversionResult | None = None
    extra: dict = field(default_factory=dict)


def target_tensor(target: np.ndarray, G: nn.Module, device: torch.device) -> torch.Tensor:
    """uint8 [R, R, C] image -> [1, C, R, R] float in [-1, 1] matching G's channels and resolution."""
    t = np.asarray(target)
    if t.ndim == 2:
        t = t[:, :, None]
    r, c = G.img_resolution, G.img_channels
    if t.shape[:2] != (r, r):
        raise GanEditorError(f"target is {t.shape[1]}x{t.shape[0]}, the generator needs {r}x{r} (align or crop first)")
    if t.shape[2] != c:
        t = t[:, :, :3].mean(axis=2, keepdims=True) if c == 1 else np.repeat(t[:, :, :1], c, axis=2)
    x = torch.from_numpy(np.ascontiguousarray(t, dtype=np.float32)).permute(2, 0, 1)[None]
    return (x / 127.5 - 1).to(device)


def quality(image: np.ndarray, target: torch.Tensor) -> tuple[float, float]:
    """(PSNR dB, SSIM) of a uint8 image vs a [1, C, R, R] target in [-1, 1], both on the 8-bit grid."""
    a = torch.from_numpy(image).permute(2, 0, 1)[None].double() / 255
    b = to_uint8(target.detach().cpu())
    b = torch.from_numpy(b).permute(0, 3, 1, 2).double() / 255
    return psnr(a, b), ssim(a, b)


def stage_result(
    method: str,  # stage name: 'w', 'wplus', 'encoder', 'pti'
    ws: torch.Tensor,  # [1, num_ws, w_dim] final latent
    img: torch.Tensor,  # [1, C, R, R] its rendering in [-1, 1]
    target: torch.Tensor,  # [1, C, R, R] the target in [-1, 1]
    t0: float,  # time.monotonic() when the stage began
    done: int,  # steps run
    steps: int,  # steps planned
    cancelled: bool,  # stopped early (the result is the best so far)
    noise: dict[str, torch.Tensor] | None = None,  # optimised noise maps
    G_tuned: nn.Module | None = None,  # tuned generator (PTI)
) -> StageResult:
    """A stage's result with its image on the 8-bit grid and its quality against the target."""
    image = to_uint8(img.detach().float().cpu())[0]
    p, s = quality(image, target)
    return StageResult(method, ws.detach().float().cpu(), image, p, s, time.monotonic() - t0, done, steps,
                       cancelled, noise, G_tuned)  # fmt: skip


def report_step(task: Task, stage: str, done: int, steps: int, loss: float, img: torch.Tensor,
                preview_every: int) -> np.ndarray | None:
    """Report step ``done`` of ``steps``; every ``preview_every`` steps (and the last) with the image,
    which is returned (None on the other steps)."""
    msg = f"{stage} step {done}/{steps} loss {loss:.4f}"
    if not preview_every or (done % preview_every and done != steps):
        task.report(done, steps, msg)
        return None
    image = to_uint8(img.detach().cpu())[0]
    task.report(done, steps, msg, image=image)
    return image


def noise_buffers(G: nn.Module) -> dict[str, torch.Tensor]:
    """The synthesis network's constant noise maps by buffer name."""
    return {n: b for n, b in G.synthesis.named_buffers() if "noise_const" in n}


def with_noise(G: nn.Module, noise: dict[str, torch.Tensor] | None) -> nn.Module:
    """A copy of G whose constant noise maps are ``noise`` (G itself when None)."""
    if not noise:
        return G
    G2 = copy.deepcopy(G)
    bufs = noise_buffers(G2)
    for name, t in noise.items():
        if name not in bufs or bufs[name].shape != t.shape:
            raise GanEditorError(f"noise map {name!r} does not fit this generator")
        bufs[name].copy_(t)
    return G2
