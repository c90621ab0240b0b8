"""Exact banded inference for networks with instance norm (whole-image statistics), at bounded memory.

Instance norm normalises each channel with the mean and variance of the WHOLE activation, so cutting
the image into independent tiles changes the result.  This module runs such a network (a
``nn.Sequential`` of pads, convs, transposed convs, nearest upsamplings, instance norms, pointwise layers and residual
blocks ``x + conv_block(x)`` -- junyanz's ResnetGenerator) in horizontal bands and gets the same
numbers as one whole-image forward:

1. The network is flattened into ops.  A pad module merges into the conv after it.  All activations
   are channels_last (oneDNN's fast layout; convs use channels_last copies of the weights).
2. When one whole-image pass fits the memory budget (``tiling_common.engine_budget``; peak estimated
   by ``whole_image_bytes``), that is all: the ops run on the whole image and each norm measures its
   own statistics (fused batch norm of one image = instance norm).  No bands, no stores.
3. Otherwise every op is evaluated in "valid mode" on a band of rows [r0, r1) of its input: padding
   only at the true image top/bottom (zero padding is left to the convolution itself, no padded
   copy); the op returns exactly the output rows whose inputs were all present.  Rows needed for an
   output band are found by walking the ops backwards, so each band reads just the context it needs.
4. A pass runs a chain of ops from a *source* (the padded input image, or a stored activation) band
   by band, and hands each output band to a consumer: accumulate per-channel sums and sums of
   squares (two GEMMs per band, combined in float64) of a norm's input, write a stored activation,
   or quantise into the output.
5. The schedule (``_plan``): statistics norm by norm in network order, each pass applying the norms
   before it with their (already global) statistics.  A norm's input is stored by its statistics
   pass when recomputing the chain before it for each later pass would cost more FLOPs than
   ``RECOMPUTE_FLOPS_PER_BYTE`` per stored byte (junyanz: the 128-channel 1/2-resolution
   activations are stored, the full-resolution 64-channel ones recomputed).  Before each residual
   block its input is in a store (the 4*ngf channels at 1/4 resolution: 64 bytes per input pixel);
   inside a block each norm's input is stored by the pass that measures it, so every block conv
   runs once, and the block output overwrites the store in place, one band behind the band being
   computed (the next band still reads the old rows of its context).
   Stores live in RAM while the run's store budget lasts, then in temporary files (plain file I/O
   through the page cache, so they are not process memory).
All values are fp32 (or the caller's autocast); statistics accumulate in float64, so the result
equals the whole-image forward up to float rounding (|diff| <= 1/255 after quantisation).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.errors import GanEditorError
from ganeditor.core.progress import Task
from ganeditor.core.tiling_bands import (ImageSource, Op, RamBudget, Run, Store, in_place, materialise, out_size,
                                         run_pass, stats_pass)
from ganeditor.core.tiling_common import TileOptions, engine_budget, padded_index, quantize_rows

POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.Identity, nn.BatchNorm2d, nn.PReLU)
PADS = {nn.ReflectionPad2d: "reflect", nn.ReplicationPad2d: "replicate", nn.ZeroPad2d: "constant"}
NORM_FALLBACK_TILE = 512  # band height to halve from when the automatic choice ran out of memory
RECOMPUTE_FLOPS_PER_BYTE = 150  # store an activation rather than recompute it when that costs more FLOPs per byte


def flatten(seq: nn.Module) -> list[Op]:
    """Ops of a Sequential; raises GanEditorError for layers the banded engine does not know."""
    ops: list[Op] = []
    pending: tuple[int, str] | None = None
    for m in seq.children() if isinstance(seq, nn.Sequential) else [seq]:
        if type(m) in PADS:
            p = m.padding if isinstance(m.padding, tuple) else (m.padding,) * 4
            if len(set(p)) != 1:
                raise GanEditorError(f"banded inference needs symmetric padding, got {p}")
            pending = (p[0], PADS[type(m)])
        elif isinstance(m, nn.Conv2d):
            k, s, own = m.kernel_size, m.stride, m.padding
            if k[0] != k[1] or s[0] != s[1] or own[0] != own[1] or m.dilation != (1, 1) or m.padding_mode == "circular":
                raise GanEditorError("banded inference needs square, undilated, non-circular convolutions")
            if pending and own[0]:
                raise GanEditorError("a pad layer followed by a padded convolution is not supported")
            pad, mode = pending or (own[0], {"zeros": "constant"}.get(m.padding_mode, m.padding_mode))
            ops.append(Op("conv", m, pad, mode))
            pending = None
        elif isinstance(m, nn.ConvTranspose2d):
            if m.kernel_size[0] != m.kernel_size[1] or m.stride[0] != m.stride[1] or m.padding[0] != m.padding[1] \
                    or m.output_padding[0] != m.output_padding[1] or m.output_padding[0] > m.padding[0] \
                    or m.dilation != (1, 1) or m.groups != 1 or pending:
                raise GanEditorError("banded inference does not support this transposed convolution")
            ops.append(Op("convT", m))
        elif isinstance(m, nn.Upsample) and m.mode == "nearest" and _integer_scale(m.scale_factor):
            ops.append(Op("up", pad=_integer_scale(m.scale_factor)))
        elif isinstance(m, nn.InstanceNorm2d):
            ops.append(Op("point" if m.track_running_stats else "norm", m))
        elif isinstance(m, POINTWISE):
            ops.append(Op("point", m))
        elif isinstance(getattr(m, "conv_block", None), nn.Sequential):
            ops.append(Op("block", m, inner=flatten(m.conv_block)))
        else:
            raise GanEditorError(f"banded inference does not support layer {type(m).__name__}")
    return ops


def _integer_scale(factor) -> int:
    """The integer factor of a nearest upsampling (the same on both axes), else 0."""
    values = set(factor) if isinstance(factor, tuple) else {factor}
    if len(values) != 1 or None in values:
        return 0
    v = float(values.pop())
    return int(v) if v.is_integer() and v >= 1 else 0


def _block(run: Run, x: Store, op: Op) -> None:
    """Replace the stored block input ``x`` by the block output, computing the inner norms' statistics.

    Each inner norm's input is stored (RAM while the run's budget lasts, else a temporary file) by the
    pass that accumulates its statistics; the next stage reads it, so every conv runs once.
    """
    norms = [j for j, o in enumerate(op.inner) if o.kind == "norm"]
    if not norms:
        in_place(run, x, [op])
        return
    h, prev = x, 0
    try:
        for j in norms:
            label = f"statistics {run.done + 1}/{run.n_passes}"
            h, prev = materialise(run, h, op.inner[prev:j], close_src=h is not x, stats_of=op.inner[j].module,
                                  label=label), j
        in_place(run, x, op.inner[prev:] + [Op("add", store=x)], src=h, label="block")
    finally:
        if h is not x:
            h.close()


def _flops(ops: list[Op], c: int, h: int, w: int) -> float:
    """Multiply-adds x 2 of a chain on a [c, h, w] input."""
    total = 0.0
    for op in ops:
        m = op.module
        if op.kind in ("conv", "convT"):
            ho, wo = out_size(op, h), out_size(op, w)
            k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
            total += 2.0 * k * m.out_channels * (ho * wo if op.kind == "conv" else h * w * (m.stride[0] ** 2))
            c, h, w = m.out_channels, ho, wo
        elif op.kind == "block":
            total += _flops(op.inner, c, h, w)
    return total


def _shape_after(ops: list[Op], c: int, h: int, w: int) -> tuple[int, int, int]:
    for op in ops:
        if op.kind in ("conv", "convT"):
            c = op.module.out_channels
        h, w = out_size(op, h), out_size(op, w)
    return c, h, w


def whole_image_bytes(ops: list[Op], c: int, h: int, w: int) -> float:
    """Peak bytes (fp32) of one whole-image pass: each op's input, output and padded copy alive at once."""
    peak = 0.0
    for op in ops:
        co, ho, wo = _shape_after([op], c, h, w)
        pad = op.pad if op.kind == "conv" and op.pad_mode != "constant" else 0  # zero padding: done by the conv
        inner = whole_image_bytes(op.inner, c, h, w) if op.kind == "block" else 0.0
        now = 4.0 * (c * h * w + co * ho * wo + (c * (h + 2 * pad) * (w + 2 * pad) if pad else 0))
        peak = max(peak, now, inner + 4.0 * c * h * w)
        c, h, w = co, ho, wo
    return peak


