"""Valid-mode row bands: the machinery of the exact banded engines (``tiling_norm``, ``tiling_rrdb``).

A network is a list of ``Op``s.  Each op is evaluated on a band of rows [r0, r1) of its input (always
the full width): padding only at the true top/bottom of the image, and it returns exactly the output
rows whose inputs were all present.  ``need_rows`` walks ops backwards to find the input rows an
output band depends on.  ``run_pass`` runs a chain of ops from a source (the padded image, or a
``Store`` of a full-image activation in RAM or a temporary file) band by band into a consumer.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.core.imageio import PixelConvention, to_tensor
from ganeditor.core.progress import Task
from ganeditor.core.tiling_common import compute_context

OPAQUE_CHUNK_PIXELS = 96_000  # pixels per chunk of an opaque module (see _opaque_in_chunks)
STORE_CAP = 768 * 2**20  # RAM for stored activations (or half the free memory); the rest goes to temporary files

@dataclass
class Op:
    """One step of the flattened network."""

    kind: str  # 'conv' | 'convT' | 'norm' | 'point' | 'block' | 'opaque' | 'up' | 'unshuffle' | 'add'
    module: nn.Module | None = None
    pad: int = 0  # conv: padding on every side (own or from a pad module); opaque: halo rows; up/unshuffle: factor
    pad_mode: str = "constant"  # 'constant' (zeros) | 'reflect' | 'replicate'
    inner: list["Op"] = field(default_factory=list)  # the conv_block of a residual block
    store: "Store | None" = None  # 'add': the stored activation added row for row


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
        return _opaque_in_chunks(m, x, op.pad)[:, :, q0 - r0 : q1 - r0], q0, q1
    if op.kind == "up":
        return F.interpolate(x, scale_factor=op.pad, mode="nearest"), r0 * op.pad, r1 * op.pad
    if op.kind == "unshuffle":
        assert r0 % op.pad == 0 and (r1 % op.pad == 0 or r1 == n_in), (r0, r1)
        return F.pixel_unshuffle(x, op.pad), r0 // op.pad, r1 // op.pad
    if op.kind == "add":
        return x + op.store.read(r0, r1).to(x.dtype), r0, r1
    return m(x), r0, r1


def _opaque_in_chunks(m: nn.Module, x: torch.Tensor, halo: int) -> torch.Tensor:
    """``m(x)`` for a stride-1 module, computed in column chunks with ``halo`` columns of context, in
    channels_last: activations stay cache-sized (an RRDB on a 272x510 band: 15.0 us/px at once,
    11.8 us/px channels_last; on 64x500: 9.1 us/px), and every column equals the one-piece result."""
    h, w = x.shape[-2:]
    width = max(4 * halo, OPAQUE_CHUNK_PIXELS // max(h, 1))
    if width >= w:
        return m(x.contiguous(memory_format=torch.channels_last))
    outs = []
    for c0 in range(0, w, width):
        c1 = min(w, c0 + width)
        a, b = max(0, c0 - halo), min(w, c1 + halo)
        y = m(x[:, :, :, a:b].contiguous(memory_format=torch.channels_last))
        outs.append(y[:, :, :, c0 - a : c1 - a])
    return torch.cat(outs, dim=3)


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
class Run:
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
    """Working bytes per output row of a chain (its activations summed over levels, fp32, x3)."""
    total, c = 0.0, src_channels
    h_end = max(1, heights[-1])
    for i, op in enumerate(ops):
        c = getattr(op.module, "out_channels", c) if op.kind != "unshuffle" else c * op.pad**2
        total += c * widths[i + 1] * 4 * heights[i + 1] / h_end  # opaque ops work in small column chunks
    return 3 * total + src_channels * widths[0] * 4 * heights[0] / h_end


def run_pass(run: Run, src, ops: list[Op], consume: Callable[[int, int, torch.Tensor], None], label: str,
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


def stats_sink(run: Run, norm: nn.Module) -> tuple[Callable[[int, int, torch.Tensor], None], Callable[[], None]]:
    """(consume, finish): accumulate per-channel sums of a norm's input; finish stores mean and 1/std."""
    acc: dict = {"s": 0, "q": 0, "n": 0}

    def consume(a: int, b: int, y: torch.Tensor) -> None:
        acc["s"] = acc["s"] + torch.sum(y, dim=(0, 2, 3), dtype=torch.float64)
        acc["q"] = acc["q"] + torch.sum(y * y, dim=(0, 2, 3), dtype=torch.float64)
        acc["n"] += y.shape[2] * y.shape[3]

    def finish() -> None:
        mean = acc["s"] / acc["n"]
        var = (acc["q"] / acc["n"] - mean * mean).clamp_min(0)
        rstd = 1.0 / torch.sqrt(var + norm.eps)
        run.stats[id(norm)] = (mean.float().view(1, -1, 1, 1), rstd.float().view(1, -1, 1, 1))

    return consume, finish


def stats_pass(run: Run, src, ops: list[Op], norm: nn.Module, label: str) -> None:
    consume, finish = stats_sink(run, norm)
    run_pass(run, src, ops, consume, label)
    finish()


def materialise(run: Run, src, ops: list[Op], store_budget: int, device, close_src: bool = True,
                stats_of: nn.Module | None = None, label: str = "activations") -> Store:
    """Store the output of ``ops`` run from ``src`` (and the statistics of norm ``stats_of`` over it)."""
    holder: dict[str, Store] = {}
    heights, widths = _sizes(ops, src.height), _sizes(ops, src.width)
    stats, finish = stats_sink(run, stats_of) if stats_of is not None else (None, None)

    def write(a: int, b: int, y: torch.Tensor) -> None:
        if "s" not in holder:
            nbytes = heights[-1] * widths[-1] * y.shape[1] * 4
            holder["s"] = Store(heights[-1], widths[-1], y.shape[1], device, on_disk=nbytes > store_budget)
        holder["s"].write(a, y)
        if stats is not None:
            stats(a, b, y)

    run_pass(run, src, ops, write, label)
    if finish is not None:
        finish()
    if isinstance(src, Store) and close_src:
        src.close()
    return holder["s"]


def in_place(run: Run, store: Store, ops: list[Op], src=None, label: str = "block") -> None:
    """Overwrite ``store`` with ``ops`` run from ``src`` (default: the store), one band behind the band
    being computed, so the next band still reads the old rows of its context."""
    pending: list[tuple[int, torch.Tensor]] = []

    def write(a: int, b: int, y: torch.Tensor) -> None:
        if pending:
            store.write(*pending.pop())
        pending.append((a, y.cpu()))

    halo = max([o.pad for o in ops if o.kind == "opaque"] + [4])
    run_pass(run, src or store, ops, write, label, min_band=2 * halo)  # band >= halo: see above
    if pending:
        store.write(*pending.pop())

