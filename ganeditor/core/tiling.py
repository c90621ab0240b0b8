"""The one tiled-inference engine for image-to-image networks (super-resolution, translation).

``run_tiled(net_fn, image, scale, ...)`` maps an [H, W, C] uint8/uint16 image through a network
and writes the result straight into a preallocated uint8/uint16 array of the output size.

Convolutional networks (the default strategy):
  * The image is virtually padded like Real-ESRGAN's ``RealESRGANer``: reflect ``pre_pad`` rows
    and columns at the bottom/right, then reflect up to a multiple of ``mod``; the padding is
    cropped away at the end.  Padding is done with index maps, so no padded copy is made.
  * The padded image is cut into ``tile`` x ``tile`` cores.  Each core is read with ``tile_pad``
    pixels of context (clipped at the image border), converted to a tensor and moved to the
    device -- only tiles ever go to the device (unlike Real-ESRGAN's issue #184).
  * Neighbouring tiles overlap by ``2 * feather`` pixels around their shared edge and are blended
    with linear ramps that sum to one.  ``tile_pad=None`` (the default) sets the context to the
    network's receptive radius (sum of its conv radii, capped at 64), so every blended pixel is
    what the whole image gives: tiled == untiled up to float rounding.  An explicit small
    ``tile_pad`` (RealESRGANer uses 10) trades exactness for speed; the ramps then hide seams.
  * Blending accumulates in float32 only for one row of tiles (a band of the output, full width),
    plus the overlap carried to the next band; finished rows are quantised into the output.
  * Tile size: given, or chosen from free memory (CUDA ``mem_get_info``; else psutil or
    /proc/meminfo) and a probe of the network's activation size.  Out of memory -> the run
    restarts with half the tile (down to ``MIN_TILE``).
  * Progress is reported per tile through ``task``, which also raises ``Cancelled``.

Networks whose output depends on whole-image statistics (``needs_global_stats``, instance
norm) take the exact banded strategy of ``ganeditor.core.tiling_norm``; RRDBNet (receptive field
~350 pixels) is streamed block by block by ``ganeditor.core.tiling_rrdb`` when ``tile_pad`` is
None and the image does not fit one tile.

Channels: a gray image is replicated to RGB tile by tile and the RGB result converted back with
ITU-R 601 luma weights (as Real-ESRGAN's ``cvtColor``); alpha is the caller's business.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.errors import Cancelled, GanEditorError
from ganeditor.core.imageio import SR_CONVENTION, PixelConvention, quantize, to_tensor
from ganeditor.core.progress import Task, null_task

MIN_TILE = 16
RADIUS_CAP = 64  # larger receptive fields get blended tiles with this much context
CPU_WORK_CAP = 512 * 2**20  # working memory cap on CPU, so peak stays near output bytes + 1 GiB
LUMA = (0.299, 0.587, 0.114)

NetFn = Callable[[torch.Tensor], torch.Tensor]


def available_memory(device: torch.device | str = "cpu") -> int:
    """Free bytes on ``device`` (CUDA: mem_get_info; CPU: psutil, else /proc/meminfo, else 4 GiB)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        import psutil  # optional

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2**30


def work_budget(device: torch.device | str = "cpu") -> int:
    """Bytes the engine may use for tiles: a share of free memory (capped on CPU)."""
    device = torch.device(device)
    free = available_memory(device)
    return int(free * 0.6) if device.type == "cuda" else int(min(free * 0.25, CPU_WORK_CAP))


