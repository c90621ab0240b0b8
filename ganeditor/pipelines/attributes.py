"""The portrait attribute regressor: build, train (on streamed procedural portraits), evaluate on
held-out seeds, save/load, and score any images in the attributes' units.

Units: every attribute keeps the units of ``worlds.portraits.ATTRIBUTES``; ``model.sigmas`` are
the population spreads of the ground truth (edits are measured in σ).  ``glasses`` is binary (the
score is a probability), ``bg_hue`` is circular (differences wrap), ``glasses_darkness`` is only
defined on faces wearing glasses (its loss and metrics use those faces only).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs import build
from ganeditor.core.errors import CheckpointError
from ganeditor.core.progress import Task, null_task
from ganeditor.formats import load_checkpoint
from ganeditor.formats.base import Checkpoint
from ganeditor.formats.native import save_checkpoint
from ganeditor.worlds.datasets import to_tensor
from ganeditor.worlds.portraits import (ATTRIBUTE_NAMES, ATTRIBUTES, attributes_for_seed, attributes_vector,
                                        render_portraits)

PORTRAIT_BINARY = ("glasses",)
PORTRAIT_CIRCULAR = ("bg_hue",)
PORTRAIT_CONDITIONS = {"glasses_darkness": "glasses"}
TRAIN_SEED_BASE = 50_000_000  # training portraits: seeds TRAIN_SEED_BASE + k (one fresh face per sample)
HELDOUT_SEED_BASE = 1_500_000_000  # held-out portraits (never used for training)
ROLE = "regressor"


def wrap_delta(d: np.ndarray, period: float) -> np.ndarray:
    """Differences on a circle of ``period``, mapped into [-period/2, period/2)."""
    return (d + period / 2) % period - period / 2


def attribute_deltas(model: nn.Module, after: np.ndarray, before: np.ndarray) -> np.ndarray:
    """``after - before`` for score arrays [..., A] (circular attributes wrap)."""
    d = np.asarray(after, np.float64) - np.asarray(before, np.float64)
    for i, a in enumerate(model.attributes):
        if a in model.circular:
            lo, hi = model.ranges[i]
            d[..., i] = wrap_delta(d[..., i], hi - lo)
    return d


def population_sigmas(names: Sequence[str] = (), n: int = 20000, seed_base: int = TRAIN_SEED_BASE) -> list[float]:
    """σ of each portrait attribute's ground truth over ``n`` seeds (conditional ones over their condition)."""
    names = list(names) or list(ATTRIBUTE_NAMES)
    truth = np.stack([attributes_vector(attributes_for_seed(seed_base + i)) for i in range(n)]).astype(np.float64)
    out = []
    for a in names:
        v = truth[:, ATTRIBUTE_NAMES.index(a)]
        if a in PORTRAIT_CONDITIONS:
            v = v[truth[:, ATTRIBUTE_NAMES.index(PORTRAIT_CONDITIONS[a])] > 0.5]
        if a in PORTRAIT_CIRCULAR:
            lo, hi = ATTRIBUTES[a][:2]
            ang = (v - lo) / (hi - lo) * 2 * math.pi
            centre = math.atan2(np.sin(ang).mean(), np.cos(ang).mean()) / (2 * math.pi) * (hi - lo) + lo
            out.append(float(np.sqrt(np.mean(wrap_delta(v - centre, hi - lo) ** 2))))
        else:
            out.append(float(v.std()))
    return out


def build_portrait_regressor(
    input_size: int = 64,  # network input size (images of any size are resized to it)
    channels: Sequence[int] = (24, 48, 96, 160),  # stage channels
    sigmas: Sequence[float] | None = None,  # population σ per attribute, None = computed from 20k seeds
) -> nn.Module:
    """A fresh regressor for every portrait attribute, in ``ATTRIBUTE_NAMES`` order."""
    names = list(ATTRIBUTE_NAMES)
    return build("attribute-regressor", attributes=names, ranges=[list(ATTRIBUTES[a][:2]) for a in names],
                 binary=list(PORTRAIT_BINARY), circular=list(PORTRAIT_CIRCULAR),
                 sigmas=list(sigmas) if sigmas is not None else population_sigmas(names),
                 conditions=dict(PORTRAIT_CONDITIONS), input_size=int(input_size),
                 channels=[int(c) for c in channels])  # fmt: skip


