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
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from ganeditor.core.errors import Cancelled, GanEditorError
from ganeditor.core.progress import Task, null_task
from ganeditor.pipelines.invert_common import (  # noqa: F401 - re-exported: the inversion API lives here
    InversionResult, InversionUpdate, StageResult, noise_buffers, quality, report_step, stage_result,
    target_tensor, with_noise,
)  # fmt: skip
from ganeditor.pipelines.invert_loss import InversionLoss
from ganeditor.pipelines.invert_pti import PTIOptions, tune

METHODS = ("w", "wplus", "pti", "encoder", "progressive")
METHOD_LABELS = {  # words for people; the technical name goes in the tooltip
    "encoder": "Quick (encoder)",
    "wplus": "Balanced",
    "progressive": "Best (tunes the generator)",
    "w": "Balanced (single latent)",
    "pti": "Best (tunes the generator, no encoder)",
}
METHOD_TIPS = {
    "encoder": "A learned encoder predicts the latent at once (W+); fast, roughly right.",
    "wplus": "Optimises one latent per layer (W+, the StyleGAN2 projector's algorithm): close fit in a minute.",
    "progressive": "Encoder, then W+ optimisation, then pivotal tuning (PTI) of the generator around the result: "
                   "the closest fit, the slowest.",
    "w": "Optimises a single latent (W, the StyleGAN2 projector): a looser fit that edits most faithfully.",
    "pti": "W optimisation, then pivotal tuning (PTI) of the generator: close fit without an encoder.",
}
assert set(METHOD_LABELS) == set(METHODS) == set(METHOD_TIPS)


@dataclass(frozen=True)
class ProjectOptions:
    """Options of the W / W+ optimisation (defaults: NVlabs ``projector.py``)."""

    steps: int = 1000  # optimisation steps
    initial_lr: float = 0.1  # peak Adam learning rate
    noise_factor: float = 0.05  # initial latent noise, in units of w_std
    noise_ramp: float = 0.75  # fraction of steps over which the latent noise fades out
    regularize_noise_weight: float = 1e5  # weight of the noise-map regulariser
    optimize_noise: bool = True  # optimise the noise maps (projector.py does)
    w_avg_samples: int = 10000  # z samples for the W statistics
    seed: int = 303  # seeds noise-map init and latent noise (projector.py's CLI default)
    preview_every: int = 10  # attach the current image to every N-th update (0: never)


