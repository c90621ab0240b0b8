"""Valid-mode row bands: the machinery of the exact banded engines (``tiling_norm``, ``tiling_sr``).

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
MOMENT_ROWS = 4096  # pixels per chunk of the statistics sums (see moments)

@dataclass
class Op:
    """One step of the flattened network."""

    kind: str  # 'conv' | 'convT' | 'norm' | 'point' | 'block' | 'opaque' | 'up' | 'shuffle' | 'unshuffle' | 'add' | 'skip'
    module: nn.Module | None = None
    pad: int = 0  # conv: padding on every side (own or from a pad module); opaque: halo rows;
    #               up/shuffle/unshuffle/skip: factor
    pad_mode: str = "constant"  # conv: 'constant' (zeros) | 'reflect' | 'replicate'; skip: 'nearest' | 'bilinear'
    inner: list["Op"] = field(default_factory=list)  # the conv_block of a residual block
    store: "Store | ImageSource | None" = None  # 'add': the stored activation added row for row;
    #                                            'skip': the input image, upsampled and added
    weight: torch.Tensor | None = None  # conv/convT: the module's weight in channels_last (oneDNN's layout)

    def __post_init__(self) -> None:
        if self.kind in ("conv", "convT") and self.weight is None:
            self.weight = self.module.weight.detach().contiguous(memory_format=torch.channels_last)


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
    if op.kind in ("up", "shuffle"):
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
    if op.kind in ("up", "shuffle"):
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
        return _conv_rows(op, x, r0, r1, n_in)
    if op.kind == "convT":
        k, s, p, opad = m.kernel_size[0], m.stride[0], m.padding[0], m.output_padding[0]
        y = F.conv_transpose2d(x, op.weight, m.bias, s, (0, p), (0, opad))
        base = r0 * s - p  # output row of y's first row
        o0 = 0 if r0 == 0 else (r0 - 1) * s + k - p
        o1 = out_size(op, n_in) if r1 == n_in else r1 * s - p
        o1 = min(o1, base + y.shape[2])
        return y[:, :, o0 - base : o1 - base], o0, o1
    if op.kind == "norm":
        if id(m) not in stats:  # only a band holding the whole activation may measure its own statistics:
            assert r0 == 0 and r1 == n_in, f"statistics of rows {r0}..{r1} of {n_in} are not the whole image's"
            with torch.autocast(x.device.type, enabled=False):  # batch norm of one image = instance norm
                y = F.batch_norm(x.float(), None, None, m.weight, m.bias, True, 0.0, m.eps)  # (fused, channels_last)
            return y, r0, r1
        mean, rstd = stats[id(m)]
        rstd = rstd.to(x.dtype)
        y = torch.addcmul((-mean * rstd).to(x.dtype), x, rstd)  # (x - mean) * rstd in one pass
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
        valid = getattr(m, "forward_valid", None)  # (x, edges) -> only what has its context, nothing in vain
        if valid is not None:
            return _opaque_in_chunks(m, x, op.pad, (r0 == 0, r1 == n_in)), q0, q1
        return _opaque_in_chunks(m, x, op.pad)[:, :, q0 - r0 : q1 - r0], q0, q1
    if op.kind == "up":
        return F.interpolate(x, scale_factor=op.pad, mode="nearest"), r0 * op.pad, r1 * op.pad
    if op.kind == "shuffle":
        return F.pixel_shuffle(x, op.pad), r0 * op.pad, r1 * op.pad
    if op.kind == "skip":
        return x + upsampled_rows(op.store, op.pad, op.pad_mode, r0, r1).to(x.dtype), r0, r1
    if op.kind == "unshuffle":
        assert r0 % op.pad == 0 and (r1 % op.pad == 0 or r1 == n_in), (r0, r1)
        return F.pixel_unshuffle(x, op.pad), r0 // op.pad, r1 // op.pad
    if op.kind == "add":
        return x + op.store.read(r0, r1).to(x.dtype), r0, r1
    return m(x), r0, r1


def _conv_rows(op: Op, x: torch.Tensor, r0: int, r1: int, n_in: int) -> tuple[torch.Tensor, int, int]:
    """A conv on rows [r0, r1): padding only at the true top/bottom.  Zero padding is left to the
    convolution itself (no padded copy; where the two sides differ, the rows it invents are cropped, for a
    strided conv too when they make whole output rows: junyanz's stride-2 downsampling of a full-resolution
    activation no longer copies it, 192 MiB at 1000x750)."""
    m, p = op.module, op.pad
    k, s = m.kernel_size[0], m.stride[0]
    top, bot = (p if r0 == 0 else 0), (p if r1 == n_in else 0)
    o0 = max(0, -(-(r0 - top + p) // s))
    o1 = min(out_size(op, n_in), (r1 + bot + p - k) // s + 1)
    g0, g1 = o0 * s - p, (o1 - 1) * s - p + k  # input rows read, in unpadded coordinates
    ztop, zbot = max(0, -g0), max(0, g1 - n_in)
    pad = max(ztop, zbot)
    skip, odd = divmod(pad - ztop, s)  # output rows the conv's own top padding adds (whole rows only)
    if op.pad_mode != "constant" or odd:
        xp = F.pad(x, (p, p, top, bot), mode=op.pad_mode) if p else x
        xp = xp[:, :, g0 - (r0 - top) : g1 - (r0 - top)]
        return F.conv2d(xp, op.weight, m.bias, s, 0, 1, m.groups), o0, o1
    y = F.conv2d(x[:, :, max(g0, r0) - r0 : min(g1, r1) - r0], op.weight, m.bias, s, (pad, p), 1, m.groups)
    return (y if y.shape[2] == o1 - o0 else y[:, :, skip : skip + o1 - o0]), o0, o1


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` [1, C, h, w] channels_last with channels_last strides on every dim (a permuted [h, w, C] array
    with the batch dim added after the permute has batch stride C: torch's layout guess then said NCHW and
    convolutions and reflection pads copied it to NCHW and back, a quarter of the banded engine's time)."""
    if x.shape[0] != 1 or not x.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    c, h, w = x.shape[1:]
    return x.as_strided(x.shape, (c * h * w, 1, w * c, c))