def _as_batch(images: Any) -> torch.Tensor:
    """uint8 [N,H,W,3]/[H,W,3] (numpy or torch) or float [N,3,H,W] in [-1,1] -> float [N,3,H,W]."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.dtype == torch.uint8:
        if images.ndim == 3:
            images = images[None]
        assert images.ndim == 4 and images.shape[-1] == 3, f"uint8 images must be [N,H,W,3], got {list(images.shape)}"
        return images.movedim(-1, 1).float().div(127.5).sub(1.0)
    assert images.ndim == 4 and images.shape[1] == 3, f"float images must be [N,3,H,W], got {list(images.shape)}"
    return images.float().clamp(-1, 1)


def score_array(model: nn.Module, images: Any, batch: int = 128) -> np.ndarray:
    """Scores [N, A] (attribute units, ``model.attributes`` order) for a batch of images."""
    x = _as_batch(images)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            out.append(model.scores(model(x[i : i + batch].to(device))).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, len(model.attributes)))


def score_images(model: nn.Module, images: Any, batch: int = 128) -> dict[str, np.ndarray]:
    """Attribute scores of images (uint8 [N,H,W,3] or float [N,3,H,W] in [-1,1]): name -> [N]."""
    s = score_array(model, images, batch)
    return {a: s[:, i] for i, a in enumerate(model.attributes)}


def load_regressor(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """Load an attribute regressor saved by ``save_regressor`` (our safetensors format)."""
    ckpt = load_checkpoint(path, device)
    net = ckpt.nets.get(ROLE, ckpt.primary)
    if getattr(net, "arch_name", None) != "attribute-regressor":
        raise CheckpointError(f"not an attribute regressor (architecture {getattr(net, 'arch_name', '?')!r})", path)
    net.meta = ckpt.meta
    return net


def save_regressor(model: nn.Module, path: str | Path, meta: dict[str, Any] | None = None) -> None:
    """Write the regressor atomically as fp16 safetensors with JSON metadata."""
    ckpt = Checkpoint("ganeditor", "GAN Editor safetensors", {ROLE: model}, dict(meta or {}))
    save_checkpoint(ckpt, path, dtype=torch.float16)


def regressor_loss(model: nn.Module, raw: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss, per-attribute losses [A]): squared error in σ units; BCE for binary; (cos,sin) error for circular."""
    raw, truth = raw.float(), truth.float()
    assert truth.shape == (raw.shape[0], len(model.attributes)), f"truth {list(truth.shape)}"
    names = model.attributes
    per = []
    for i, (a, sl, (lo, hi), sig) in enumerate(zip(names, model.slices, model.ranges, model.sigmas)):
        r, y = raw[:, sl], truth[:, i]
        if a in model.binary:
            loss = F.binary_cross_entropy_with_logits(r[:, 0], (y > 0.5).float(), reduction="none")
        elif a in model.circular:
            ang = (y - lo) / (hi - lo) * 2 * math.pi
            target = torch.stack([ang.cos(), ang.sin()], 1)
            loss = (r - target).square().sum(1) * ((hi - lo) / (2 * math.pi * sig)) ** 2
        else:
            pred = (lo + hi) / 2 + (hi - lo) / 2 * r[:, 0]
            loss = ((pred - y) / sig).square()
        cond = model.conditions.get(a)
        if cond is not None:
            m = (truth[:, names.index(cond)] > 0.5).float()
            per.append((loss * m).sum() / m.sum().clamp(min=1.0))
        else:
            per.append(loss.mean())
    per_t = torch.stack(per)
    return per_t.mean(), per_t.detach()


def _augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Mild GAN-like degradations: blur (down/up-sampling) on some images, light Gaussian noise."""
    n, _, h, w = x.shape
    out = x.clone()
    blur = rng.random(n) < 0.3
    if blur.any():
        s = int(rng.integers(max(16, h * 5 // 8), h))
        idx = torch.from_numpy(np.flatnonzero(blur))
        small = F.interpolate(x[idx], size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        out[idx] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    noise = torch.from_numpy(rng.uniform(0, 0.03, (n, 1, 1, 1)).astype(np.float32))
    out += torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32)) * noise
    return out.clamp(-1, 1)


def render_batch(seeds: Sequence[int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Portraits of ``seeds``: (images [B,3,S,S] in [-1,1], ground truth [B,A] in ATTRIBUTE_NAMES order)."""
    imgs, attrs, _ = render_portraits([int(s) for s in seeds], size)
    return to_tensor(imgs), torch.from_numpy(np.stack([attributes_vector(a) for a in attrs]))


class PortraitBatches(torch.utils.data.IterableDataset):
    """Training batches by step: portraits of fresh seeds, a render size and augmentation seeded by the step.

    The same bytes whatever the number of DataLoader workers (worker k of K renders steps k, k+K, ...).
    """

    def __init__(self, steps: int, batch: int, sizes: Sequence[int], seed_base: int, rng_seed: int) -> None:
        self.steps, self.batch, self.sizes = int(steps), int(batch), [int(s) for s in sizes]
        self.seed_base, self.rng_seed = int(seed_base), int(rng_seed)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        k, kk = (0, 1) if info is None else (info.id, info.num_workers)
        for step in range(k, self.steps, kk):
            rng = np.random.default_rng([self.rng_seed, step])
            first = self.seed_base + step * self.batch
            x, y = render_batch(range(first, first + self.batch), self.sizes[int(rng.integers(len(self.sizes)))])
            yield _augment(x, rng), y