def center_crop_resize(image: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 [H, W, C] -> centre square crop resized (Lanczos) to ``resolution`` (as projector.py)."""
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    im = Image.fromarray(np.ascontiguousarray(image[top : top + s, left : left + s]).squeeze())
    return np.asarray(im.resize((resolution, resolution), Image.Resampling.LANCZOS)).reshape(resolution, resolution, -1)


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


def _start_latent(G: nn.Module, space: str, init_ws: torch.Tensor | None, w_avg: torch.Tensor | None) -> torch.Tensor:
    """The latent the optimisation starts from: ``init_ws`` (averaged over layers for W) or the mean W."""
    if init_ws is None:
        start = w_avg if space == "w" else w_avg.repeat(1, G.num_ws, 1)
    else:
        assert init_ws.shape == (1, G.num_ws, G.w_dim), f"init_ws {list(init_ws.shape)}"
        start = init_ws.to(next(G.parameters()).device).float()
        start = start.mean(dim=1, keepdim=True) if space == "w" else start
    return start.detach().clone().requires_grad_(True)


def _random_noise_maps(G: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """G's noise maps, set to seeded Gaussian noise and made trainable (G is a private copy)."""
    bufs = noise_buffers(G)
    for buf in bufs.values():
        buf.copy_(torch.randn(buf.shape, generator=gen).to(buf.device))
        buf.requires_grad_(True)
    return bufs


class _Projection:
    """The optimisation state of ``project``: latent, noise maps, optimiser, best result so far."""

    def __init__(self, G: nn.Module, loss: InversionLoss, space: str, o: ProjectOptions, init_ws: torch.Tensor | None,
                 task: Task):
        self.G, self.loss, self.space, self.o = G, loss, space, o
        self.gen = torch.Generator().manual_seed(o.seed)
        try:
            w_avg, self.w_std = w_stats(G, o.w_avg_samples, task=task)
            self.stopped = False
        except Cancelled:  # while the statistics are computed: a later stage keeps the latent it started from
            if init_ws is None:
                raise  # a first stage has nothing to keep yet
            w_avg, self.w_std, self.stopped = None, 0.0, True
        self.w = _start_latent(G, space, init_ws, w_avg)
        self.bufs = _random_noise_maps(G, self.gen) if o.optimize_noise else {}
        self.opt = torch.optim.Adam([self.w, *self.bufs.values()], betas=(0.9, 0.999), lr=o.initial_lr)
        self.best = (float("inf"), self.w.detach().clone(), None)

    def expand(self, w: torch.Tensor) -> torch.Tensor:
        return w.repeat(1, self.G.num_ws, 1) if self.space == "w" else w

    def step(self, t: float) -> tuple[float, torch.Tensor]:
        """One Adam step at progress ``t`` in [0, 1): (distance before the step, the image it was measured on)."""
        o, device = self.o, self.w.device
        for group in self.opt.param_groups:
            group["lr"] = lr_schedule(t, o.initial_lr)
        scale = self.w_std * o.noise_factor * max(0.0, 1.0 - t / o.noise_ramp) ** 2
        w_noise = torch.randn(self.w.shape, generator=self.gen).to(device) * scale
        img = self.G.synthesis(self.expand(self.w + w_noise), noise_mode="const")
        dist = self.loss(img)
        total = dist + o.regularize_noise_weight * noise_regularization(self.bufs) if self.bufs else dist
        dist_value = float(dist.detach())
        if dist_value < self.best[0]:
            self.best = (dist_value, self.w.detach().clone(), {k: b.detach().clone() for k, b in self.bufs.items()})
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        with torch.no_grad():
            for buf in self.bufs.values():
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
        return dist_value, img

    @torch.no_grad()
    def finish(self, cancelled: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor] | None]:
        """(ws, its image, noise maps): the last latent, or the best one when cancelled."""
        if cancelled and self.best[2] is not None:
            self.w.data.copy_(self.best[1])
            for k, b in self.bufs.items():
                b.copy_(self.best[2][k])
        ws = self.expand(self.w.detach())
        for buf in self.bufs.values():
            buf.requires_grad_(False)
        img = self.G.synthesis(ws, noise_mode="const")
        return ws, img, {k: b.detach().cpu().clone() for k, b in self.bufs.items()} or None


def project(
    G: nn.Module,  # StyleGAN generator (mapping + synthesis); not modified
    target: np.ndarray,  # uint8 [R, R, C] at G's resolution
    loss: InversionLoss,  # reconstruction loss (see make_inversion_loss)
    space: str = "w",  # 'w' (one w broadcast to every layer) or 'wplus' (one per layer)
    *,
    options: ProjectOptions = ProjectOptions(),  # steps, learning rate, noise, seed, previews
    init_ws: torch.Tensor | None = None,  # start latent [1, num_ws, w_dim], None = mean W
    task: Task | None = None,  # progress and cancel
) -> Iterator[InversionUpdate]:
    """Optimise a latent (and the noise maps) so that G reproduces ``target``; yields progress."""
    assert space in ("w", "wplus"), f"space {space!r}"
    task = task or null_task()
    t0 = time.monotonic()
    tgt = target_tensor(target, G, next(G.parameters()).device)
    loss.set_target(tgt)
    run = _Projection(copy.deepcopy(G).eval().requires_grad_(False), loss, space, options, init_ws, task)
    steps, done, cancelled = options.steps, 0, run.stopped
    try:
        for step in range(0 if run.stopped else steps):
            dist_value, img = run.step(step / steps)
            done = step + 1
            image = report_step(task, space, done, steps, dist_value, img, options.preview_every)
            yield InversionUpdate(space, done, steps, dist_value, image)
    except Cancelled:
        cancelled = True
    ws, img, noise = run.finish(cancelled)
    res = stage_result(space, ws, img, tgt, t0, done, steps, cancelled, noise)
    yield InversionUpdate(space, done, steps, run.best[0], res.image, stage_result=res)


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
    res = stage_result("encoder", ws, img, tgt, t0, 1, 1, False)
    task.report(1, 1, "encoder", image=res.image)
    yield InversionUpdate("encoder", 1, 1, float("nan"), res.image, stage_result=res)


