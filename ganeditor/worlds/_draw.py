"""Batched signed-distance drawing helpers shared by the procedural worlds (torch, any device).

Conventions: coordinate grids are float32 tensors [B,1,H,W]; per-image parameters are [B,1,1,1]
tensors (or Python floats); colours are [B,3,1,1] or [B,3,H,W]; images are [B,3,H,W] in [0,1].
Signed distances are negative inside, in the same units as the grid, and are turned into
anti-aliased coverage with ``cover(d, px)`` (analytic box-filter approximation over one pixel).
"""

from __future__ import annotations

import math

import numpy as np
import torch

Tensor = torch.Tensor


def grid(batch: int, height: int, width: int, device: torch.device | str = "cpu",
         affine: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel-centre coordinates (x, y) in image fractions and the pixel size, each [B,1,H,W]/[B,1,1,1].

    ``affine`` [B,2,3] maps output-canvas fractions to world coordinates (x' = A @ (x, y) + t).
    """
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    y = ys.view(1, 1, height, 1).expand(batch, 1, height, width)
    x = xs.view(1, 1, 1, width).expand(batch, 1, height, width)
    px = torch.full((batch, 1, 1, 1), 1.0 / height, device=device)
    if affine is not None:
        assert affine.shape == (batch, 2, 3), affine.shape
        a = affine.to(device=device, dtype=torch.float32).view(batch, 6, 1, 1)
        a00, a01, a02, a10, a11, a12 = (a[:, i:i + 1] for i in range(6))  # each [B,1,1,1]
        x, y = a00 * x + a01 * y + a02, a10 * x + a11 * y + a12
        px = px * (a00 * a11 - a01 * a10).abs().sqrt()
    else:
        x, y = x.contiguous(), y.contiguous()
    return x, y, px


def p(values, device: torch.device | str = "cpu") -> Tensor:
    """Per-image scalars (sequence of B floats) as a [B,1,1,1] float32 tensor."""
    return torch.as_tensor(np.asarray(values, dtype=np.float32), device=device).view(-1, 1, 1, 1)


def colour(values, device: torch.device | str = "cpu") -> Tensor:
    """Per-image colours ([B,3] array-like) as a [B,3,1,1] float32 tensor."""
    return torch.as_tensor(np.asarray(values, dtype=np.float32), device=device).view(-1, 3, 1, 1)


def cover(d: Tensor, px: Tensor | float, soft: float = 1.0) -> Tensor:
    """Anti-aliased coverage of the inside (d < 0) of a signed distance, blurred over ``soft`` pixels."""
    return (0.5 - d / (px * soft)).clamp_(0.0, 1.0)


def smoothstep(e0, e1, x: Tensor) -> Tensor:
    """Hermite smoothstep from e0 to e1 (works with tensor or float edges)."""
    t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def sd_circle(x: Tensor, y: Tensor, cx, cy, r) -> Tensor:
    """Signed distance to a circle."""
    return torch.sqrt((x - cx) ** 2 + (y - cy) ** 2) - r


def sd_ellipse(x: Tensor, y: Tensor, cx, cy, rx, ry) -> Tensor:
    """Approximate signed distance to an axis-aligned ellipse (first-order, exact on the axes)."""
    qx, qy = (x - cx) / rx, (y - cy) / ry
    k0 = torch.sqrt(qx * qx + qy * qy)
    k1 = torch.sqrt((qx / rx) ** 2 + (qy / ry) ** 2).clamp_min(1e-6)
    return k0 * (k0 - 1.0) / k1


def sd_box(x: Tensor, y: Tensor, cx, cy, hw, hh, r=0.0) -> Tensor:
    """Signed distance to a rounded axis-aligned box with half sizes (hw, hh) and corner radius r."""
    qx = (x - cx).abs() - hw + r
    qy = (y - cy).abs() - hh + r
    outside = torch.sqrt(qx.clamp_min(0) ** 2 + qy.clamp_min(0) ** 2)
    return outside + torch.maximum(qx, qy).clamp_max(0) - r


def sd_parabola_stroke(x: Tensor, y: Tensor, cx, cy, half_len, bend, thick, taper: float = 0.6) -> Tensor:
    """Signed distance to a stroke along y = cy + bend*((x-cx)/half_len)^2 - bend, |x-cx| <= half_len.

    ``bend`` > 0 makes the ends lower than the middle (an arch); thickness tapers towards the ends.
    """
    t = (x - cx) / half_len
    curve = cy + bend * (t * t - 1.0)
    slope = 2.0 * bend * t / half_len
    dist = (y - curve).abs() / torch.sqrt(1.0 + slope * slope)
    w = thick * (1.0 - taper * t.abs().clamp_max(1.0) ** 2)
    return torch.maximum(dist - w, (x - cx).abs() - half_len)


def sd_segment(x: Tensor, y: Tensor, ax, ay, bx, by, r) -> Tensor:
    """Signed distance to a capsule from (ax, ay) to (bx, by) with radius r."""
    pax, pay = x - ax, y - ay
    bax, bay = bx - ax, by - ay
    h = ((pax * bax + pay * bay) / (bax * bax + bay * bay + 1e-12)).clamp(0.0, 1.0)
    return torch.sqrt((pax - bax * h) ** 2 + (pay - bay * h) ** 2) - r


def blend(img: Tensor, col, alpha: Tensor) -> Tensor:
    """Paint ``col`` over ``img`` in place with per-pixel ``alpha`` [B,1,H,W]; returns img."""
    if not torch.is_tensor(col):
        col = torch.as_tensor(col, dtype=img.dtype, device=img.device)
    return img.lerp_(col, alpha)  # one fused pass: img + alpha * (col - img)


def hsv(h, s, v) -> np.ndarray:
    """HSV (arrays in [0,1]) to RGB array [..., 3]."""
    h, s, v = np.broadcast_arrays(np.asarray(h, float), np.asarray(s, float), np.asarray(v, float))
    k = lambda n: (n + h * 6.0) % 6.0  # noqa: E731
    f = lambda n: v - v * s * np.clip(np.minimum(k(n), 4.0 - k(n)), 0.0, 1.0)  # noqa: E731
    return np.stack([f(5.0), f(3.0), f(1.0)], axis=-1)


def waves(x: Tensor, y: Tensor, phases: Tensor, freqs: tuple[float, ...]) -> Tensor:
    """Cheap smooth pseudo-noise in [-1,1]: a sum of oriented sines with per-image phases [B,k,1,1]."""
    out = torch.zeros_like(x)
    phases = phases.to(x.device)
    n = len(freqs)
    for i, f in enumerate(freqs):
        ang = phases[:, i:i + 1] * 7.0 + i * 2.399
        out = out + torch.sin(f * (x * torch.cos(ang) + y * torch.sin(ang)) + phases[:, i:i + 1] * 40.0)
    return out / math.sqrt(n)


def hash_noise(x: Tensor, y: Tensor, cell: float, seed: Tensor) -> Tensor:
    """Per-cell white noise in [0,1) (cells of ``cell`` world units), varying with per-image ``seed``.

    An integer hash, so values are exact and identical on every platform and batch layout.
    """
    m = 0xFFFFFFFF
    ix = torch.floor(x / cell).to(torch.int64) & m
    iy = torch.floor(y / cell).to(torch.int64) & m
    s = (torch.as_tensor(seed, device=x.device, dtype=torch.float32) * 1e6).to(torch.int64) & m
    h = ((ix * 73856093) ^ (iy * 19349663) ^ (s * 83492791)) & m
    h = ((h ^ (h >> 15)) * 0x2C1B3C6D) & m
    h = ((h ^ (h >> 12)) * 0x297A2D39) & m
    h = h ^ (h >> 15)
    return (h & 0xFFFFFF).to(torch.float32) / 16777216.0


def to_uint8(img: Tensor) -> np.ndarray:
    """[B,3,H,W] float in [0,1] to a uint8 numpy array [B,H,W,3] (rounded)."""
    return (img.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
