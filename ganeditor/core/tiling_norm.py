"""Exact banded inference for networks with instance norm (whole-image statistics), at bounded memory.

Instance norm normalises each channel with the mean and variance of the WHOLE activation, so cutting
the image into independent tiles changes the result.  This module runs such a network (a
``nn.Sequential`` of pads, convs, transposed convs, nearest upsamplings, instance norms, pointwise layers and residual
blocks ``x + conv_block(x)`` -- junyanz's ResnetGenerator) in horizontal bands and gets the same
numbers as one whole-image forward:

1. The network is flattened into ops.  A pad module merges into the conv after it.
2. Every op is evaluated in "valid mode" on a band of rows [r0, r1) of its input: padding is applied
   only at the true image top/bottom (the full width is always present); the op returns exactly
   the output rows whose inputs were all present.  Rows needed for an output band are found by
   walking the ops backwards, so each band reads just the context it needs.
3. A pass runs a chain of ops from a *source* (the padded input image, or a stored activation)
   band by band, and hands each output band to a consumer: accumulate per-channel sum and sum of
   squares (float64) of a norm's input, write a stored activation, or quantise into the output.
4. Statistics are computed norm by norm, in network order: the pass for norm k runs the chain from
   the latest source up to norm k, applying norms < k with their (already global) statistics.
5. Sources: the input image; before each residual block, the block input is materialised (head
   ops, or the previous block) in a store: RAM, or a temporary file (read/written with plain file
   I/O, so it does not count as process memory) when it exceeds the store budget.  In the ResNet
   generator that is the 4*ngf-channel activation at 1/4 resolution (64 bytes per input pixel).
   A block's output overwrites the store in place, one band behind the band being computed (the
   next band still reads the old rows of its context).  Inside a block, each norm's input is
   stored by the pass that accumulates its statistics and read by the next stage, so every block
   conv runs once.  The head and the tail (downsampling / upsampling convs, final conv) are
   recomputed per norm pass (cheap next to the 4*ngf-channel blocks).
   Memory: up to three stores (RAM while the store budget lasts, then temporary files) plus one
   band of working activations.
All values are fp32 (or the caller's autocast); statistics accumulate in float64, so the result
equals the whole-image forward up to float rounding (|diff| <= 1/255 after quantisation).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.errors import GanEditorError
from ganeditor.core.progress import Task
from ganeditor.core.tiling_bands import STORE_CAP, ImageSource, Op, Run, Store, in_place, materialise, run_pass, stats_pass
from ganeditor.core.tiling_common import (TileOptions, available_memory, compute_context, padded_index,
                                          probe_bytes_per_pixel, quantize_rows, work_budget)

POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.Identity, nn.BatchNorm2d, nn.PReLU)
PADS = {nn.ReflectionPad2d: "reflect", nn.ReplicationPad2d: "replicate", nn.ZeroPad2d: "constant"}
NORM_FALLBACK_TILE = 512  # band height to halve from when the automatic choice ran out of memory


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


def _block(run: Run, x: Store, op: Op, store_budget: int, device) -> None:
    """Replace the stored block input ``x`` by the block output, computing the inner norms' statistics.

    Each inner norm's input is stored (RAM while the budget lasts, else a temporary file) by the
    pass that accumulates its statistics; the next stage reads it, so every conv runs once.
    """
    norms = [j for j, o in enumerate(op.inner) if o.kind == "norm"]
    if not norms:
        in_place(run, x, [op])
        return
    left = store_budget - _ram_bytes(x)
    h, prev = x, 0
    try:
        for j in norms:
            label = f"statistics {run.done + 1}/{run.n_passes}"
            new = materialise(run, h, op.inner[prev:j], left, device, close_src=h is not x, stats_of=op.inner[j].module,
                              label=label)
            left += _ram_bytes(h) if h is not x else 0
            h, prev = new, j
            left -= _ram_bytes(h)
        in_place(run, x, op.inner[prev:] + [Op("add", store=x)], src=h, label="block")
    finally:
        if h is not x:
            h.close()


def _ram_bytes(s: Store) -> int:
    return 0 if s.file is not None else s.height * s.width * s.channels * 4


def _count_passes(ops: list[Op]) -> int:
    """How many passes ``run_global_norm`` makes (mirrors its loop)."""
    n, stored, pos = 1, False, 0
    for i, op in enumerate(ops):
        if op.kind == "norm":
            n += 1
        elif op.kind == "block":
            n += int(not stored or pos < i) + sum(o.kind == "norm" for o in op.inner) + 1
            stored, pos = True, i + 1
    return n


def run_global_norm(net: nn.Module, image: np.ndarray, opts: TileOptions, task: Task,
                    store_budget: int | None = None) -> np.ndarray:
    """Whole-image-exact inference of an instance-norm Sequential network (see the module docstring).

    ``opts.tile`` is the band height in image rows (None: one whole-image forward when it fits the
    work budget, else bands from the budget); ``store_budget`` caps the RAM of stored activations."""
    h, w, c = image.shape
    device, autocast, conv, out_dtype = opts.device, opts.autocast, opts.conv, opts.out_dtype or image.dtype.type
    rows, cols = padded_index(h, 0, opts.mod), padded_index(w, 0, opts.mod)
    src = ImageSource(image, rows, cols, conv, device)
    budget = work_budget(device)
    seq = getattr(net, "model", net)
    tile = opts.tile
    if tile is None:
        with compute_context(device, autocast):
            per_px = probe_bytes_per_pixel(net, device)
        if per_px * len(rows) * len(cols) <= budget:  # small enough: one exact whole-image forward
            tile = max(len(rows), len(cols))
    if tile is not None and tile >= max(len(rows), len(cols)):
        with compute_context(device, autocast):
            y = net(src.read(0, len(rows))).float()
        out = quantize_rows(y[:, :, :h, :w], conv, out_dtype, c == 1)
        task.report(1, 1, "done")
        return out
    ops = flatten(seq)
    run = Run(device, autocast, tile, budget, task, _count_passes(ops), len(rows))
    store_budget = store_budget if store_budget is not None else int(min(STORE_CAP, available_memory("cpu") / 2))
    store: Store | None = None
    pos = 0
    try:
        for i, op in enumerate(ops):
            if op.kind == "norm":
                stats_pass(run, store or src, ops[pos:i], op.module, f"statistics {run.done + 1}/{run.n_passes}")
            elif op.kind == "block":
                if store is None or pos < i:
                    store = materialise(run, store or src, ops[pos:i], store_budget, device)
                _block(run, store, op, store_budget, device)
                pos = i + 1
        out = np.empty((h, w, c), out_dtype)

        def emit(a: int, b: int, y: torch.Tensor) -> None:
            if a < h:
                out[a : min(b, h)] = quantize_rows(y[:, :, : min(b, h) - a, :w], conv, out_dtype, c == 1)

        run_pass(run, store or src, ops[pos:], emit, "output")
        return out
    finally:
        if store is not None:
            store.close()
