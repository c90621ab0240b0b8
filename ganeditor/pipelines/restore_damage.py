"""Dust and scratches: find them (a segmentation network over the whole photo, tiled exactly) and fill
them (an inpainting network run only around the damage).

Detection runs the detector through the tiled engine; its probability comes back as an 8-bit map
and is thresholded at ``1 - strength / 2`` (strength 1: p >= 0.5; lower strengths keep only the
surest marks), then grown by ``grow`` pixels so the fill covers the marks' soft edges.

Inpainting visits only the cells of a ``cell`` x ``cell`` grid that hold masked pixels: each is run
with the network's receptive radius of context on every side, so a filled pixel is exactly what a
whole-image run would give (networks without a bounded receptive field, such as LaMa's Fourier
convolutions, get ``GLOBAL_CONTEXT`` pixels and a note).  Pixels outside the mask are returned
bit for bit.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.imageio import SR_CONVENTION, quantize, to_tensor
from ganeditor.core.progress import Task, null_task
from ganeditor.core.tiling import run_tiled
from ganeditor.core.tiling_cancel import CancelPoints
from ganeditor.core.tiling_common import compute_context, padded_index
from ganeditor.pipelines.image2image import Image2ImageOptions, tile_options

GLOBAL_CONTEXT = 128  # context of inpainters whose receptive field is unbounded
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class Adapted(nn.Module):
    """``net`` seen through ``fn(net, x)``, declaring the same tiling facts as ``net``."""

    FACTS = ("io_convention", "scale", "size_multiple", "needs_global_stats", "receptive_radius", "arch_name")

    def __init__(self, net: nn.Module, fn: Callable[[nn.Module, torch.Tensor], torch.Tensor]):
        super().__init__()
        self.net, self.fn = net, fn
        for k in self.FACTS:
            if hasattr(net, k):
                object.__setattr__(self, k, getattr(net, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.net, x)

    def describe(self) -> dict[str, object]:
        return self.net.describe() if hasattr(self.net, "describe") else {"arch": getattr(self, "arch_name", "?")}


def _probability_rgb(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(net(x).float()).expand(-1, 3, -1, -1)


def detect_damage(net: nn.Module, pixels: np.ndarray, *, strength: float = 1.0, grow: int = 1,
                  options: Image2ImageOptions | None = None, task: Task | None = None) -> np.ndarray:
    """The damage mask [H, W] bool of ``pixels`` [H, W, 1|3] (uint8/uint16) found by a scratch detector."""
    prob = damage_probability(net, pixels, options=options, task=task)
    threshold = 1.0 - 0.5 * min(max(strength, 0.0), 1.0)
    if threshold >= 1.0:
        return np.zeros(pixels.shape[:2], bool)
    return grow_mask(prob >= round(threshold * 255), grow)


def damage_probability(net: nn.Module, pixels: np.ndarray, *, options: Image2ImageOptions | None = None,
                       task: Task | None = None) -> np.ndarray:
    """The detector's probability of damage per pixel, [H, W] uint8 (0..255)."""
    adapted = Adapted(net, _probability_rgb)
    opts, _notes = tile_options(adapted, options or Image2ImageOptions())
    out = run_tiled(adapted, pixels, 1, replace(opts, out_dtype=np.uint8, conv=SR_CONVENTION), task=task or null_task())
    return out[:, :, 0]


def grow_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilate a bool mask by ``radius`` pixels (square structuring element), row and column shifts."""
    out = mask.copy()
    for _ in range(max(0, radius)):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        out = grown
    return out


def _damaged_cells(mask: np.ndarray, cell: int) -> list[tuple[int, int]]:
    h, w = mask.shape
    hc, wc = -(-h // cell), -(-w // cell)
    pad = np.zeros((hc * cell, wc * cell), bool)
    pad[:h, :w] = mask
    any_cell = pad.reshape(hc, cell, wc, cell).any(axis=(1, 3))
    return [(int(y) * cell, int(x) * cell) for y, x in zip(*np.nonzero(any_cell))]


def inpaint(net: nn.Module, pixels: np.ndarray, mask: np.ndarray, *, cell: int = 256,
            task: Task | None = None) -> tuple[np.ndarray, list[str]]:
    """``pixels`` [H, W, 1|3] with the ``mask`` [H, W] pixels filled by an inpainting network ``net(x, m)``;
    returns (pixels, notes).  See the module docstring for exactness."""
    task = task or null_task()
    h, w, _c = pixels.shape
    m = max(1, int(getattr(net, "size_multiple", 1)))
    radius = getattr(net, "receptive_radius", None)
    notes = []
    if radius is None:
        radius = GLOBAL_CONTEXT
        notes.append(f"{getattr(net, 'arch_name', 'the inpainter')} sees the whole image; it was given "
                     f"{GLOBAL_CONTEXT} px around each damaged region")
    pad = -(-int(radius) // m) * m
    cell = max(m, cell // m * m)
    rows, cols = padded_index(h, 0, m), padded_index(w, 0, m)
    out = pixels.copy()
    cells = _damaged_cells(mask, cell)
    p = next(iter(net.parameters()), None)
    device = p.device if p is not None else torch.device("cpu")
    task.report(0, len(cells), "filling damage")
    with CancelPoints(task):  # a cell is seconds of work: cancel inside its forward too
        _fill_cells(net, pixels, mask, out, cells, cell, pad, rows, cols, device, task)
    return out, notes


def _fill_cells(net: nn.Module, pixels: np.ndarray, mask: np.ndarray, out: np.ndarray, cells: list[tuple[int, int]],
                cell: int, pad: int, rows: np.ndarray, cols: np.ndarray, device: torch.device, task: Task) -> None:
    """Run ``net`` on each damaged cell with ``pad`` pixels of context; write its masked pixels into ``out``."""
    h, w, c = pixels.shape
    hp, wp = len(rows), len(cols)
    for k, (y0, x0) in enumerate(cells):
        y1, x1 = min(y0 + cell, h), min(x0 + cell, w)
        wy0, wy1 = max(0, y0 - pad), min(hp, y0 + cell + pad)
        wx0, wx1 = max(0, x0 - pad), min(wp, x0 + cell + pad)
        win = pixels[np.ix_(rows[wy0:wy1], cols[wx0:wx1])]
        x = to_tensor(np.repeat(win, 3, axis=2) if c == 1 else win, SR_CONVENTION, device)
        mk = torch.from_numpy(mask[np.ix_(rows[wy0:wy1], cols[wx0:wx1])]).to(device, torch.float32)[None, None]
        with compute_context(device, None):
            y = net(x, mk)[0, :, y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0].float()  # [3, h, w]
        if c == 1:
            y = (y * torch.from_numpy(LUMA).view(3, 1, 1).to(y)).sum(0, keepdim=True)
        vals = quantize(y.permute(1, 2, 0).cpu(), SR_CONVENTION, pixels.dtype.type).numpy().astype(pixels.dtype)
        sel = mask[y0:y1, x0:x1]
        out[y0:y1, x0:x1][sel] = vals[sel]
        task.report(k + 1, len(cells), f"filling damage {k + 1}/{len(cells)}")
