"""GAN inversion: optimisation in W / W+ (the StyleGAN2 projector algorithm), learned encoder,
pivotal tuning (``invert_pti``) and the progressive chain encoder -> optimisation -> PTI.

Every method is a generator of ``InversionUpdate``s taking a ``Task``; the last update carries
the ``InversionResult``.  Cancelling (``task`` raises ``Cancelled``) ends the current stage with
the best result found so far, which is returned (``result.cancelled`` is True).  ``run_inversion``
drains a generator and returns its result.

Projector facts (NVlabs stylegan2-ada-pytorch ``projector.py``): start at the mean of 10000
mapped z (RandomState(123)); w_std is the RMS distance of those samples to the mean; Adam
(0.9, 0.999) with lr 0.1 ramped up over the first 5 % of steps and down by a half cosine over the
last 25 %; Gaussian noise of w_std·0.05·max(0, 1 − t/0.75)² added to w; the noise maps are
optimised too, regularised by the squared mean autocorrelation (1-pixel rolls along x and y)
over an average-pooled pyramid down to 8x8 (weight 1e5) and renormalised after every step.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from ganeditor.core.errors import Cancelled, GanEditorError
from ganeditor.core.metrics import psnr, ssim
from ganeditor.core.progress import Task, null_task
from ganeditor.pipelines.generate import to_uint8
from ganeditor.pipelines.invert_loss import InversionLoss

METHODS = ("w", "wplus", "pti", "encoder", "progressive")


@dataclass
class StageResult:
    """One method's outcome: latent, image and quality vs the target."""

    method: str
    ws: torch.Tensor  # [1, num_ws, w_dim] on CPU
    image: np.ndarray  # uint8 [R, R, C]
    psnr: float
    ssim: float
    seconds: float
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
    seconds: float
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