def train_regressor(
    task: Task | None,  # progress + cancel
    model: nn.Module,  # regressor (from build_portrait_regressor), trained in place
    steps: int = 1500,  # optimiser steps
    batch: int = 32,  # portraits per step (each a fresh seed)
    lr: float = 2e-3,  # peak AdamW learning rate (linear warm-up, cosine decay to 0)
    sizes: Sequence[int] = (64, 64, 64, 80),  # render sizes drawn per step (the net resizes)
    seed_base: int = TRAIN_SEED_BASE,  # first training portrait seed
    device: torch.device | str = "cpu",  # where to train
    fast: bool = True,  # bf16 autocast + channels_last (on CPUs with bf16, and on CUDA)
    rng_seed: int = 0,  # augmentation / init randomness
    workers: int = 0,  # rendering processes (spawned) beside the training loop, 0 = render inline
) -> list[dict[str, float]]:
    """Train on streamed procedural portraits; returns the loss history (one entry per 50 steps)."""
    task = task or null_task()
    torch.manual_seed(rng_seed)
    device = torch.device(device)
    model.to(device).train()
    if fast:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warm = max(1, steps // 30)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    data = torch.utils.data.DataLoader(
        PortraitBatches(steps, batch, sizes, seed_base, rng_seed), batch_size=None, num_workers=workers,
        multiprocessing_context="spawn" if workers else None, prefetch_factor=4 if workers else None)  # fmt: skip
    history, acc, t0 = [], [], time.perf_counter()
    for step, (x, y) in enumerate(data):
        x = x.to(device)
        if fast:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            raw = model(x)
        loss, per = regressor_loss(model, raw, y.to(device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"regressor loss is {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        acc.append(per.cpu().numpy())
        if (step + 1) % 50 == 0 or step + 1 == steps:
            m = np.mean(acc, axis=0)
            history.append({"step": step + 1, "loss": float(m.mean()), "seconds": time.perf_counter() - t0,
                            **{a: float(v) for a, v in zip(model.attributes, m)}})  # fmt: skip
            acc = []
        task.report(step + 1, steps, f"step {step + 1}/{steps} loss {loss.item():.4f}")
    model.eval()
    return history


def evaluate_regressor(
    model: nn.Module,  # trained regressor
    n: int = 2000,  # held-out portraits
    size: int = 64,  # render size
    seed_base: int = HELDOUT_SEED_BASE,  # first held-out seed
    task: Task | None = None,  # progress + cancel
) -> dict[str, dict[str, float]]:
    """Held-out metrics per attribute: MAE (units), MAE in σ, R², accuracy (binary), σ, samples used."""
    task = task or null_task()
    preds, truths = [], []
    for i in range(0, n, 128):
        x, y = render_batch(range(seed_base + i, seed_base + min(n, i + 128)), size)
        preds.append(score_array(model, x))
        truths.append(y.numpy().astype(np.float64))
        task.report(min(n, i + 128), n, "held-out evaluation")
    return attribute_metrics(model, np.concatenate(preds), np.concatenate(truths))


def attribute_metrics(model: nn.Module, pred: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, float]]:
    """Metrics of predictions [N, A] against ground truth [N, A] (see ``evaluate_regressor``)."""
    out: dict[str, dict[str, float]] = {}
    names = model.attributes
    for i, a in enumerate(names):
        keep = np.ones(len(truth), bool)
        if a in model.conditions:
            keep = truth[:, names.index(model.conditions[a])] > 0.5
        p, y = pred[keep, i], truth[keep, i]
        sig = model.sigmas[i]
        if a in model.circular:
            per = model.ranges[i][1] - model.ranges[i][0]
            err = wrap_delta(p - y, per)
            ang = y / per * 2 * math.pi
            centre = math.atan2(np.sin(ang).mean(), np.cos(ang).mean()) / (2 * math.pi) * per
            sst = np.mean(wrap_delta(y - centre, per) ** 2)
        else:
            err, sst = p - y, y.var()
        m = {"mae": float(np.abs(err).mean()), "mae_sigma": float(np.abs(err).mean() / sig),
             "r2": float(1 - np.mean(err**2) / max(sst, 1e-12)), "sigma": float(sig), "n": int(keep.sum())}  # fmt: skip
        if a in model.binary:
            m["accuracy"] = float(((p > 0.5) == (y > 0.5)).mean())
        out[a] = m
    return out
