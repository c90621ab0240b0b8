"""What every tiling engine shares: the options, memory budgets, padding index maps, the compute
context and the float -> integer output rows.

The engines import this module and never each other's entry points:

    tiling (run_tiled: dispatch + out-of-memory retry)
      -> tiling_conv (2-D tiles)   tiling_norm (instance norm)   tiling_sr (planned SR networks)
                                      -> tiling_bands (valid-mode row bands)
      -> tiling_common (this module)

an import-linter contract in ``pyproject.toml`` keeps it that way.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.imageio import SR_CONVENTION, PixelConvention, quantize

MIN_TILE = 16
RADIUS_CAP = 64  # larger receptive fields get blended tiles with this much context
CPU_WORK_CAP = 512 * 2**20  # most working memory (tiles, bands) on CPU
CPU_STORE_CAP = 384 * 2**20  # most RAM for stored activations on CPU; beyond, temporary files
PEAK_ABOVE_OUTPUT = 2**30  # a run keeps the process under output bytes + this (shared/PERFORMANCE.md)
MIN_ENGINE = 448 * 2**20  # the engines always get this much (work + stores), whatever the process holds
LUMA = (0.299, 0.587, 0.114)
MMAP_THRESHOLD = 4 * 2**20  # glibc: blocks from this size get their own mappings (large_allocations_mapped)
MAPPED_FROM = 2**20  # output pixels from which a run maps its large blocks (1 MP; 640x480 is left alone)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
# where glibc's own dynamic thresholds stop growing (64-bit): what a run leaves behind
GLIBC_GROWN = ((M_MMAP_THRESHOLD, 32 * 2**20), (M_TRIM_THRESHOLD, 64 * 2**20))

NetFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True, kw_only=True)
class TileOptions:
    """How ``run_tiled`` runs a network over an image; built from the network's declared facts by
    ``pipelines.image2image.tile_options``.  ``tile`` is the one name of the tile size everywhere."""

    tile: int | None = None  # core tile side (2-D tiles) or band height (banded engines), input pixels; None = from free memory
    tile_pad: int | None = None  # context around each tile; None = exact (receptive field / banded RRDBNet)
    pre_pad: int = 0  # reflect padding at bottom/right before tiling (RealESRGANer's pre_pad)
    mod: int = 1  # padded sides (and tile edges) are multiples of this
    feather: int | None = None  # half-width of the blending ramp; None = tile_pad // 2
    global_stats: bool = False  # the net normalises with whole-image statistics (instance norm): exact banded engine
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32  # dtype of the tiles handed to the network
    autocast: torch.dtype | None = None  # e.g. torch.bfloat16 for the fast mode
    channels_last: bool = False  # hand tiles (and band chunks) in channels_last memory format
    conv: PixelConvention = SR_CONVENTION  # value range and rounding of the network
    out_dtype: type | None = None  # np.uint8 / np.uint16; None = the input's dtype

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", torch.device(self.device))
        object.__setattr__(self, "mod", max(1, int(self.mod)))
        if self.tile is not None and self.tile < 1:
            raise ValueError(f"tile must be positive, got {self.tile}")


def _proc_bytes(path: str, key: str) -> int | None:
    """The ``key:`` line of a /proc file in bytes (its values are in kB), None when unreadable."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def available_memory(device: torch.device | str = "cpu") -> int:
    """Free bytes on ``device`` (CUDA: mem_get_info; CPU: psutil, else /proc/meminfo, else 4 GiB)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        import psutil  # optional dependency

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    free = _proc_bytes("/proc/meminfo", "MemAvailable")
    return 4 * 2**30 if free is None else free


def process_rss() -> int:
    """This process's resident memory now (bytes; 0 when unknown)."""
    return _proc_bytes("/proc/self/status", "VmRSS") or 0


_mapping_lock = threading.Lock()
_mapping_runs = [0]  # runs inside large_allocations_mapped now (threads share the process-wide setting)


def _mallopt(param: int, value: int) -> bool:
    """glibc's ``mallopt``; False where the C library has none (macOS, Windows, musl)."""
    try:
        return bool(ctypes.CDLL(None).mallopt(int(param), int(value)))
    except (OSError, AttributeError, TypeError):
        return False


@contextlib.contextmanager
def large_allocations_mapped(out_pixels: int, threshold: int = MMAP_THRESHOLD) -> Iterator[bool]:
    """Around a run of ``out_pixels`` >= ``MAPPED_FROM``: glibc's malloc serves every block of
    ``threshold`` bytes or more from its own mapping, given back to the system when freed (its default
    raises that threshold to 32 MiB as blocks are freed, so tiles' and conv chunks' few-MiB activations
    pile up as heap the process keeps: a 3000x2000 restore peaked 0.4 GiB higher, bench/RESULTS.md).
    Afterwards the thresholds are where glibc's own dynamic ones end up (``GLIBC_GROWN``), so later small
    work -- a preview, a GAN forward in the window -- runs at heap speed: the page faults cost a 640x480
    restore +49-57 % CPU (bench_restore_cli.py --malloc-ab), which is why smaller runs are left alone.
    ``run_tiled`` enters it, and ``pipelines.restore`` around all its stages (the heap also piles up
    between the tilers: a 3000x2000 scan peaked at 1.85 GiB with runs scoped one by one), so the CLI
    and the window's jobs alike get it; nested runs share the outermost scope.  Yields whether it
    applies; nothing happens where the C library has no ``mallopt``."""
    if out_pixels < MAPPED_FROM:
        yield False
        return
    with _mapping_lock:
        on = _mapping_runs[0] > 0 or _mallopt(M_MMAP_THRESHOLD, threshold)
        _mapping_runs[0] += int(on)
    try:
        yield on
    finally:
        if on:
            with _mapping_lock:
                _mapping_runs[0] -= 1
                if _mapping_runs[0] == 0:
                    for param, value in GLIBC_GROWN:
                        _mallopt(param, value)


