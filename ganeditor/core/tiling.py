"""The one tiled-inference entry point for image-to-image networks (super-resolution, translation).

``run_tiled(net_fn, image, scale, options, task=task)`` maps an [H, W, C] uint8/uint16 image through
a network and writes the result straight into a preallocated uint8/uint16 array of the output size.
It picks one of three engines, all exact (tiled == untiled up to float rounding) by default:

* 2-D tiles (``tiling_conv``, convolutional networks): cores of ``tile`` x ``tile`` input pixels
  with the receptive field as context (``tile_pad=None``: the network's declared
  ``receptive_radius``, else the sum of the conv radii, capped at 64), so the cropped cores are what
  the whole image gives; networks declaring an unbounded field (None) get 64 pixels and blending,
  on a grid of 64 px (tile and context multiples of 64, rounded down from the memory-fitted size,
  up from a given one): shifted-window attention (SCUNet: 8-px windows at 1/8 resolution) then cuts
  every tile into the windows it cuts the whole image into (at 48-px tiles, off the grid: 119/255).
  An explicit small ``tile_pad`` (RealESRGANer uses 10) trades exactness for speed; linear ramps
  then hide the seams.
* Networks whose output depends on whole-image statistics (``global_stats``, instance norm) take
  the exact banded strategy of ``tiling_norm``.
* SR networks that describe themselves (``band_plan``: RRDBNet, MSRResNet, SRVGG) are streamed by
  ``tiling_sr``: the whole image in one pass when it fits, else the trunk whole or block by block
  in row bands and the tail in row bands (RRDBNet's receptive field is ~350 pixels: 2-D tiles would
  recompute most of it).

Tile size: given, or chosen from free memory (CUDA ``mem_get_info``; else psutil or /proc/meminfo)
and a probe of the network's activation size.  Out of memory -> the run restarts with half the tile
(down to ``MIN_TILE``).  Progress is reported through ``task``, which also raises ``Cancelled``:
between tiles, bands and chunks, and inside every forward (``tiling_cancel.CancelPoints``), so a
cancel takes effect within ~2 GFLOP of work (~20 ms of one core).

Memory: a run of a megapixel or more lowers glibc's mmap threshold while it lasts
(``large_allocations_mapped``), so the few-MiB activations of finished tiles are returned to the
system instead of kept as heap.

Channels: a gray image is replicated to RGB tile by tile and the RGB result converted back with
ITU-R 601 luma weights (as Real-ESRGAN's ``cvtColor``); alpha is the caller's business.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import numpy as np
import torch

from ganeditor.core.device import is_oom
from ganeditor.core.errors import Cancelled, GanEditorError
from ganeditor.core.progress import Task, null_task
from ganeditor.core.tiling_cancel import CancelPoints
from ganeditor.core.tiling_common import (MIN_TILE, RADIUS_CAP, NetFn, TileOptions, compute_context,
                                          large_allocations_mapped, padded_index, receptive_radius)
from ganeditor.core.tiling_conv import auto_tile, run_conv_tiles
from ganeditor.core.tiling_norm import NORM_FALLBACK_TILE, run_global_norm
from ganeditor.core.tiling_sr import plan_of, run_trunk_banded


def run_tiled(net_fn: NetFn, image: np.ndarray, scale: int = 1, options: TileOptions | None = None, *,
              task: Task | None = None) -> np.ndarray:
    """Run ``net_fn`` over ``image`` [H, W, 1|3]; returns [H*scale, W*scale, same C] (see the module docstring)."""
    assert image.ndim == 3 and image.shape[2] in (1, 3), image.shape
    assert image.dtype in (np.uint8, np.uint16), image.dtype
    task = task or null_task()
    opts = options or TileOptions()
    opts = replace(opts, out_dtype=opts.out_dtype or image.dtype.type)
    out_pixels = image.shape[0] * image.shape[1] * scale * scale
    # a large run returns its freed tiles' memory to the system, whoever called (CLI, window);
    # CancelPoints: checks inside every forward, big convolutions in row chunks
    with large_allocations_mapped(out_pixels), CancelPoints(task):
        return _dispatch(net_fn, image, scale, opts, task)


def _dispatch(net_fn: NetFn, image: np.ndarray, scale: int, opts: TileOptions, task: Task) -> np.ndarray:
    """Pick the engine (and the tile size) for ``net_fn``; each runs under the out-of-memory retry."""
    if opts.global_stats:
        opts = replace(opts, mod=max(opts.mod, 4))
        return _retry_oom(lambda o: run_global_norm(net_fn, image, o, task), opts, NORM_FALLBACK_TILE, task)
    plan = plan_of(net_fn) if opts.tile_pad is None else None
    if plan is not None:  # exact streaming of a described SR network (whole image when it fits)
        return _retry_oom(lambda o: run_trunk_banded(net_fn, plan, image, scale, o, task), opts, NORM_FALLBACK_TILE, task)
    tile_pad, feather, step = opts.tile_pad, opts.feather, opts.mod
    if tile_pad is None:
        tile_pad, exact = receptive_radius(net_fn)
        if feather is None and exact:
            feather = 0  # the context covers the receptive field: tiles are exact, no blending needed
        if getattr(net_fn, "receptive_radius", 0) is None:  # unbounded, e.g. windowed attention: windows
            step = math.lcm(opts.mod, RADIUS_CAP)  # must fall where the whole image's fall
    tile = opts.tile
    if tile is None:
        with compute_context(opts.device, opts.autocast):
            tile = auto_tile(net_fn, opts.device, scale, image.shape[1] + opts.pre_pad, opts.mod, blend=feather != 0,
                             out_bytes=image.nbytes * scale * scale)
        tile = max(step, tile // step * step)  # within the memory budget
    tile = max(step, -(-tile // step) * step)
    opts = replace(opts, tile=tile, tile_pad=-(-tile_pad // step) * step, feather=feather)
    return _retry_oom(lambda o: run_conv_tiles(net_fn, image, scale, o, task), opts, tile, task, step)


def _retry_oom(fn: Callable[[TileOptions], np.ndarray], opts: TileOptions, fallback: int, task: Task,
               step: int | None = None) -> np.ndarray:
    """Call ``fn(opts)``; on out-of-memory call it again with half the tile (``fallback`` halved if None),
    a multiple of ``step`` (default ``opts.mod``)."""
    step = step or opts.mod
    while True:
        try:
            return fn(opts)
        except Cancelled:
            raise
        except Exception as e:  # noqa: BLE001 - only out-of-memory is retried
            if not is_oom(e):
                raise
            if opts.device.type == "cuda":
                torch.cuda.empty_cache()
            current = opts.tile or fallback
            tile = max(step, current // 2 // step * step)
            if current // 2 < MIN_TILE or tile >= current:
                raise GanEditorError(f"out of memory even with {current}-pixel tiles") from e
            opts = replace(opts, tile=tile)
            task.report(0, None, f"out of memory: retrying with {tile}-pixel tiles")