def is_oom(e: BaseException) -> bool:
    """True for out-of-memory errors of any torch backend."""
    if isinstance(e, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()


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


def auto_tile(net_fn: NetFn, device: torch.device | str, scale: int, width: int, mod: int = 1,
              blend: bool = True) -> int:
    """A tile size that fits the working memory of ``device``, a multiple of ``mod``."""
    budget = work_budget(device)
    per_px = probe_bytes_per_pixel(net_fn, device) + 4.0 * 3 * scale * scale  # + output tile
    band_per_row = 4.0 * 3 * scale * scale * width if blend else 0.0  # float blending band, one input row
    # tile^2 * per_px + tile * band_per_row <= budget
    a, b = per_px, band_per_row
    t = int((-b + math.sqrt(b * b + 4 * a * budget)) / (2 * a))
    t = max(MIN_TILE, min(t, 4096))
    return max(mod, t // max(8, mod) * max(8, mod))


def receptive_radius(net_fn: NetFn, cap: int = RADIUS_CAP) -> int:
    """Context (input pixels) that makes tiles exact: the radii of all convs summed, plus 2; 10 if unknown."""
    if not isinstance(net_fn, nn.Module):
        return 10
    r = sum((m.kernel_size[0] // 2) * m.dilation[0] for m in net_fn.modules() if isinstance(m, nn.Conv2d))
    return min(cap, r + 2)


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


def _ramp(n_in_lo: int, n_in_hi: int, lo_blend: int, hi_blend: int, scale: int) -> np.ndarray:
    """Weights over output samples of input span [n_in_lo, n_in_hi): ramps up over the first
    ``2*lo_blend`` input samples and down over the last ``2*hi_blend`` ones."""
    n = (n_in_hi - n_in_lo) * scale
    w = np.ones(n, np.float32)
    u = np.arange(n, dtype=np.float64)
    if lo_blend:
        m = 2 * lo_blend * scale
        w[:m] = ((u[:m] + 0.5) / m).astype(np.float32)
    if hi_blend:
        m = 2 * hi_blend * scale
        j = np.arange(m, dtype=np.float64)
        w[n - m :] = ((m - 0.5 - j) / m).astype(np.float32)
    return w


def _starts(n: int, tile: int, ov: int) -> list[int]:
    """Tile starts over n samples; a last tile narrower than its blending ramp joins the previous one."""
    starts = list(range(0, n, tile))
    if len(starts) > 1 and n - starts[-1] < 2 * ov + 1:
        starts.pop()
    return starts


def to_output(band: np.ndarray | torch.Tensor, conv: PixelConvention, out_dtype: type, gray: bool) -> np.ndarray:
    """Float rows [h, W, 3] -> integer rows [h, W, 1|3] (gray: ITU-R 601 luma)."""
    t = torch.from_numpy(band) if isinstance(band, np.ndarray) else band
    if gray:
        t = (t[..., 0] * LUMA[0] + t[..., 1] * LUMA[1] + t[..., 2] * LUMA[2])[..., None]
    return quantize(t, conv, out_dtype).numpy().astype(out_dtype, copy=False)


def run_tiled(
    net_fn: NetFn,
    image: np.ndarray,
    scale: int = 1,
    tile: int | None = None,  # core tile size in input pixels; None = from free memory
    tile_pad: int | None = None,  # context around each core; None = exact (receptive field / banded RRDBNet)
    pre_pad: int = 0,  # reflect padding at bottom/right before tiling (RealESRGANer)
    mod: int = 1,  # padded sides (and tile edges) are multiples of this
    feather: int | None = None,  # half-width of the blending ramp; default tile_pad // 2
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,  # dtype of the tiles handed to the network
    autocast: torch.dtype | None = None,  # e.g. torch.bfloat16 for the fast mode
    channels_last: bool = False,  # hand tiles in channels_last memory format
    conv: PixelConvention = SR_CONVENTION,  # value range and rounding of the network
    out_dtype: type | None = None,  # np.uint8 / np.uint16; default: the input's dtype
    task: Task | None = None,
) -> np.ndarray:
    """Run ``net_fn`` over ``image`` [H, W, 1|3] in tiles; returns [H*scale, W*scale, same C]."""
    assert image.ndim == 3 and image.shape[2] in (1, 3), image.shape
    assert image.dtype in (np.uint8, np.uint16), image.dtype
    task = task or null_task()
    out_dtype = out_dtype or image.dtype.type
    device = torch.device(device)
    mod = max(1, mod)
    if getattr(net_fn, "needs_global_stats", False):
        from ganeditor.core.tiling_norm import run_global_norm

        return _retry_oom(lambda t: run_global_norm(net_fn, image, t, max(mod, 4), device, autocast, conv, out_dtype,
                                                    task), tile, 512, device, task)
    from ganeditor.core.tiling_rrdb import is_rrdbnet, run_rrdb_banded

    user_tile = tile
    banded = tile_pad is None and is_rrdbnet(net_fn)
    if tile_pad is None and not banded:
        tile_pad = receptive_radius(net_fn)
        if feather is None and tile_pad < RADIUS_CAP and isinstance(net_fn, nn.Module):
            feather = 0  # the context covers the receptive field: tiles are exact, no blending needed
    if tile is None:
        with compute_context(device, autocast):
            tile = auto_tile(net_fn, device, scale, image.shape[1] + pre_pad, mod, blend=feather != 0)
    tile = max(mod, -(-tile // mod) * mod)
    if banded:
        if tile < max(len(padded_index(n, pre_pad, mod)) for n in image.shape[:2]):
            return _retry_oom(lambda t: run_rrdb_banded(net_fn, image, scale, t, pre_pad, mod, device, autocast, conv,
                                                        out_dtype, task), user_tile, tile, device, task)
        tile_pad = 0  # one whole-image tile
    tile_pad = -(-tile_pad // mod) * mod
    return _retry_oom(lambda t: _run_conv(net_fn, image, scale, max(mod, t // mod * mod), tile_pad, pre_pad, mod,
                                          feather, device, dtype, autocast, channels_last, conv, out_dtype, task),
                      tile, tile, device, task)


def _retry_oom(fn: Callable[[int | None], np.ndarray], tile: int | None, fallback: int, device: torch.device,
               task: Task) -> np.ndarray:
    """Call ``fn(tile)``; on out-of-memory call it again with half the tile (``fallback`` halved if None)."""
    while True:
        try:
            return fn(tile)
        except Cancelled:
            raise
        except Exception as e:  # noqa: BLE001 - only out-of-memory is retried
            if not is_oom(e):
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            current = tile or fallback
            if current // 2 < MIN_TILE:
                raise GanEditorError(f"out of memory even with {current}-pixel tiles") from e
            tile = current // 2
            task.report(0, None, f"out of memory: retrying with {tile}-pixel tiles")


def compute_context(device: torch.device, autocast: torch.dtype | None) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if autocast is not None:
        stack.enter_context(torch.autocast(device_type=device.type, dtype=autocast))
    return stack


def _run_conv(net_fn, image, scale, tile, tile_pad, pre_pad, mod, feather, device, dtype, autocast,
              channels_last, conv, out_dtype, task) -> np.ndarray:
    h, w, c = image.shape
    rows, cols = padded_index(h, pre_pad, mod), padded_index(w, pre_pad, mod)
    hp, wp = len(rows), len(cols)
    oh, ow = h * scale, w * scale
    out = np.empty((oh, ow, c), out_dtype)
    ov = tile_pad // 2 if feather is None else feather
    ov = max(0, min(ov, tile_pad, tile // 2))
    ys, xs = _starts(hp, tile, ov), _starts(wp, tile, ov)
    total, done = len(ys) * len(xs), 0
    carry = None
    task.report(0, total, "tiles")
    if ov == 0:  # exact tiles: each core goes straight into the output, no float band
        return _run_exact(net_fn, image, scale, tile_pad, rows, cols, ys, xs, out, device, dtype, autocast,
                          channels_last, conv, task)
    for iy, y0 in enumerate(ys):
        y1 = ys[iy + 1] if iy + 1 < len(ys) else hp
        blend_top = ov if iy > 0 else 0
        blend_bot = ov if iy < len(ys) - 1 else 0
        by0, by1 = (y0 - blend_top) * scale, (y1 + blend_bot) * scale  # band rows (output)
        band = np.zeros((by1 - by0, ow, 3), np.float32)  # float blending, one row of tiles
        if carry is not None:  # the overlap rows the previous row of tiles already blended into
            band[: carry.shape[0]] = carry
        wy = _ramp(y0 - blend_top, y1 + blend_bot, blend_top, blend_bot, scale)
        for ix, x0 in enumerate(xs):
            x1 = xs[ix + 1] if ix + 1 < len(xs) else wp
            bl = ov if ix > 0 else 0
            br = ov if ix < len(xs) - 1 else 0
            cx0, cx1 = x0 - bl, x1 + br  # contributed span (input columns)
            if cx0 * scale >= ow:
                done += 1
                continue
            wy0, wy1 = max(y0 - tile_pad, 0), min(y1 + tile_pad, hp)
            wx0, wx1 = max(x0 - tile_pad, 0), min(x1 + tile_pad, wp)
            y = _forward(net_fn, image[np.ix_(rows[wy0:wy1], cols[wx0:wx1])], conv, device, dtype, autocast,
                         channels_last, scale)
            sy0 = (y0 - blend_top - wy0) * scale
            sx0 = (cx0 - wx0) * scale
            keep = min(cx1 * scale, ow) - cx0 * scale
            patch = y[0, :3, sy0 : sy0 + (by1 - by0), sx0 : sx0 + keep].float().permute(1, 2, 0).cpu().numpy()  # [HWC]
            wx = _ramp(cx0, cx1, bl, br, scale)[:keep]
            band[:, cx0 * scale : cx0 * scale + keep] += patch * (wy[:, None, None] * wx[None, :, None])
            done += 1
            task.report(done, total, f"tile {done}/{total}")
        final_to = (y1 - blend_bot) * scale  # rows below get more from the next row of tiles
        hi = min(final_to, oh)
        if hi > by0:
            out[by0:hi] = to_output(band[: hi - by0], conv, out_dtype, c == 1)
        if final_to >= oh:
            break
        carry = band[final_to - by0 :].copy()
    return out


def _forward(net_fn, win, conv, device, dtype, autocast, channels_last, scale) -> torch.Tensor:
    """The network on one window [h, w, 1|3] of the image; checks the output is x``scale``."""
    x = to_tensor(np.repeat(win, 3, axis=2) if win.shape[2] == 1 else win, conv, device, dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with compute_context(device, autocast):
        y = net_fn(x)
    assert y.shape[-2:] == (x.shape[-2] * scale, x.shape[-1] * scale), (
        f"network output {list(y.shape)} is not x{scale} of its input {list(x.shape)}")
    return y


def _run_exact(net_fn, image, scale, tile_pad, rows, cols, ys, xs, out, device, dtype, autocast, channels_last, conv,
               task) -> np.ndarray:
    """Tiles whose context covers the receptive field: cropped cores are the whole-image result."""
    hp, wp = len(rows), len(cols)
    oh, ow, c = out.shape
    total, done = len(ys) * len(xs), 0
    for iy, y0 in enumerate(ys):
        y1 = ys[iy + 1] if iy + 1 < len(ys) else hp
        for ix, x0 in enumerate(xs):
            x1 = xs[ix + 1] if ix + 1 < len(xs) else wp
            if y0 * scale < oh and x0 * scale < ow:
                wy0, wy1 = max(y0 - tile_pad, 0), min(y1 + tile_pad, hp)
                wx0, wx1 = max(x0 - tile_pad, 0), min(x1 + tile_pad, wp)
                y = _forward(net_fn, image[np.ix_(rows[wy0:wy1], cols[wx0:wx1])], conv, device, dtype, autocast,
                             channels_last, scale)
                oy1, ox1 = min(y1 * scale, oh), min(x1 * scale, ow)
                sy, sx = (y0 - wy0) * scale, (x0 - wx0) * scale
                core = y[0, :3, sy : sy + oy1 - y0 * scale, sx : sx + ox1 - x0 * scale].float().permute(1, 2, 0)
                out[y0 * scale : oy1, x0 * scale : ox1] = to_output(core.cpu(), conv, out.dtype.type, c == 1)
            done += 1
            task.report(done, total, f"tile {done}/{total}")
    return out
