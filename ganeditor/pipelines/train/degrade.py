"""Making low-resolution/damaged inputs from clean photos, per sample and deterministic.

``bicubic``: anti-aliased bicubic downscale (the classic SR benchmark degradation).
``realistic``: a second-order chain after Real-ESRGAN's idea — blur, resize, noise, JPEG, twice —
which also models old/scanned photos.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from ganeditor.core.imageio_open import open_image


def bicubic_down(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """[N,C,H,W] in [0,1] -> [N,C,H/scale,W/scale], anti-aliased bicubic, clamped."""
    h, w = hr.shape[-2:]
    return F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return open_image(buf).convert("RGB")


def _one_order(im: Image.Image, rng: np.random.Generator, size: tuple[int, int], strength: float) -> Image.Image:
    if rng.random() < 0.8:
        im = im.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.2, 2.5 * strength))))
    resample = [Image.Resampling.BICUBIC, Image.Resampling.BILINEAR, Image.Resampling.LANCZOS][int(rng.integers(3))]
    im = im.resize(size, resample)
    a = np.asarray(im, dtype=np.float32)
    if rng.random() < 0.8:
        sigma = rng.uniform(1, 20 * strength)
        noise = rng.normal(0, sigma, a.shape[:2] + (1,)) if rng.random() < 0.4 else rng.normal(0, sigma, a.shape)
        a = a + noise
    im = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < 0.8:
        im = _jpeg(im, rng.integers(int(95 - 60 * strength), 96))
    return im


def realistic_down(hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """HxWx3 uint8 -> (H/scale)x(W/scale)x3 uint8 through a random two-stage degradation."""
    h, w = hr.shape[:2]
    im = Image.fromarray(hr)
    mid = (max(1, int(w / scale * rng.uniform(1.0, 2.0))), max(1, int(h / scale * rng.uniform(1.0, 2.0))))
    im = _one_order(im, rng, mid, 1.0)
    im = _one_order(im, rng, (w // scale, h // scale), 0.6)
    return np.asarray(im)


def degrade_batch(hr: torch.Tensor, scale: int, mode: str, rngs: list[np.random.Generator]) -> torch.Tensor:
    """[N,3,H,W] in [0,1] -> low-resolution batch, by ``mode`` ('bicubic' | 'realistic')."""
    if mode == "bicubic":
        return bicubic_down(hr, scale)
    if mode != "realistic":
        raise ValueError(f"unknown degradation {mode!r}")
    out = []
    for x, rng in zip(hr, rngs):
        a = (x.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
        out.append(torch.from_numpy(realistic_down(a, scale, rng).astype(np.float32) / 255).permute(2, 0, 1))
    return torch.stack(out).to(hr.device)
