"""Exact banded inference for networks with instance norm (whole-image statistics), at bounded memory.

Instance norm normalises each channel with the mean and variance of the WHOLE activation, so cutting
the image into independent tiles changes the result.  This module runs such a network (a
``nn.Sequential`` of pads, convs, transposed convs, instance norms, pointwise layers and residual
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
   A block costs a pass per inner norm (its statistics) and one output pass that overwrites the
   store in place, one band behind the band being computed (the next band still reads the old
   rows of its context).  The tail (upsampling convs, final conv) is recomputed per norm pass and
   for the output from the last stored activation.
   Cost vs one whole-image forward: each block's first conv runs 3 times, its second twice, head
   and tail convs up to 3 times; memory: one store plus one band of working activations.
All values are fp32 (or the caller's autocast); statistics accumulate in float64, so the result
equals the whole-image forward up to float rounding (|diff| <= 1/255 after quantisation).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import PixelConvention, to_tensor
from ganeditor.core.progress import Task
from ganeditor.core.tiling import (available_memory, compute_context, padded_index, probe_bytes_per_pixel,
                                   to_output, work_budget)

POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Dropout, nn.Identity, nn.BatchNorm2d, nn.PReLU)
PADS = {nn.ReflectionPad2d: "reflect", nn.ReplicationPad2d: "replicate", nn.ZeroPad2d: "constant"}
STORE_CAP = 1536 * 2**20  # activations above this (or half the free memory) go to a temporary file


@dataclass
class Op:
    """One step of the flattened network."""

    kind: str  # 'conv' | 'convT' | 'norm' | 'point' | 'block' | 'opaque' | 'up' | 'unshuffle' | 'add'
    module: nn.Module | None = None
    pad: int = 0  # conv: padding on every side (own or from a pad module); opaque: halo rows; up/unshuffle: factor
    pad_mode: str = "constant"  # 'constant' (zeros) | 'reflect' | 'replicate'
    inner: list["Op"] = field(default_factory=list)  # the conv_block of a residual block
    store: "Store | None" = None  # 'add': the stored activation added row for row
    work_channels: int = 0  # opaque: channels alive inside the module (memory estimate)


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
        elif isinstance(m, nn.InstanceNorm2d):
            ops.append(Op("point" if m.track_running_stats else "norm", m))
        elif isinstance(m, POINTWISE):
            ops.append(Op("point", m))
        elif isinstance(getattr(m, "conv_block", None), nn.Sequential):
            ops.append(Op("block", m, inner=flatten(m.conv_block)))
        else:
            raise GanEditorError(f"banded inference does not support layer {type(m).__name__}")
    return ops


def out_size(op: Op, n: int) -> int:
    """Output height (= width rule) of ``op`` for an input of ``n`` rows."""
    m = op.module
    if op.kind == "conv":
        return (n + 2 * op.pad - m.kernel_size[0]) // m.stride[0] + 1
    if op.kind == "convT":
        return (n - 1) * m.stride[0] - 2 * m.padding[0] + m.kernel_size[0] + m.output_padding[0]
    if op.kind == "block":
        for inner in op.inner:
            n = out_size(inner, n)
    if op.kind == "up":
        return n * op.pad
    if op.kind == "unshuffle":
        return n // op.pad
    return n


def need_rows(op: Op, a: int, b: int, n_in: int) -> tuple[int, int]:
    """Input rows [lo, hi) that output rows [a, b) of ``op`` depend on."""
    m = op.module
    if op.kind == "conv":
        k, s, p = m.kernel_size[0], m.stride[0], op.pad
        return max(0, a * s - p), min(n_in, (b - 1) * s - p + k)
    if op.kind == "convT":
        k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
        return max(0, -((k - 1 - a - p) // s)), min(n_in, (b - 1 + p) // s + 1)
    if op.kind == "opaque":
        return max(0, a - op.pad), min(n_in, b + op.pad)
    if op.kind == "up":
        return a // op.pad, (b - 1) // op.pad + 1
    if op.kind == "unshuffle":
        return a * op.pad, min(n_in, b * op.pad)
    if op.kind == "block":
        lo, hi = a, b
        sizes = _sizes(op.inner, n_in)
        for inner, n in zip(reversed(op.inner), reversed(sizes[:-1])):
            lo, hi = need_rows(inner, lo, hi, n)
        return min(lo, a), max(hi, b)
    return a, b


def _sizes(ops: list[Op], n: int) -> list[int]:
    sizes = [n]
    for op in ops:
        sizes.append(out_size(op, sizes[-1]))
    return sizes


def forward_rows(op: Op, x: torch.Tensor, r0: int, r1: int, n_in: int, stats: dict) -> tuple[torch.Tensor, int, int]:
    """Apply ``op`` to rows [r0, r1) (full width) of an input of ``n_in`` rows; returns the exact output rows."""
    m = op.module
    if op.kind == "conv":
        k, s, p = m.kernel_size[0], m.stride[0], op.pad
        top, bot = (p if r0 == 0 else 0), (p if r1 == n_in else 0)
        xp = F.pad(x, (p, p, top, bot), mode=op.pad_mode) if p else x
        e0, e1 = r0 - top, r1 + bot
        o0 = max(0, -(-(e0 + p) // s))
        o1 = min(out_size(op, n_in), (e1 + p - k) // s + 1)
        start = o0 * s - p - e0
        xp = xp[:, :, start : start + (o1 - o0 - 1) * s + k]
        return F.conv2d(xp, m.weight, m.bias, s, 0, 1, m.groups), o0, o1
    if op.kind == "convT":
        k, s, p, opad = m.kernel_size[0], m.stride[0], m.padding[0], m.output_padding[0]
        y = F.conv_transpose2d(x, m.weight, m.bias, s, (0, p), (0, opad))
        base = r0 * s - p  # output row of y's first row
        o0 = 0 if r0 == 0 else (r0 - 1) * s + k - p
        o1 = out_size(op, n_in) if r1 == n_in else r1 * s - p
        o1 = min(o1, base + y.shape[2])
        return y[:, :, o0 - base : o1 - base], o0, o1
    if op.kind == "norm":
        mean, rstd = stats[id(m)]
        y = (x - mean) * rstd
        if m.affine:
            y = y * m.weight.view(1, -1, 1, 1) + m.bias.view(1, -1, 1, 1)
        return y, r0, r1
    if op.kind == "block":
        y, q0, q1 = x, r0, r1
        for inner, n in zip(op.inner, _sizes(op.inner, n_in)):
            y, q0, q1 = forward_rows(inner, y, q0, q1, n, stats)
        return x[:, :, q0 - r0 : q1 - r0] + y, q0, q1
    if op.kind == "opaque":  # stride-1 module; rows within `halo` of a cut edge are wrong: drop them
        q0, q1 = r0 + (op.pad if r0 > 0 else 0), r1 - (op.pad if r1 < n_in else 0)
        return m(x)[:, :, q0 - r0 : q1 - r0], q0, q1
    if op.kind == "up":
        return F.interpolate(x, scale_factor=op.pad, mode="nearest"), r0 * op.pad, r1 * op.pad
    if op.kind == "unshuffle":
        assert r0 % op.pad == 0 and (r1 % op.pad == 0 or r1 == n_in), (r0, r1)
        return F.pixel_unshuffle(x, op.pad), r0 // op.pad, r1 // op.pad
    if op.kind == "add":
        return x + op.store.read(r0, r1).to(x.dtype), r0, r1
    return m(x), r0, r1


class ImageSource:
    """The padded input image as a row source of network-ready tensors."""

    def __init__(self, image: np.ndarray, rows: np.ndarray, cols: np.ndarray, conv: PixelConvention, device):
        self.image, self.rows, self.cols, self.conv, self.device = image, rows, cols, conv, device
        self.height, self.width, self.channels = len(rows), len(cols), 3

    def read(self, r0: int, r1: int) -> torch.Tensor:
        win = self.image[np.ix_(self.rows[r0:r1], self.cols)]
        if win.shape[2] == 1:
            win = np.repeat(win, 3, axis=2)
        return to_tensor(win, self.conv, self.device)


class Store:
    """A stored activation [H, W, C] fp32: a RAM array, or a temporary file read and written by rows."""

    def __init__(self, height: int, width: int, channels: int, device, on_disk: bool):
        self.height, self.width, self.channels, self.device = height, width, channels, device
        self.row_bytes = width * channels * 4
        self.file = tempfile.TemporaryFile(prefix="ganeditor-act-") if on_disk else None
        self.array = None if on_disk else np.empty((height, width, channels), np.float32)

    def read(self, r0: int, r1: int) -> torch.Tensor:
        if self.file is None:
            a = self.array[r0:r1].copy()
        else:
            a = np.empty((r1 - r0, self.width, self.channels), np.float32)
            self.file.seek(r0 * self.row_bytes)
            self.file.readinto(memoryview(a).cast("B"))
        return torch.from_numpy(a).to(self.device).permute(2, 0, 1)[None]  # [NCHW], channels_last memory

    def write(self, r0: int, y: torch.Tensor) -> None:
        a = y[0].permute(1, 2, 0).float().cpu().numpy()  # [HWC]
        if self.file is None:
            self.array[r0 : r0 + a.shape[0]] = a
        else:
            self.file.seek(r0 * self.row_bytes)
            self.file.write(np.ascontiguousarray(a).tobytes())

    def close(self) -> None:
        self.array = None if self.file is None else self.file.close()


@dataclass
class _Run:
    device: torch.device
    autocast: torch.dtype | None
    band_image_rows: int | None  # band height in input-image rows, or None = from the budget
    budget: int
    task: Task
    n_passes: int
    image_rows: int = 1  # padded input height, to convert band heights between levels
    done: int = 0
    stats: dict = field(default_factory=dict)


def _bytes_per_row(ops: list[Op], src_channels: int, widths: list[int], heights: list[int]) -> float:
    """Working bytes per output row of a chain (its activations summed over levels, fp32, x2)."""
    total, c = 0.0, src_channels
    h_end = max(1, heights[-1])
    for i, op in enumerate(ops):
        c = getattr(op.module, "out_channels", c) if op.kind != "unshuffle" else c * op.pad**2
        total += max(c, op.work_channels) * widths[i + 1] * 4 * heights[i + 1] / h_end
    return 2 * total + src_channels * widths[0] * 4 * heights[0] / h_end


def _pass(run: _Run, src, ops: list[Op], consume: Callable[[int, int, torch.Tensor], None], label: str,
          min_band: int = 4) -> None:
    """Run ``ops`` from ``src`` band by band and hand each output band to ``consume(a, b, y)``."""
    heights, widths = _sizes(ops, src.height), _sizes(ops, src.width)
    h_end = heights[-1]
    if run.band_image_rows:
        band = run.band_image_rows * h_end / run.image_rows
    else:
        band = run.budget / _bytes_per_row(ops, src.channels, widths, heights)
    band = max(min_band, int(band))
    for a in range(0, h_end, band):
        b = min(a + band, h_end)
        lo, hi = a, b
        for op, n in zip(reversed(ops), reversed(heights[:-1])):
            lo, hi = need_rows(op, lo, hi, n)
        x, r0, r1 = src.read(lo, hi), lo, hi
        with compute_context(run.device, run.autocast):
            for op, n in zip(ops, heights[:-1]):
                x, r0, r1 = forward_rows(op, x, r0, r1, n, run.stats)
        assert r0 <= a and r1 >= b, (label, a, b, r0, r1)
        consume(a, b, x[:, :, a - r0 : b - r0].float())
        run.task.report(run.done + b / h_end, run.n_passes, label)
    run.done += 1


def _stats_pass(run: _Run, src, ops: list[Op], norm: nn.InstanceNorm2d, label: str) -> None:
    acc = {}

    def consume(a: int, b: int, y: torch.Tensor) -> None:
        s = torch.sum(y, dim=(0, 2, 3), dtype=torch.float64)
        q = torch.sum(y * y, dim=(0, 2, 3), dtype=torch.float64)
        acc["s"], acc["q"] = acc.get("s", 0) + s, acc.get("q", 0) + q
        acc["n"] = acc.get("n", 0) + y.shape[2] * y.shape[3]

    _pass(run, src, ops, consume, label)
    mean = acc["s"] / acc["n"]
    var = (acc["q"] / acc["n"] - mean * mean).clamp_min(0)
    rstd = 1.0 / torch.sqrt(var + norm.eps)
    run.stats[id(norm)] = (mean.float().view(1, -1, 1, 1), rstd.float().view(1, -1, 1, 1))


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


def run_global_norm(net: nn.Module, image: np.ndarray, tile: int | None, mod: int, device: torch.device,
                    autocast: torch.dtype | None, conv: PixelConvention, out_dtype: type, task: Task,
                    store_budget: int | None = None) -> np.ndarray:
    """Whole-image-exact inference of an instance-norm Sequential network (see the module docstring)."""
    h, w, c = image.shape
    rows, cols = padded_index(h, 0, mod), padded_index(w, 0, mod)
    src = ImageSource(image, rows, cols, conv, device)
    budget = work_budget(device)
    seq = getattr(net, "model", net)
    if tile is None:
        with compute_context(device, autocast):
            per_px = probe_bytes_per_pixel(net, device)
        if per_px * len(rows) * len(cols) <= budget:  # small enough: one exact whole-image forward
            tile = max(len(rows), len(cols))
    if tile is not None and tile >= max(len(rows), len(cols)):
        with compute_context(device, autocast):
            y = net(src.read(0, len(rows))).float()
        out = _quantize_rows(y[:, :, :h, :w], conv, out_dtype, c == 1)
        task.report(1, 1, "done")
        return out
    ops = flatten(seq)
    run = _Run(device, autocast, tile, budget, task, _count_passes(ops), len(rows))
    store_budget = store_budget if store_budget is not None else int(min(STORE_CAP, available_memory("cpu") / 2))
    store: Store | None = None
    pos = 0
    try:
        for i, op in enumerate(ops):
            if op.kind == "norm":
                _stats_pass(run, store or src, ops[pos:i], op.module, f"statistics {run.done + 1}/{run.n_passes}")
            elif op.kind == "block":
                if store is None or pos < i:
                    store = _materialise(run, store or src, ops[pos:i], store_budget, device)
                for j, inner in enumerate(op.inner):
                    if inner.kind == "norm":
                        _stats_pass(run, store, op.inner[:j], inner.module, f"statistics {run.done + 1}/{run.n_passes}")
                _in_place(run, store, op)
                pos = i + 1
        out = np.empty((h, w, c), out_dtype)

        def emit(a: int, b: int, y: torch.Tensor) -> None:
            if a < h:
                out[a : min(b, h)] = _quantize_rows(y[:, :, : min(b, h) - a, :w], conv, out_dtype, c == 1)

        _pass(run, store or src, ops[pos:], emit, "output")
        return out
    finally:
        if store is not None:
            store.close()


def _materialise(run: _Run, src, ops: list[Op], store_budget: int, device, close_src: bool = True) -> Store:
    holder: dict[str, Store] = {}
    heights, widths = _sizes(ops, src.height), _sizes(ops, src.width)

    def write(a: int, b: int, y: torch.Tensor) -> None:
        if "s" not in holder:
            nbytes = heights[-1] * widths[-1] * y.shape[1] * 4
            holder["s"] = Store(heights[-1], widths[-1], y.shape[1], device, on_disk=nbytes > store_budget)
        holder["s"].write(a, y)

    _pass(run, src, ops, write, "activations")
    if isinstance(src, Store) and close_src:
        src.close()
    return holder["s"]


def _in_place(run: _Run, store: Store, block: Op, label: str = "block") -> None:
    """Replace the stored block input by the block output, one band behind the band being computed."""
    pending: list[tuple[int, torch.Tensor]] = []

    def write(a: int, b: int, y: torch.Tensor) -> None:
        if pending:
            store.write(*pending.pop())
        pending.append((a, y.cpu()))

    halo = block.pad if block.kind == "opaque" else 4
    _pass(run, store, [block], write, label, min_band=max(4, 2 * halo))  # band >= halo: see above
    if pending:
        store.write(*pending.pop())


def _quantize_rows(y: torch.Tensor, conv: PixelConvention, out_dtype: type, gray: bool) -> np.ndarray:
    return to_output(y[0].permute(1, 2, 0).float().cpu(), conv, out_dtype, gray)  # [HWC]
