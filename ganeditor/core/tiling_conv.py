"""2-D tiles for convolutional networks (the default strategy of ``run_tiled``).

* The image is virtually padded like Real-ESRGAN's ``RealESRGANer``: reflect ``pre_pad`` rows and
  columns at the bottom/right, then reflect up to a multiple of ``mod``; the padding is cropped
  away at the end.  Padding is done with index maps, so no padded copy is made.
* The padded image is cut into ``tile`` x ``tile`` cores.  Each core is read with ``tile_pad``
  pixels of context (clipped at the image border), converted to a tensor and moved to the device --
  only tiles ever go to the device (unlike Real-ESRGAN's issue #184).
* When the context covers the receptive field (``feather`` 0) the cropped cores ARE the whole-image
  result and go straight into the output.  Otherwise neighbouring tiles overlap by ``2 * feather``
  pixels around their shared edge and are blended with linear ramps that sum to one; blending
  accumulates in float32 only for one row of tiles (a band of the output, full width), plus the
  overlap carried to the next band.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ganeditor.core.imageio import to_tensor
from ganeditor.core.progress import Task
from ganeditor.core.tiling_common import (MIN_TILE, NetFn, TileOptions, compute_context, padded_index,
                                          probe_bytes_per_pixel, to_output, work_budget)


def auto_tile(net_fn: NetFn, device: torch.device | str, scale: int, width: int, mod: int = 1,
              blend: bool = True, out_bytes: int = 0) -> int:
    """A tile size that fits the working memory of ``device``, a multiple of ``mod``."""
    budget = work_budget(device, out_bytes)
    per_px = probe_bytes_per_pixel(net_fn, device) + 4.0 * 3 * scale * scale  # + output tile
    band_per_row = 4.0 * 3 * scale * scale * width if blend else 0.0  # float blending band, one input row
    # tile^2 * per_px + tile * band_per_row <= budget
    a, b = per_px, band_per_row
    t = int((-b + math.sqrt(b * b + 4 * a * budget)) / (2 * a))
    t = max(MIN_TILE, min(t, 4096))
    return max(mod, t // max(8, mod) * max(8, mod))


def ramp(n_in_lo: int, n_in_hi: int, lo_blend: int, hi_blend: int, scale: int) -> np.ndarray:
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


class _Grid:
    """The padded image's index maps, tile starts and windows (one place for the geometry)."""

    def __init__(self, image: np.ndarray, scale: int, opts: TileOptions, ov: int):
        h, w, _ = image.shape
        self.image, self.scale, self.opts = image, scale, opts
        self.rows, self.cols = padded_index(h, opts.pre_pad, opts.mod), padded_index(w, opts.pre_pad, opts.mod)
        self.hp, self.wp = len(self.rows), len(self.cols)
        self.ys, self.xs = _starts(self.hp, opts.tile, ov), _starts(self.wp, opts.tile, ov)

    def end_y(self, iy: int) -> int:
        return self.ys[iy + 1] if iy + 1 < len(self.ys) else self.hp

    def end_x(self, ix: int) -> int:
        return self.xs[ix + 1] if ix + 1 < len(self.xs) else self.wp

    def forward(self, net_fn: NetFn, y0: int, y1: int, x0: int, x1: int) -> tuple[torch.Tensor, int, int]:
        """The network on core [y0, y1) x [x0, x1) plus context; returns (output, window top, window left)."""
        pad = self.opts.tile_pad
        wy0, wy1 = max(y0 - pad, 0), min(y1 + pad, self.hp)
        wx0, wx1 = max(x0 - pad, 0), min(x1 + pad, self.wp)
        return _forward(net_fn, self.image[np.ix_(self.rows[wy0:wy1], self.cols[wx0:wx1])], self.scale,
                        self.opts), wy0, wx0


def _forward(net_fn: NetFn, win: np.ndarray, scale: int, opts: TileOptions) -> torch.Tensor:
    """The network on one window [h, w, 1|3] of the image; checks the output is x``scale``."""
    x = to_tensor(np.repeat(win, 3, axis=2) if win.shape[2] == 1 else win, opts.conv, opts.device, opts.dtype)
    if opts.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with compute_context(opts.device, opts.autocast):
        y = net_fn(x)
    assert y.shape[-2:] == (x.shape[-2] * scale, x.shape[-1] * scale), (
        f"network output {list(y.shape)} is not x{scale} of its input {list(x.shape)}")
    return y