def _worth_storing(ops: list[Op], c: int, h: int, w: int) -> bool:
    """Store a norm's input when recomputing ``ops`` for each later pass costs more than writing and reading it."""
    co, ho, wo = _shape_after(ops, c, h, w)
    return _flops(ops, c, h, w) >= RECOMPUTE_FLOPS_PER_BYTE * 4.0 * co * ho * wo


def run_global_norm(net: nn.Module, image: np.ndarray, opts: TileOptions, task: Task,
                    store_budget: int | None = None) -> np.ndarray:
    """Whole-image-exact inference of an instance-norm Sequential network (see the module docstring).

    ``opts.tile`` is the band height in image rows (None: one whole-image pass when it fits the memory
    budget, else bands from the budget); ``store_budget`` caps the RAM of stored activations."""
    h, w, c = image.shape
    device, conv, out_dtype = opts.device, opts.conv, opts.out_dtype or image.dtype.type
    rows, cols = padded_index(h, 0, opts.mod), padded_index(w, 0, opts.mod)
    src = ImageSource(image, rows, cols, conv, device)
    ops = flatten(getattr(net, "model", net))
    out = np.empty((h, w, c), out_dtype)
    budget, stores = engine_budget(device, out.nbytes)
    ram = RamBudget(store_budget if store_budget is not None else stores)

    def emit(a: int, b: int, y: torch.Tensor) -> None:
        if a < h:
            out[a : min(b, h)] = quantize_rows(y[:, :, : min(b, h) - a, :w], conv, out_dtype, c == 1)

    if opts.tile is None and whole_image_bytes(ops, 3, len(rows), len(cols)) <= budget + ram.left or \
            opts.tile is not None and opts.tile >= max(len(rows), len(cols)):
        run = Run(device, opts.autocast, len(rows), budget, task, 1, len(rows), ram)  # one band: norms measure inline
        run_pass(run, src, ops, emit, "whole image")
        return out
    steps = _plan(ops, src)
    run = Run(device, opts.autocast, opts.tile, budget, task, sum(_passes(step, ops) for step in steps), len(rows), ram)
    _run_steps(run, src, ops, steps, emit)
    return out