def center_crop_resize(image: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [H, W, C] -> centre square crop resized (Lanczos) to ``resolution`` (as projector.py)."""
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    im = Image.fromarray(np.ascontiguousarray(image[top : top + s, left : left + s]).squeeze())
    return np.asarray(im.resize((resolution, resolution), Image.Resampling.LANCZOS)).reshape(resolution, resolution, -1)


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


def w_stats(G: nn.Module, samples: int = 10000, seed: int = 123, task: Task | None = None,
            chunk: int = 1000) -> tuple[torch.Tensor, float]:
    """Mean W [1, 1, w_dim] and the RMS distance of ``samples`` mapped z to it (projector.py); mapped
    ``chunk`` at a time so that a cancel lands between chunks (rows are mapped independently)."""
    task = task or null_task()
    device = next(G.parameters()).device
    z = torch.from_numpy(np.random.RandomState(seed).randn(samples, G.z_dim)).to(device)
    c = torch.zeros([samples, G.c_dim], device=device)
    parts = []
    with torch.no_grad():
        for i in range(0, samples, chunk):
            task.check()
            parts.append(G.mapping(z[i : i + chunk], c[i : i + chunk])[:, :1, :].float())  # [n, 1, C]
    w = torch.cat(parts)
    w_avg = w.mean(dim=0, keepdim=True)
    w_std = float(((w - w_avg).square().sum() / samples).sqrt())
    return w_avg, w_std


def _start_stats(G: nn.Module, samples: int, init_ws: torch.Tensor | None,
                 task: Task) -> tuple[torch.Tensor | None, float, bool]:
    """(w_avg, w_std, stopped): the W statistics, or a cancel while they are computed; a stage that
    starts from a previous one's latent then keeps it, a first stage has nothing to keep yet."""
    try:
        return (*w_stats(G, samples, task=task), False)
    except Cancelled:
        if init_ws is None:
            raise
        return None, 0.0, True


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


def noise_regularization(bufs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Squared mean autocorrelation of each noise map over a pyramid down to 8x8 (projector.py)."""
    reg = 0.0
    for v in bufs.values():
        n = v[None, None]
        while True:
            reg = reg + (n * torch.roll(n, shifts=1, dims=3)).mean() ** 2
            reg = reg + (n * torch.roll(n, shifts=1, dims=2)).mean() ** 2
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return reg


def lr_schedule(t: float, initial_lr: float = 0.1, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """Projector learning rate at progress ``t`` in [0, 1): linear ramp-up, half-cosine ramp-down."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * np.cos(ramp * np.pi)
    return initial_lr * ramp * min(1.0, t / rampup)


def _stage(method, ws, img_t, target, t0, done, steps, cancelled, noise=None, G_tuned=None) -> StageResult:
    image = to_uint8(img_t.detach().float().cpu())[0]
    p, s = quality(image, target)
    return StageResult(method, ws.detach().float().cpu(), image, p, s, time.monotonic() - t0, done, steps,
                       cancelled, noise, G_tuned)  # fmt: skip


def project(
    G: nn.Module,  # StyleGAN generator (mapping + synthesis); not modified
    target: np.ndarray,  # uint8 [R, R, C] at G's resolution
    loss: InversionLoss,  # reconstruction loss (see make_inversion_loss)
    space: str = "w",  # 'w' (one w broadcast to every layer) or 'wplus' (one per layer)
    steps: int = 1000,  # optimisation steps
    initial_lr: float = 0.1,  # peak Adam learning rate
    noise_factor: float = 0.05,  # initial latent noise, in units of w_std
    noise_ramp: float = 0.75,  # fraction of steps over which the latent noise fades out
    regularize_noise_weight: float = 1e5,  # weight of the noise-map regulariser
    optimize_noise: bool = True,  # optimise the noise maps (projector.py does)
    init_ws: torch.Tensor | None = None,  # start latent [1, num_ws, w_dim], None = mean W
    w_avg_samples: int = 10000,  # z samples for the W statistics
    seed: int = 303,  # seeds noise-map init and latent noise (projector.py's CLI default)
    preview_every: int = 10,  # attach the current image to every N-th update
    task: Task | None = None,  # progress and cancel
) -> Iterator[InversionUpdate]:
    """Optimise a latent (and the noise maps) so that G reproduces ``target``; yields progress."""
    assert space in ("w", "wplus"), f"space {space!r}"
    task = task or null_task()
    t0 = time.monotonic()
    device = next(G.parameters()).device
    tgt = target_tensor(target, G, device)
    loss.set_target(tgt)
    G = copy.deepcopy(G).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    w_avg, w_std, stopped = _start_stats(G, w_avg_samples, init_ws, task)
    if init_ws is not None:
        assert init_ws.shape == (1, G.num_ws, G.w_dim), f"init_ws {list(init_ws.shape)}"
        start = init_ws.to(device).float()
        start = start.mean(dim=1, keepdim=True) if space == "w" else start
    else:
        start = w_avg if space == "w" else w_avg.repeat(1, G.num_ws, 1)
    w_opt = start.detach().clone().requires_grad_(True)
    bufs = noise_buffers(G) if optimize_noise else {}
    for buf in bufs.values():
        buf.copy_(torch.randn(buf.shape, generator=gen).to(device))
        buf.requires_grad_(True)
    opt = torch.optim.Adam([w_opt, *bufs.values()], betas=(0.9, 0.999), lr=initial_lr)
    best = (float("inf"), w_opt.detach().clone(), None)
    done, cancelled = 0, stopped

    def expand(w):
        return w.repeat(1, G.num_ws, 1) if space == "w" else w

    try:
        for step in range(0 if stopped else steps):
            t = step / steps
            for group in opt.param_groups:
                group["lr"] = lr_schedule(t, initial_lr)
            scale = w_std * noise_factor * max(0.0, 1.0 - t / noise_ramp) ** 2
            w_noise = torch.randn(w_opt.shape, generator=gen).to(device) * scale
            img = G.synthesis(expand(w_opt + w_noise), noise_mode="const")
            dist = loss(img)
            total = dist + regularize_noise_weight * noise_regularization(bufs) if bufs else dist
            dist_value = float(dist.detach())
            if dist_value < best[0]:
                best = (dist_value, w_opt.detach().clone(), {k: b.detach().clone() for k, b in bufs.items()})
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            with torch.no_grad():
                for buf in bufs.values():
                    buf -= buf.mean()
                    buf *= buf.square().mean().rsqrt()
            done = step + 1
            show = preview_every and (done % preview_every == 0 or done == steps)
            image = to_uint8(img.detach().cpu())[0] if show else None
            if image is not None:
                task.report(done, steps, f"{space} step {done}/{steps} loss {dist_value:.4f}", image=image)
            else:
                task.report(done, steps, f"{space} step {done}/{steps} loss {dist_value:.4f}")
            yield InversionUpdate(space, done, steps, dist_value, image)
    except Cancelled:
        cancelled = True
    with torch.no_grad():
        if cancelled and best[2] is not None:
            w_opt.data.copy_(best[1])
            for k, b in bufs.items():
                b.copy_(best[2][k])
        ws = expand(w_opt.detach())
        for buf in bufs.values():
            buf.requires_grad_(False)
        img = G.synthesis(ws, noise_mode="const")
    noise = {k: b.detach().cpu().clone() for k, b in bufs.items()} or None
    res = _stage(space, ws, img, tgt, t0, done, steps, cancelled, noise)
    yield InversionUpdate(space, done, steps, best[0], res.image, stage_result=res)


def encoder_input(E: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Resize a [N, C, R, R] image in [-1, 1] to the encoder's input resolution."""
    r = E.img_resolution
    if image.shape[-1] == r:
        return image
    mode = "area" if image.shape[-1] > r else "bilinear"
    return F.interpolate(image, size=(r, r), mode=mode, **({} if mode == "area" else {"align_corners": False}))


def encode(G: nn.Module, E: nn.Module, target: np.ndarray, task: Task | None = None) -> Iterator[InversionUpdate]:
    """Instant W+ latent from a learned encoder (role 'E' of an encoder checkpoint)."""
    task = task or null_task()
    t0 = time.monotonic()
    device = next(G.parameters()).device
    if (E.num_ws, E.w_dim) != (G.num_ws, G.w_dim):
        raise GanEditorError(f"encoder predicts [{E.num_ws}, {E.w_dim}] latents, the generator needs [{G.num_ws}, {G.w_dim}]")
    tgt = target_tensor(target, G, device)
    with torch.no_grad():
        ws = E(encoder_input(E, tgt).to(next(E.parameters()).device)).to(device)
        img = G.synthesis(ws, noise_mode="const")
    res = _stage("encoder", ws, img, tgt, t0, 1, 1, False)
    task.report(1, 1, "encoder", image=res.image)
    yield InversionUpdate("encoder", 1, 1, float("nan"), res.image, stage_result=res)


def _finish(stages: list[StageResult], loss_name: str, t0: float) -> InversionResult:
    last = stages[-1]
    return InversionResult(last.ws, last.image, stages, loss_name, time.monotonic() - t0,
                           any(s.cancelled for s in stages), last.noise, last.G_tuned)  # fmt: skip


def invert(
    G: nn.Module,  # StyleGAN generator
    target: np.ndarray,  # uint8 [R, R, C] aligned image at G's resolution
    loss: InversionLoss,  # see make_inversion_loss
    method: str = "wplus",  # one of METHODS
    steps: int = 500,  # optimisation steps (W / W+ stage)
    pti_steps: int = 350,  # generator tuning steps (PTI stage)
    E: nn.Module | None = None,  # learned encoder (method 'encoder'; optional start for 'progressive')
    seed: int = 303,  # noise seeds
    task: Task | None = None,  # progress and cancel
    **kwargs,  # more ``project`` / ``pti.tune`` options (prefixed 'pti_' for tune)
) -> Iterator[InversionUpdate]:
    """Run one inversion method; each stage's result is yielded as soon as it exists."""
    from ganeditor.pipelines.invert_pti import tune

    if method not in METHODS:
        raise GanEditorError(f"unknown inversion method {method!r} (choose from {', '.join(METHODS)})")
    if method == "encoder" and E is None:
        raise GanEditorError("method 'encoder' needs an encoder checkpoint (--encoder)")
    task = task or null_task()
    t0 = time.monotonic()
    pti_kw = {k[4:]: v for k, v in kwargs.items() if k.startswith("pti_")}
    proj_kw = {k: v for k, v in kwargs.items() if not k.startswith("pti_")}
    plan: list[str] = {"w": ["w"], "wplus": ["wplus"], "encoder": ["encoder"], "pti": ["w", "pti"],
                       "progressive": (["encoder", "wplus"] if E is not None else ["w"]) + ["pti"]}[method]  # fmt: skip
    units = {"encoder": 1, "w": steps, "wplus": steps, "pti": pti_steps}
    total = sum(units[s] for s in plan)
    stages: list[StageResult] = []
    pos = 0
    for name in plan:
        sub = task.sub(pos, units[name], total)
        prev = stages[-1] if stages else None
        if name == "encoder":
            gen = encode(G, E, target, sub)
        elif name in ("w", "wplus"):
            init = prev.ws if prev is not None else None
            gen = project(G, target, loss, name, steps, init_ws=init, seed=seed, task=sub, **proj_kw)
        else:
            gen = tune(G, target, loss, prev.ws, prev.noise, steps=pti_steps, seed=seed, task=sub, **pti_kw)
        for up in gen:
            up.extra["progress"] = (pos + up.step / max(up.steps, 1) * units[name]) / total
            if up.stage_result is not None:
                stages.append(up.stage_result)
            yield up
        pos += units[name]
        if stages and stages[-1].cancelled:
            break
    result = _finish(stages, loss.name, t0)
    yield InversionUpdate(stages[-1].method, stages[-1].steps_done, stages[-1].steps, float("nan"), result.image,
                          stage_result=None, result=result)  # fmt: skip


def run_inversion(updates: Iterator[InversionUpdate]) -> InversionResult:
    """Drain an inversion generator and return its final result."""
    result = None
    for up in updates:
        if up.result is not None:
            result = up.result
    if result is None:
        raise GanEditorError("inversion produced no result")
    return result