def run_conv_tiles(net_fn: NetFn, image: np.ndarray, scale: int, opts: TileOptions, task: Task) -> np.ndarray:
    """``net_fn`` over ``image`` in 2-D tiles of ``opts.tile`` (resolved: tile, tile_pad, out_dtype set)."""
    assert opts.tile is not None and opts.tile_pad is not None and opts.out_dtype is not None, opts
    h, w, c = image.shape
    out = np.empty((h * scale, w * scale, c), opts.out_dtype)
    ov = opts.tile_pad // 2 if opts.feather is None else opts.feather
    ov = max(0, min(ov, opts.tile_pad, opts.tile // 2))
    grid = _Grid(image, scale, opts, ov)
    task.report(0, len(grid.ys) * len(grid.xs), "tiles")
    if ov == 0:  # exact tiles: each core goes straight into the output, no float band
        return _run_exact(net_fn, grid, out, task)
    return _run_blended(net_fn, grid, ov, out, task)


def _run_exact(net_fn: NetFn, grid: _Grid, out: np.ndarray, task: Task) -> np.ndarray:
    """Tiles whose context covers the receptive field: cropped cores are the whole-image result."""
    oh, ow, c = out.shape
    s = grid.scale
    total, done = len(grid.ys) * len(grid.xs), 0
    for iy, y0 in enumerate(grid.ys):
        y1 = grid.end_y(iy)
        for ix, x0 in enumerate(grid.xs):
            x1 = grid.end_x(ix)
            if y0 * s < oh and x0 * s < ow:
                y, wy0, wx0 = grid.forward(net_fn, y0, y1, x0, x1)
                oy1, ox1 = min(y1 * s, oh), min(x1 * s, ow)
                sy, sx = (y0 - wy0) * s, (x0 - wx0) * s
                core = y[0, :3, sy : sy + oy1 - y0 * s, sx : sx + ox1 - x0 * s].float().permute(1, 2, 0)
                out[y0 * s : oy1, x0 * s : ox1] = to_output(core.cpu(), grid.opts.conv, out.dtype.type, c == 1)
            done += 1
            task.report(done, total, f"tile {done}/{total}")
    return out


def _run_blended(net_fn: NetFn, grid: _Grid, ov: int, out: np.ndarray, task: Task) -> np.ndarray:
    """Overlapping tiles blended with linear ramps, one row of tiles (a float band) at a time."""
    oh, ow, c = out.shape
    s, ys = grid.scale, grid.ys
    total, done = len(ys) * len(grid.xs), 0
    carry = None
    for iy, y0 in enumerate(ys):
        y1 = grid.end_y(iy)
        blend_top, blend_bot = (ov if iy > 0 else 0), (ov if iy < len(ys) - 1 else 0)
        by0, by1 = (y0 - blend_top) * s, (y1 + blend_bot) * s  # band rows (output)
        band = np.zeros((by1 - by0, ow, 3), np.float32)  # float blending, one row of tiles
        if carry is not None:  # the overlap rows the previous row of tiles already blended into
            band[: carry.shape[0]] = carry
        wy = ramp(y0 - blend_top, y1 + blend_bot, blend_top, blend_bot, s)
        for ix, x0 in enumerate(grid.xs):
            x1 = grid.end_x(ix)
            bl, br = (ov if ix > 0 else 0), (ov if ix < len(grid.xs) - 1 else 0)
            cx0, cx1 = x0 - bl, x1 + br  # contributed span (input columns)
            if cx0 * s < ow:
                y, wy0, wx0 = grid.forward(net_fn, y0, y1, x0, x1)
                sy0, sx0 = (y0 - blend_top - wy0) * s, (cx0 - wx0) * s
                keep = min(cx1 * s, ow) - cx0 * s
                patch = y[0, :3, sy0 : sy0 + (by1 - by0), sx0 : sx0 + keep].float().permute(1, 2, 0).cpu().numpy()
                wx = ramp(cx0, cx1, bl, br, s)[:keep]
                band[:, cx0 * s : cx0 * s + keep] += patch * (wy[:, None, None] * wx[None, :, None])  # [HWC]
            done += 1
            task.report(done, total, f"tile {done}/{total}")
        final_to = (y1 - blend_bot) * s  # rows below get more from the next row of tiles
        hi = min(final_to, oh)
        if hi > by0:
            out[by0:hi] = to_output(band[: hi - by0], grid.opts.conv, out.dtype.type, c == 1)
        if final_to >= oh:
            break
        carry = band[final_to - by0 :].copy()
    return out