def _plan(ops: list[Op], src: ImageSource) -> list[tuple[str, int, int]]:
    """The multi-pass schedule as (step, start, end) over ``ops``: statistics norm by norm in network
    order; a norm's input is stored when recomputing it for later passes costs more; before each
    residual block its input is stored; the rest of the network runs into the output."""
    steps: list[tuple[str, int, int]] = []
    stored, pos = False, 0
    c, h, w = src.channels, src.height, src.width
    for i, op in enumerate(ops):
        if op.kind == "norm":
            keep = _worth_storing(ops[pos:i], c, h, w)
            steps.append(("store statistics" if keep else "statistics", pos, i))
            if keep:
                c, h, w = _shape_after(ops[pos:i], c, h, w)
                stored, pos = True, i
        elif op.kind == "block":
            pointwise = all(o.kind in ("norm", "point") for o in ops[pos:i])
            if not stored or not pointwise:
                steps.append(("store", pos, i))
            elif pos < i:
                steps.append(("in place", pos, i))  # e.g. norm + ReLU applied to the stored input
            steps.append(("block", i, i + 1))
            c, h, w = _shape_after(ops[pos : i + 1], c, h, w)
            stored, pos = True, i + 1
    steps.append(("output", pos, len(ops)))
    return steps


def _passes(step: tuple[str, int, int], ops: list[Op]) -> int:
    """Passes over the image a step makes (a block: one per inner norm, plus the in-place output)."""
    return 1 + sum(o.kind == "norm" for o in ops[step[1]].inner) if step[0] == "block" else 1


def _run_steps(run: Run, src: ImageSource, ops: list[Op], steps: list[tuple[str, int, int]], emit) -> None:  # noqa: ANN001
    """Execute the schedule of ``_plan``."""
    store: Store | None = None
    try:
        for kind, a, b in steps:
            here = store or src
            label = f"statistics {run.done + 1}/{run.n_passes}"
            if kind == "statistics":
                stats_pass(run, here, ops[a:b], ops[b].module, label)
            elif kind == "store statistics":
                store = materialise(run, here, ops[a:b], stats_of=ops[b].module, label=label)
            elif kind == "store":
                store = materialise(run, here, ops[a:b])
            elif kind == "in place":
                in_place(run, store, ops[a:b], label="activations")
            elif kind == "block":
                _block(run, store, ops[a])
            else:
                run_pass(run, here, ops[a:b], emit, "output")
    finally:
        if store is not None:
            store.close()