def _finish(stages: list[StageResult], loss_name: str, t0: float) -> InversionResult:
    last = stages[-1]
    return InversionResult(last.ws, last.image, stages, loss_name, time.monotonic() - t0,
                           any(s.cancelled for s in stages), last.noise, last.G_tuned)  # fmt: skip


def _plan(method: str, has_encoder: bool) -> list[str]:
    """The stages a method runs, in order."""
    return {"w": ["w"], "wplus": ["wplus"], "encoder": ["encoder"], "pti": ["w", "pti"],
            "progressive": (["encoder", "wplus"] if has_encoder else ["w"]) + ["pti"]}[method]  # fmt: skip


def invert(
    G: nn.Module,  # StyleGAN generator
    target: np.ndarray,  # uint8 [R, R, C] aligned image at G's resolution
    loss: InversionLoss,  # see make_inversion_loss
    method: str = "wplus",  # one of METHODS
    *,
    projection: ProjectOptions = ProjectOptions(steps=500),  # the W / W+ stage
    pti: PTIOptions = PTIOptions(),  # the generator-tuning stage (methods 'pti', 'progressive')
    E: nn.Module | None = None,  # learned encoder (method 'encoder'; optional start for 'progressive')
    task: Task | None = None,  # progress and cancel
) -> Iterator[InversionUpdate]:
    """Run one inversion method; each stage's result is yielded as soon as it exists.  Every update's
    ``extra['progress']`` is the whole run's progress in [0, 1] and ``extra['seconds']`` its time so far."""
    if method not in METHODS:
        raise GanEditorError(f"unknown inversion method {method!r} (choose from {', '.join(METHODS)})")
    if method == "encoder" and E is None:
        raise GanEditorError("method 'encoder' needs an encoder checkpoint (--encoder)")
    task = task or null_task()
    t0 = time.monotonic()
    plan = _plan(method, E is not None)
    units = {"encoder": 1, "w": projection.steps, "wplus": projection.steps, "pti": pti.steps}
    total = sum(units[s] for s in plan)
    stages: list[StageResult] = []
    pos = 0
    for name in plan:
        sub = task.sub(pos, units[name], total)
        prev = stages[-1] if stages else None
        if name == "encoder":
            gen = encode(G, E, target, sub)
        elif name in ("w", "wplus"):
            gen = project(G, target, loss, name, options=projection, init_ws=prev.ws if prev else None, task=sub)
        else:
            gen = tune(G, target, loss, prev.ws, prev.noise, options=pti, task=sub)
        for up in gen:
            up.extra["progress"] = (pos + up.step / max(up.steps, 1) * units[name]) / total
            up.extra["seconds"] = time.monotonic() - t0
            if up.stage_result is not None:
                stages.append(up.stage_result)
            yield up
        pos += units[name]
        if stages and stages[-1].cancelled:
            break
    result = _finish(stages, loss.name, t0)
    yield InversionUpdate(stages[-1].method, stages[-1].steps_done, stages[-1].steps, float("nan"), result.image,
                          stage_result=None, result=result, extra={"progress": 1.0, "seconds": result.seconds})  # fmt: skip


def run_inversion(updates: Iterator[InversionUpdate]) -> InversionResult:
    """Drain an inversion generator and return its final result."""
    result = None
    for up in updates:
        if up.result is not None:
            result = up.result
    if result is None:
        raise GanEditorError("inversion produced no result")
    return result