def upsampled_rows(src: "ImageSource", s: int, mode: str, q0: int, q1: int) -> torch.Tensor:
    """Rows [q0, q1) of ``F.interpolate(image, scale_factor=s, mode)`` (nearest, or bilinear without
    aligned corners), computed from the few image rows they read: equal to the whole-image result."""
    lo, hi = q0 // s, (q1 - 1) // s + 1
    if mode == "bilinear":
        lo, hi = max(0, lo - 1), min(src.height, hi + 1)  # a row of context each side (clamped at true edges)
    kw = {"align_corners": False} if mode == "bilinear" else {}
    y = F.interpolate(src.read(lo, hi), scale_factor=s, mode=mode, **kw)
    return y[:, :, q0 - lo * s : q1 - lo * s]


def moments(y: torch.Tensor, rows: int = MOMENT_ROWS) -> tuple[int, torch.Tensor, torch.Tensor]:
    """(count, per-channel sum, per-channel sum of squares) of y [1, C, h, w]; sums in float64.

    The sums are GEMMs over the [h*w, C] view of a channels_last activation, ``rows`` pixels at a time
    so that each chunk and its square stay in cache (a whole 4000x50 band at once: 4x the time, memory
    bound); fp32 chunk sums combined in float64 give the variance to ~1e-7 * (1 + mean^2/var)."""
    v = y.permute(0, 2, 3, 1).reshape(-1, y.shape[1]).float()  # [h*w, C]: a view for channels_last fp32
    ones = torch.ones(1, min(rows, v.shape[0]), dtype=v.dtype, device=v.device)
    square = torch.empty(ones.shape[1], v.shape[1], dtype=v.dtype, device=v.device)
    s1 = torch.zeros(v.shape[1], dtype=torch.float64, device=v.device)
    s2 = torch.zeros_like(s1)
    for i in range(0, v.shape[0], rows):
        chunk = v[i : i + rows]
        n = chunk.shape[0]
        s1 += (ones[:, :n] @ chunk)[0]
        s2 += (ones[:, :n] @ torch.mul(chunk, chunk, out=square[:n]))[0]
    return v.shape[0], s1, s2


