"""Exact banded inference for super-resolution networks that describe themselves as a ``TrunkPlan``
(RRDBNet / ESRGAN / Real-ESRGAN, MSRResNet / SRGAN, SRVGGNetCompact), at bounded memory.

An SR network is a *head* (the input image -> trunk features, at input resolution), a *body* of
stride-1 blocks (RRDB, residual block, conv + activation) and a *tail* up to the output (long skip
from the head, upsampling convs, pixel shuffle, the upsampled input added at the end).  With the
valid-mode row bands of ``tiling_bands``:

1. When the whole network fits the work budget at full height: one pass, no stores.
2. Else the trunk (head + body) runs in one full-height band when it fits, into a store; else the
   head is stored (twice with a long skip: ``feat`` and ``trunk``) and the body runs band by band
   in groups of blocks that overwrite ``trunk`` in place one band behind (``tiling_bands.in_place``);
   a group re-reads the rows of context its blocks need (RRDB: 15 per block), so groups are sized to
   keep that under ~6 % of a band.
3. The tail runs band by band from ``trunk`` straight into the quantised output; its context is a
   few rows (each conv one row at its resolution), the upsampled input is computed from the image
   rows each band needs (``tiling_bands.upsampled_rows``).

Every conv runs once plus its band context; memory is the stores (RAM while the run's budget lasts,
then temporary files) plus one band of work.  The result equals the whole-image forward up to float
rounding (|diff| <= 1/255 after quantisation).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ganeditor.core.progress import Task
from ganeditor.core.tiling_bands import (ImageSource, Op, RamBudget, Run, Store, in_place, materialise,
                                         out_size, run_pass)
from ganeditor.core.tiling_common import TileOptions, engine_budget, padded_index, quantize_rows

OPAQUE_WORK = 64 * 2**20  # bytes an opaque block needs beyond its input and output (it runs in column chunks)
HALO_SHARE = 0.06  # most recomputed context per band when the body runs in groups of blocks


@dataclass
class TrunkPlan:
    """An SR network in the banded engine's terms (see the module docstring)."""

    head: list[Op]  # input image -> trunk features (stride-1 convs, pixel unshuffle)
    body: list[Op]  # stride-1 ops at trunk resolution: 'opaque' blocks with their halo, or conv / point ops
    tail: list[Op]  # trunk -> output; an 'add' without a store adds the head output (the long skip)
    channels: int  # trunk feature channels


@runtime_checkable
class BandPlanned(Protocol):
    """A network that can describe itself as a ``TrunkPlan`` (``None``: it cannot)."""

    def band_plan(self) -> TrunkPlan | None: ...


def plan_of(net: object) -> TrunkPlan | None:
    """The network's band plan, or None for networks that offer none."""
    return net.band_plan() if isinstance(net, BandPlanned) else None


def chain_bytes(ops: list[Op], c: int, h: int, w: int) -> float:
    """Peak bytes (fp32) of running ``ops`` on a [c, h, w] input in one piece: each op's input, output and
    padded copy alive at once (a block: plus its input; an opaque block: plus its chunked work)."""
    peak = 0.0
    for op in ops:
        co = op.module.out_channels if op.kind in ("conv", "convT") else c
        co = co // op.pad**2 if op.kind == "shuffle" else co * op.pad**2 if op.kind == "unshuffle" else co
        ho, wo = out_size(op, h), out_size(op, w)
        now = 4.0 * (c * h * w + co * ho * wo)
        if op.kind == "conv" and op.pad and op.pad_mode != "constant":  # zero padding is done by the conv
            now += 4.0 * c * (h + 2 * op.pad) * (w + 2 * op.pad)
        elif op.kind == "block":
            now = 4.0 * c * h * w + chain_bytes(op.inner, c, h, w)
        elif op.kind == "opaque":
            now += OPAQUE_WORK
        elif op.kind in ("add", "skip"):
            now += 4.0 * co * ho * wo
        peak = max(peak, now)
        c, h, w = co, ho, wo
    return peak


