"""Exact banded inference for RRDBNet (ESRGAN, Real-ESRGAN x4plus/x2plus), at bounded memory.

RRDBNet's receptive field is huge (23 RRDBs x 15 convs: ~350 input pixels each way), and measured on
the real x4plus weights, 2-D tiles with RealESRGANer's 10-pixel context -- or even 24 -- change
the output by tens of levels.  So RRDBNet is streamed block by block over full-width row bands with
the valid-mode machinery of ``tiling_bands``:

1. ``[pixel_unshuffle] + conv_first`` is computed band by band into two stores: ``feat`` (kept for
   the long skip) and ``trunk``.
2. Each RRDB is a stride-1 module whose output is exact except within 15 rows (its chain of 3x3
   convs) of a cut band edge; it runs band by band with 15 rows of context and overwrites ``trunk``
   in place one band behind (see ``tiling_bands.in_place``).
3. ``conv_body``, ``+ feat``, the nearest-x2 upsamplings with their convs, ``conv_hr`` and
   ``conv_last`` run band by band from ``trunk`` straight into the quantised output.

Every conv runs once plus 30 context rows per band and block; memory is two stores of
``num_feat`` fp32 channels at input resolution (RAM, or temporary files beyond the store budget)
plus one band of work.  The result equals the whole-image forward up to float rounding.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.progress import Task
from ganeditor.core.tiling_bands import STORE_CAP, ImageSource, Op, Run, in_place, materialise, run_pass
from ganeditor.core.tiling_common import TileOptions, available_memory, padded_index, quantize_rows, work_budget

RRDB_ATTRS = ("conv_first", "body", "conv_body", "conv_hr", "conv_last", "num_upconv", "unshuffle")


def is_rrdbnet(net: object) -> bool:
    """True for an ESRGAN RRDBNet (BasicSR layout), which gets the exact banded path."""
    return isinstance(net, nn.Module) and all(hasattr(net, a) for a in RRDB_ATTRS)


def conv_halo(module: nn.Module) -> int:
    """Rows of context a stride-1 conv stack needs: the sum of its convs' radii (conservative)."""
    return sum((m.kernel_size[0] // 2) * m.dilation[0] for m in module.modules() if isinstance(m, nn.Conv2d))


def _conv(m: nn.Conv2d) -> Op:
    return Op("conv", m, m.padding[0], "constant")


def run_rrdb_banded(
    net: nn.Module,
    image: np.ndarray,
    scale: int,
    opts: TileOptions,  # tile = band height in input rows (None: from the memory budget); pre_pad, mod, ...
    task: Task,
    store_budget: int | None = None,  # bytes of RAM per stored activation; beyond: temporary file
) -> np.ndarray:
    """Whole-image-exact RRDBNet inference (see the module docstring); returns [H*s, W*s, C]."""
    h, w, c = image.shape
    device, conv, out_dtype = opts.device, opts.conv, opts.out_dtype or image.dtype.type
    rows, cols = padded_index(h, opts.pre_pad, opts.mod), padded_index(w, opts.pre_pad, opts.mod)
    src = ImageSource(image, rows, cols, conv, device)
    head = ([Op("unshuffle", pad=net.unshuffle)] if net.unshuffle > 1 else []) + [_conv(net.conv_first)]
    blocks = list(net.body)
    run = Run(device, opts.autocast, opts.tile, work_budget(device), task, 3 + len(blocks), len(rows))
    if store_budget is None:
        store_budget = int(min(STORE_CAP, available_memory("cpu") / 4))
    feat = materialise(run, src, head, store_budget, device)
    trunk = materialise(run, src, head, store_budget, device)
    try:
        for i, block in enumerate(blocks):
            in_place(run, trunk, [Op("opaque", block, pad=conv_halo(block))],
                      label=f"block {i + 1}/{len(blocks)}")
        tail = [_conv(net.conv_body), Op("add", store=feat)]
        for i in range(1, net.num_upconv + 1):
            tail += [Op("up", pad=2), _conv(getattr(net, f"conv_up{i}")), Op("point", nn.LeakyReLU(0.2))]
        tail += [_conv(net.conv_hr), Op("point", nn.LeakyReLU(0.2)), _conv(net.conv_last)]
        oh, ow = h * scale, w * scale
        out = np.empty((oh, ow, c), out_dtype)

        def emit(a: int, b: int, y: torch.Tensor) -> None:
            if a < oh:
                out[a : min(b, oh)] = quantize_rows(y[:, :3, : min(b, oh) - a, :ow], conv, out_dtype, c == 1)

        run_pass(run, trunk, tail, emit, "output")
        return out
    finally:
        feat.close()
        trunk.close()