def engine_budget(device: torch.device | str = "cpu", out_bytes: int = 0) -> tuple[int, int]:
    """(work bytes, stored-activation bytes) a run may use.  CUDA: shares of free device memory.  CPU:
    what keeps the whole process under ``out_bytes + PEAK_ABOVE_OUTPUT`` given what it already holds
    (the model, and torch itself: 0.7 GiB of libraries in the CUDA build), but never less than
    MIN_ENGINE, and within the caps and a quarter of free memory."""
    device = torch.device(device)
    free = available_memory(device)
    if device.type == "cuda":
        return int(free * 0.6), 0
    room = out_bytes + PEAK_ABOVE_OUTPUT - process_rss() - 64 * 2**20
    total = min(max(room, MIN_ENGINE), int(free * 0.25), CPU_WORK_CAP + CPU_STORE_CAP)
    work = min(CPU_WORK_CAP, max(int(total * 0.6), total - CPU_STORE_CAP))
    return work, max(0, total - work)


def work_budget(device: torch.device | str = "cpu", out_bytes: int = 0) -> int:
    """Bytes the engine may use for tiles and bands (see ``engine_budget``)."""
    return engine_budget(device, out_bytes)[0]


def probe_bytes_per_pixel(net_fn: NetFn, device: torch.device | str, channels: int = 3, size: int = 32) -> float:
    """Estimated peak activation bytes per input pixel, from one small forward with hooks."""
    biggest = [0]
    hooks = []
    if isinstance(net_fn, nn.Module):
        def hook(_m, _i, out):  # noqa: ANN001
            if isinstance(out, torch.Tensor):
                biggest[0] = max(biggest[0], out.numel())

        hooks = [m.register_forward_hook(hook) for m in net_fn.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            y = net_fn(torch.zeros(1, channels, size, size, device=device))
        biggest[0] = max(biggest[0], y.numel())
    finally:
        for h in hooks:
            h.remove()
    return 4.0 * 4 * biggest[0] / (size * size)  # fp32, ~4 such tensors alive at once


def receptive_radius(net_fn: NetFn, cap: int = RADIUS_CAP) -> tuple[int, bool]:
    """(context in input pixels, whether tiles with it are exact).  A network may declare the fact
    ``receptive_radius``: an int (exact tiles with that context, e.g. U-Nets whose strided levels the
    sum below undercounts) or None (unbounded, e.g. global attention: ``cap`` and blended tiles).
    Otherwise: the radii of all convs summed, plus 2, exact below ``cap``; 10 (blended) if unknown."""
    if not isinstance(net_fn, nn.Module):
        return 10, False
    if hasattr(net_fn, "receptive_radius"):
        declared = net_fn.receptive_radius
        return (cap, False) if declared is None else (int(declared), True)
    r = sum((m.kernel_size[0] // 2) * m.dilation[0] for m in net_fn.modules() if isinstance(m, nn.Conv2d))
    return min(cap, r + 2), r + 2 < cap


def reflect_index(n_out: int, n_in: int) -> np.ndarray:
    """Indices 0..n_out-1 folded into 0..n_in-1 by reflection without repeating the edge."""
    i = np.arange(n_out)
    if n_in == 1:
        return np.zeros(n_out, np.intp)
    period = 2 * (n_in - 1)
    i = i % period
    return np.where(i < n_in, i, period - i).astype(np.intp)


def padded_index(n: int, pre_pad: int, mod: int) -> np.ndarray:
    """Row (or column) index map of RealESRGANer's padding: reflect pre_pad, then reflect to a multiple of mod."""
    first = reflect_index(n + pre_pad, n)
    total = -(-(n + pre_pad) // mod) * mod
    return first[reflect_index(total, n + pre_pad)]


def compute_context(device: torch.device, autocast: torch.dtype | None) -> contextlib.ExitStack:
    """inference_mode, plus autocast to ``autocast`` when given."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if autocast is not None:
        stack.enter_context(torch.autocast(device_type=device.type, dtype=autocast))
    return stack


def to_output(band: np.ndarray | torch.Tensor, conv: PixelConvention, out_dtype: type, gray: bool) -> np.ndarray:
    """Float rows [h, W, 3] -> integer rows [h, W, 1|3] (gray: ITU-R 601 luma)."""
    t = torch.from_numpy(band) if isinstance(band, np.ndarray) else band
    if gray:
        t = (t[..., 0] * LUMA[0] + t[..., 1] * LUMA[1] + t[..., 2] * LUMA[2])[..., None]
    return quantize(t, conv, out_dtype).numpy().astype(out_dtype, copy=False)


def quantize_rows(y: torch.Tensor, conv: PixelConvention, out_dtype: type, gray: bool) -> np.ndarray:
    """Network output rows [1, C, h, W] -> integer rows [h, W, 1|3]."""
    return to_output(y[0].permute(1, 2, 0).float().cpu(), conv, out_dtype, gray)  # [HWC]