def norm_stats(n: int, s1: torch.Tensor, s2: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, 1/std) [1, C, 1, 1] float32 of instance norm from count and float64 sums."""
    mean = s1 / n
    var = (s2 / n - mean * mean).clamp_min(0)
    rstd = 1.0 / torch.sqrt(var + eps)
    return mean.float().view(1, -1, 1, 1), rstd.float().view(1, -1, 1, 1)


def _opaque_in_chunks(m: nn.Module, x: torch.Tensor, halo: int, rows: tuple[bool, bool] | None = None) -> torch.Tensor:
    """``m(x)`` for a stride-1 module in column chunks with ``halo`` columns of context, channels_last:
    cache-sized activations (an RRDB on a 272x510 band: 15.0 us/px at once, 11.8 channels_last; on
    64x500: 9.1), every column equal to the one-piece result.  ``rows`` (are the band's top and bottom
    the image's): ``m.forward_valid``, computing only what has its context (``halo`` less on a cut side)."""
    h, w = x.shape[-2:]
    width = max(4 * halo, OPAQUE_CHUNK_PIXELS // max(h, 1))

    def run(t: torch.Tensor, a: int, b: int) -> torch.Tensor:
        return m(channels_last(t)) if rows is None else m.forward_valid(channels_last(t), (*rows, a == 0, b == w))

    if width >= w:
        return run(x, 0, w)
    outs = []
    for c0 in range(0, w, width):
        c1 = min(w, c0 + width)
        a, b = max(0, c0 - halo), min(w, c1 + halo)
        y = run(x[:, :, :, a:b], a, b)
        outs.append(y if rows is not None else y[:, :, :, c0 - a : c1 - a])
    return torch.cat(outs, dim=3)


class ImageSource:
    """The padded input image as a row source of network-ready tensors."""

    def __init__(self, image: np.ndarray, rows: np.ndarray, cols: np.ndarray, conv: PixelConvention, device):
        self.image, self.rows, self.cols, self.conv, self.device = image, rows, cols, conv, device
        self.height, self.width, self.channels = len(rows), len(cols), 3

    def read(self, r0: int, r1: int, copy: bool = True) -> torch.Tensor:  # noqa: ARG002 - always a new tensor
        win = self.image[np.ix_(self.rows[r0:r1], self.cols)]
        if win.shape[2] == 1:
            win = np.repeat(win, 3, axis=2)
        return channels_last(to_tensor(win, self.conv, self.device))


class RamBudget:
    """Bytes of RAM the stored activations of one run may take; a store that does not fit goes to a file."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, n: int) -> bool:
        if n > self.left:
            return False
        self.left -= n
        return True

    def give(self, n: int) -> None:
        self.left += n


class Store:
    """A stored activation [H, W, C] fp32: a RAM array while ``ram`` allows, else a temporary file read and
    written by rows (plain file I/O through the page cache, so it is not process memory)."""

    def __init__(self, height: int, width: int, channels: int, device, ram: RamBudget):
        self.height, self.width, self.channels, self.device = height, width, channels, device
        self.row_bytes = width * channels * 4
        self.ram, self.nbytes = ram, height * self.row_bytes
        in_ram = ram.take(self.nbytes)
        self.file = None if in_ram else tempfile.TemporaryFile(prefix="ganeditor-act-")
        self.array = np.empty((height, width, channels), np.float32) if in_ram else None

    def read(self, r0: int, r1: int, copy: bool = True) -> torch.Tensor:
        """Rows [r0, r1) as [1, C, h, W] channels_last; ``copy=False`` may return a view of a RAM store
        (for consumers that never write into their input)."""
        if self.file is None:
            a = self.array[r0:r1].copy() if copy else self.array[r0:r1]
        else:
            a = np.empty((r1 - r0, self.width, self.channels), np.float32)
            self.file.seek(r0 * self.row_bytes)
            self.file.readinto(memoryview(a).cast("B"))
        return torch.from_numpy(a).to(self.device)[None].permute(0, 3, 1, 2)  # [NCHW], channels_last strides

    def write(self, r0: int, y: torch.Tensor) -> None:
        a = y[0].permute(1, 2, 0).float().cpu().numpy()  # [HWC]
        if self.file is None:
            self.array[r0 : r0 + a.shape[0]] = a
        else:
            self.file.seek(r0 * self.row_bytes)  # the array's own buffer: a bytes copy faulted in GiBs of pages
            self.file.write(memoryview(np.ascontiguousarray(a)).cast("B"))

    def close(self) -> None:
        if self.array is not None:
            self.array = None
            self.ram.give(self.nbytes)
        elif self.file is not None and not self.file.closed:
            self.file.close()


@dataclass
class Run:
    device: torch.device
    autocast: torch.dtype | None
    band_image_rows: int | None  # band height in input-image rows, or None = from the budget
    budget: int
    task: Task
    n_passes: int
    image_rows: int = 1  # padded input height, to convert band heights between levels
    ram: RamBudget = field(default_factory=lambda: RamBudget(0))  # RAM for stored activations (else files)
    done: int = 0
    stats: dict = field(default_factory=dict)


def _bytes_per_row(ops: list[Op], src_channels: int, widths: list[int], heights: list[int]) -> float:
    """Working bytes per output row of a chain: its largest level (input + output + a temporary, fp32),
    scaled to output rows; ops run one after another, so levels are not alive together."""
    peak, c = src_channels * widths[0] * 4.0 * heights[0], src_channels
    for i, op in enumerate(ops):
        c = getattr(op.module, "out_channels", c) if op.kind != "unshuffle" else c * op.pad**2
        peak = max(peak, c * widths[i + 1] * 4.0 * heights[i + 1])  # opaque ops work in small column chunks
    return 3 * peak / max(1, heights[-1])


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
    safe = isinstance(src, Store) and ops and ops[0].kind not in ("point", "opaque")  # first op makes a new tensor
    for a in range(0, h_end, band):
        b = min(a + band, h_end)
        lo, hi = a, b
        for op, n in zip(reversed(ops), reversed(heights[:-1])):
            lo, hi = need_rows(op, lo, hi, n)
        x, r0, r1 = (src.read(lo, hi, copy=False) if safe else src.read(lo, hi)), lo, hi
        with compute_context(run.device, run.autocast):
            for op, n in zip(ops, heights[:-1]):
                x, r0, r1 = forward_rows(op, x, r0, r1, n, run.stats)
        assert r0 <= a and r1 >= b, (label, a, b, r0, r1)
        consume(a, b, x[:, :, a - r0 : b - r0].float())
        run.task.report(run.done + b / h_end, run.n_passes, label)
    run.done += 1


def stats_sink(run: Run, norm: nn.Module) -> tuple[Callable[[int, int, torch.Tensor], None], Callable[[], None]]:
    """(consume, finish): accumulate per-channel sums of a norm's input; finish stores mean and 1/std."""
    acc: dict = {"n": 0, "s1": 0.0, "s2": 0.0}

    def consume(a: int, b: int, y: torch.Tensor) -> None:
        n, s1, s2 = moments(y)
        acc["n"] += n
        acc["s1"] = acc["s1"] + s1
        acc["s2"] = acc["s2"] + s2

    def finish() -> None:
        run.stats[id(norm)] = norm_stats(acc["n"], acc["s1"], acc["s2"], norm.eps)

    return consume, finish


def stats_pass(run: Run, src, ops: list[Op], norm: nn.Module, label: str) -> None:
    consume, finish = stats_sink(run, norm)
    run_pass(run, src, ops, consume, label)
    finish()


def materialise(run: Run, src, ops: list[Op], close_src: bool = True, stats_of: nn.Module | None = None,
                label: str = "activations") -> Store:
    """Store the output of ``ops`` run from ``src`` (and the statistics of norm ``stats_of`` over it)."""
    holder: dict[str, Store] = {}
    heights, widths = _sizes(ops, src.height), _sizes(ops, src.width)
    stats, finish = stats_sink(run, stats_of) if stats_of is not None else (None, None)

    def write(a: int, b: int, y: torch.Tensor) -> None:
        if "s" not in holder:
            holder["s"] = Store(heights[-1], widths[-1], y.shape[1], run.device, run.ram)
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

    halo = sum(o.pad for o in ops if o.kind in ("opaque", "conv")) + 4  # the chain's context rows
    run_pass(run, src or store, ops, write, label, min_band=halo)  # band >= context: see above
    if pending:
        store.write(*pending.pop())

