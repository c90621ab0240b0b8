"""Pivotal tuning (PTI): tune the synthesis network around a pivot latent, with the locality
regulariser, and keep the tuned weights as a delta against the base generator.

Facts from the PTI paper/code (Roich et al. 2021): Adam lr 3e-4, ~350 steps, loss = perceptual +
L2 on the target; locality regulariser: w_r = w_p + α·(w_z − w_p)/‖w_z − w_p‖ for a mapped random
z, keeping G_tuned(w_r) close to G_base(w_r) (L2 and perceptual, weight 0.1 each).  PTI uses
α = 30 for FFHQ's W; ours defaults to half the distance to the sampled w, which is scale-free.
The delta is stored in our safetensors format: role ``G_delta`` (same architecture, tensors =
tuned − base, noise maps included) with meta naming the base generator's fingerprint.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs import build
from ganeditor.core.errors import Cancelled, CheckpointError
from ganeditor.core.progress import Task, null_task
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.formats.native import save_checkpoint
from ganeditor.pipelines.direction_io import generator_fingerprint
from ganeditor.pipelines.invert_common import InversionUpdate, report_step, stage_result, target_tensor, with_noise
from ganeditor.pipelines.invert_loss import InversionLoss


@dataclass(frozen=True)
class PTIOptions:
    """Options of pivotal tuning (defaults: the PTI paper's, with a scale-free regulariser step)."""

    steps: int = 350  # tuning steps
    lr: float = 3e-4  # Adam learning rate
    l2_weight: float = 1.0  # weight of the pixel L2 term on the target
    locality: bool = True  # use the locality regulariser
    reg_alpha: float | None = None  # step towards a random w; None = half the distance to it
    reg_weight: float = 0.1  # weight of the regulariser (L2 and the loss alike)
    reg_every: int = 1  # apply the regulariser every N steps
    seed: int = 303  # seeds the regulariser's z samples
    preview_every: int = 10  # attach the current image to every N-th update (0: never)


def _locality(base: nn.Module, tuned: nn.Module, pivot: torch.Tensor, loss: InversionLoss, o: PTIOptions,
              gen: torch.Generator) -> torch.Tensor:
    """PTI's locality regulariser: the tuned generator must agree with the base one at a latent
    stepped from the pivot towards a random mapped z."""
    device = pivot.device
    z = torch.randn([1, base.z_dim], generator=gen).to(device)
    c = torch.zeros([1, base.c_dim], device=device)
    with torch.no_grad():
        w_z = base.mapping(z, c)
        d = w_z - pivot
        alpha = 0.5 * d.norm() if o.reg_alpha is None else o.reg_alpha
        w_r = pivot + alpha * d / d.norm().clamp_min(1e-8)
        ref = base.synthesis(w_r, noise_mode="const")
    out = tuned.synthesis(w_r, noise_mode="const")
    return o.reg_weight * (F.mse_loss(out, ref) + loss.pair(out, ref))


def tune(
    G: nn.Module,  # base generator; not modified
    target: np.ndarray,  # uint8 [R, R, C] at G's resolution
    loss: InversionLoss,  # reconstruction loss (target is set here)
    pivot_ws: torch.Tensor,  # [1, num_ws, w_dim] pivot latent
    noise: dict[str, torch.Tensor] | None = None,  # noise maps found with the pivot, None = G's own
    *,
    options: PTIOptions = PTIOptions(),  # steps, learning rate, regulariser, seed, previews
    task: Task | None = None,  # progress and cancel
) -> Iterator[InversionUpdate]:
    """Tune G's synthesis weights so that G(pivot) reproduces the target; final update has G_tuned."""
    o, task = options, task or null_task()
    t0 = time.monotonic()
    device = next(G.parameters()).device
    tgt = target_tensor(target, G, device)
    loss.set_target(tgt)
    base = with_noise(G, noise)
    base = (copy.deepcopy(base) if base is G else base).eval().requires_grad_(False)
    tuned = copy.deepcopy(base).eval()
    tuned.synthesis.requires_grad_(True)
    opt = torch.optim.Adam(tuned.synthesis.parameters(), lr=o.lr)
    pivot = pivot_ws.to(device).float().detach()
    assert pivot.shape == (1, G.num_ws, G.w_dim), f"pivot {list(pivot.shape)}"
    gen = torch.Generator().manual_seed(o.seed)
    best, done, cancelled = (float("inf"), None), 0, False
    try:
        for step in range(o.steps):
            img = tuned.synthesis(pivot, noise_mode="const")
            rec = loss(img)
            total = rec + o.l2_weight * F.mse_loss(img, tgt)
            if float(total.detach()) < best[0]:
                best = (float(total.detach()), {k: v.detach().clone() for k, v in tuned.synthesis.state_dict().items()})
            if o.locality and step % o.reg_every == 0:
                total = total + _locality(base, tuned, pivot, loss, o, gen)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            done = step + 1
            image = report_step(task, "pti", done, o.steps, float(rec.detach()), img, o.preview_every)
            yield InversionUpdate("pti", done, o.steps, float(rec.detach()), image)
    except Cancelled:
        cancelled = True
    tuned.requires_grad_(False)
    if cancelled and best[1] is not None:
        tuned.synthesis.load_state_dict(best[1])
    with torch.no_grad():
        img = tuned.synthesis(pivot, noise_mode="const")
    res = stage_result("pti", pivot, img, tgt, t0, done, o.steps, cancelled, noise, tuned)
    yield InversionUpdate("pti", done, o.steps, best[0], res.image, stage_result=res)


def pti_delta(G_base: nn.Module, G_tuned: nn.Module) -> Checkpoint:
    """The tuned weights as a delta (tuned − base) in a Checkpoint of our format (role 'G_delta')."""
    delta = build(G_base.arch_name, **G_base.init_kwargs)
    base_sd, tuned_sd = G_base.state_dict(), G_tuned.state_dict()
    delta.load_state_dict({k: (tuned_sd[k].float() - base_sd[k].float()).cpu() if base_sd[k].is_floating_point()
                           else base_sd[k] for k in base_sd})  # fmt: skip
    meta = {"kind": "pti-delta", "base_fingerprint": generator_fingerprint(G_base)}
    return Checkpoint("ganeditor", "GAN Editor PTI delta", {"G_delta": delta}, meta)


def save_pti_delta(path: str | Path, G_base: nn.Module, G_tuned: nn.Module) -> None:
    """Write the PTI delta file (safetensors, our format)."""
    save_checkpoint(pti_delta(G_base, G_tuned), path)


def apply_pti_delta(G_base: nn.Module, delta_path: str | Path) -> nn.Module:
    """A copy of ``G_base`` with a PTI delta file added; error if it was made for another generator."""
    ck = load_checkpoint(delta_path)
    if ck.meta.get("kind") != "pti-delta" or "G_delta" not in ck.nets:
        raise CheckpointError("not a PTI delta file", delta_path)
    if ck.meta.get("base_fingerprint") != generator_fingerprint(G_base):
        raise CheckpointError("this PTI delta was made for another generator", delta_path)
    return add_delta(G_base, ck.nets["G_delta"].state_dict())


def add_delta(G_base: nn.Module, delta: dict[str, torch.Tensor]) -> nn.Module:
    """A copy of ``G_base`` with weight differences (tuned − base, by state-dict key) added."""
    G = copy.deepcopy(G_base)
    with torch.no_grad():
        sd = G.state_dict()
        G.load_state_dict({k: (sd[k].float() + delta[k].to(sd[k].device)).to(sd[k].dtype)
                           if sd[k].is_floating_point() and k in delta else sd[k] for k in sd})  # fmt: skip
    return G.eval().requires_grad_(False)
