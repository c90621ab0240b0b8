"""The whole-photo restoration stages after dust and scratches: global restoration, colourisation and
upscaling, each with a strength, all with bounded memory at any size.

* Global restoration runs the restorer through the tiled engine (exact tiles); strength s blends
  inside the forward, ``x + s (net(x) - x)``, so no second full-size image is made.
* Colourisation predicts chroma from luma at a working size (the long side at most ``work_side``
  pixels: colour is low-frequency and the network needs context more than pixels), upsamples the
  chroma bilinearly and recombines it with the full-resolution luma, band by band.  Strength scales
  the predicted chroma (0: gray).
* Upscaling runs any SR network through the tiled engine (``outscale`` resizes to the asked factor
  with Lanczos); strength s < 1 blends the result with a Lanczos enlargement, band by band.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.core.imageio import LoadedImage, max_value, resize_lanczos
from ganeditor.core.progress import Task, null_task
from ganeditor.core.tiling_cancel import CancelPoints
from ganeditor.pipelines.colour_space import ycbcr_to_rgb
from ganeditor.pipelines.image2image import Image2ImageOptions, image_to_image
from ganeditor.pipelines.restore_damage import Adapted

BAND_ROWS = 256  # rows per band of the band-by-band full-resolution passes
LUMA = torch.tensor([0.299, 0.587, 0.114])


def _device_of(net: nn.Module) -> torch.device:
    p = next(iter(net.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def restore_global(net: nn.Module, image: LoadedImage, *, strength: float = 1.0,
                   options: Image2ImageOptions | None = None, task: Task | None = None) -> LoadedImage:
    """The global restorer over the whole image (tiled), its change scaled by ``strength``."""
    s = float(min(max(strength, 0.0), 1.0))
    if s == 0.0:
        return image
    run = net if s == 1.0 else Adapted(net, lambda n, x: x + s * (n(x) - x))
    return image_to_image(run, image, options, task=task)


def _luma(rows: np.ndarray) -> torch.Tensor:
    """[h, W, 1|3] integer rows -> [1, 1, h, W] float luma in [0, 1]."""
    t = torch.from_numpy(rows.astype(np.float32) / max_value(rows.dtype)).permute(2, 0, 1)[None]
    return t if t.shape[1] == 1 else (t * LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True)


def _work_size(h: int, w: int, work_side: int, multiple: int) -> tuple[int, int]:
    r = min(1.0, work_side / max(h, w))
    return (max(multiple, round(h * r / multiple) * multiple), max(multiple, round(w * r / multiple) * multiple))


def colourise(net: nn.Module, pixels: np.ndarray, *, strength: float = 1.0, work_side: int = 512,
              task: Task | None = None) -> np.ndarray:
    """[H, W, 1|3] uint8/uint16 -> [H, W, 3] same dtype: the luma kept, chroma predicted by ``net``."""
    task = task or null_task()
    h, w, _ = pixels.shape
    dev = _device_of(net)
    wh, ww = _work_size(h, w, work_side, int(getattr(net, "size_multiple", 1)))
    task.report(0, 2, "predicting colour")
    luma = np.empty((h, w, 1), pixels.dtype)  # integer luma: 1-2 bytes per pixel, never a float copy
    peak = max_value(pixels.dtype)
    for y0 in range(0, h, BAND_ROWS):
        luma[y0 : y0 + BAND_ROWS, :, 0] = (_luma(pixels[y0 : y0 + BAND_ROWS])[0, 0] * peak).round().numpy()
    small = torch.from_numpy(resize_lanczos(luma, (ww, wh)).astype(np.float32) / peak).permute(2, 0, 1)[None]
    with torch.inference_mode(), CancelPoints(task):
        chroma = net(small.clamp(0, 1).to(dev)).float().cpu() * float(min(max(strength, 0.0), 1.0))  # [1,2,wh,ww]
    task.report(1, 2, "adding colour")
    out = np.empty((h, w, 3), pixels.dtype)
    gx = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1  # grid_sample, align_corners=False: same as bilinear resize
    for y0 in range(0, h, BAND_ROWS):
        y1 = min(h, y0 + BAND_ROWS)
        gy = (torch.arange(y0, y1, dtype=torch.float32) + 0.5) / h * 2 - 1
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None]  # [1, h, W, 2] (x, y)
        cbcr = F.grid_sample(chroma, grid, mode="bilinear", padding_mode="border", align_corners=False)
        rgb = ycbcr_to_rgb(torch.cat([_luma(pixels[y0:y1]), cbcr], 1))[0].permute(1, 2, 0)
        out[y0:y1] = (rgb.clamp(0, 1) * peak).round().numpy().astype(pixels.dtype)
        task.check()
    task.report(2, 2, "colour added")
    return out


def upscale_stage(net: nn.Module, image: LoadedImage, *, factor: float, strength: float = 1.0,
                  options: Image2ImageOptions | None = None, task: Task | None = None) -> LoadedImage:
    """``image`` enlarged ``factor`` times by an SR network; strength < 1 blends with Lanczos."""
    options = options or Image2ImageOptions()
    out = image_to_image(net, image, replace(options, outscale=None if factor == net.scale else factor), task=task)
    s = float(min(max(strength, 0.0), 1.0))
    if s == 1.0:
        return out
    h, w = out.pixels.shape[:2]
    plain = resize_lanczos(image.pixels, (w, h))
    plain = plain[:, :, None] if plain.ndim == 2 else plain
    peak = max_value(out.pixels.dtype)
    for y0 in range(0, h, BAND_ROWS):
        a = plain[y0 : y0 + BAND_ROWS].astype(np.float32)
        b = out.pixels[y0 : y0 + BAND_ROWS].astype(np.float32)
        out.pixels[y0 : y0 + BAND_ROWS] = np.clip(np.round(a + s * (b - a)), 0, peak).astype(out.pixels.dtype)
    return out