def _bind(tail: list[Op], feat: Store | None, src: ImageSource) -> list[Op]:
    """The tail with its long skip reading ``feat`` and its input skip reading the image."""
    out = []
    for op in tail:
        if op.kind == "add" and op.store is None:
            op = replace(op, store=feat)
        elif op.kind == "skip":
            op = replace(op, store=src)
        out.append(op)
    return out


def _groups(body: list[Op], band: int) -> list[list[Op]]:
    """Consecutive body ops per in-place pass: as many as keep their context under HALO_SHARE of a band."""
    groups: list[list[Op]] = [[]]
    for op in body:
        halo = sum(o.pad if o.kind in ("opaque", "conv") else 0 for o in groups[-1] + [op])
        if groups[-1] and 2 * halo > HALO_SHARE * band:
            groups.append([])
        groups[-1].append(op)
    return groups


def run_trunk_banded(net: torch.nn.Module, plan: TrunkPlan, image: np.ndarray, scale: int, opts: TileOptions,
                     task: Task, store_budget: int | None = None) -> np.ndarray:
    """Whole-image-exact inference of a planned SR network (see the module docstring); [H*s, W*s, C]."""
    h, w, c = image.shape
    device, conv, out_dtype = opts.device, opts.conv, opts.out_dtype or image.dtype.type
    rows, cols = padded_index(h, opts.pre_pad, opts.mod), padded_index(w, opts.pre_pad, opts.mod)
    src = ImageSource(image, rows, cols, conv, device)
    oh, ow = h * scale, w * scale
    out = np.empty((oh, ow, c), out_dtype)
    budget, stores = engine_budget(device, out.nbytes)
    ram = RamBudget(store_budget if store_budget is not None else stores)

    def emit(a: int, b: int, y: torch.Tensor) -> None:
        if a < oh:
            out[a : min(b, oh)] = quantize_rows(y[:, :3, : min(b, oh) - a, :ow], conv, out_dtype, c == 1)

    hp, wp = len(rows), len(cols)
    long_skip = any(op.kind == "add" and op.store is None for op in plan.tail)
    whole = opts.tile is None or opts.tile >= max(hp, wp)
    if whole and chain_bytes(plan.head + plan.body + plan.tail, 3, hp, wp) <= budget + ram.left and not long_skip:
        run = Run(device, opts.autocast, hp, budget, task, 1, hp, ram)
        run_pass(run, src, plan.head + plan.body + _bind(plan.tail, None, src), emit, "whole image")
        return out
    trunk_whole = whole and chain_bytes(plan.head + plan.body, 3, hp, wp) <= budget
    groups = [plan.body] if trunk_whole else None
    n_passes = 2 + (1 if long_skip else 0) + (0 if trunk_whole else len(plan.body))
    run = Run(device, opts.autocast, hp if trunk_whole else opts.tile, budget, task, n_passes, hp, ram)
    feat = materialise(run, src, plan.head, label="head") if long_skip else None
    trunk = None
    try:
        if trunk_whole:
            trunk = materialise(run, feat or src, plan.body if feat else plan.head + plan.body, close_src=False,
                                label="trunk")
        else:
            trunk = materialise(run, src, plan.head, label="head")
            band = _band_rows(run, trunk, plan.body)
            groups = _groups(plan.body, band)
            run.n_passes = run.done + len(groups) + 1
            for i, group in enumerate(groups):
                in_place(run, trunk, group, label=f"blocks {i + 1}/{len(groups)}")
        run.band_image_rows = opts.tile  # the tail: bands from the budget (or the user's band height)
        run_pass(run, trunk, _bind(plan.tail, feat, src), emit, "output")
        return out
    finally:
        for store in (feat, trunk):
            if store is not None:
                store.close()


def _band_rows(run: Run, trunk: Store, body: list[Op]) -> int:
    """Band height (trunk rows) one body op runs with under the work budget (or the user's band)."""
    if run.band_image_rows:
        return max(1, run.band_image_rows * trunk.height // run.image_rows)
    c, w = trunk.channels, trunk.width
    per_row = max(chain_bytes([op], c, 2, w) - chain_bytes([op], c, 1, w) for op in body) if body else 1.0
    return max(4, int(run.budget / per_row))
