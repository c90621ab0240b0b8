"""Turn a real daytime photograph into a plausible night version (for training on real photos).

Steps: a sky mask (bright, blue-or-grey, smooth regions connected to the top edge, found at low
resolution); the ground darkened through a linear-light tone curve with a blue shift and less
saturation; the sky replaced by a dark gradient that keeps a trace of the clouds and gets stars;
small bright highlights kept as warm "lights" with a little bloom; a touch of sensor noise.
Deterministic for a given ``seed``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _blur(x: Tensor, k: int) -> Tensor:
    """Box blur [1,C,H,W] with an odd kernel k (edge-replicated), applied twice (≈ Gaussian)."""
    if k <= 1:
        return x
    for _ in range(2):
        x = F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)
    return x


def sky_mask(lin: Tensor, work: int = 160) -> Tensor:
    """Soft sky mask [1,1,H,W] in [0,1] for a linear-light image [1,3,H,W]."""
    _, _, h, w = lin.shape
    s = work / max(h, w)
    small = F.interpolate(lin, size=(max(8, round(h * s)), max(8, round(w * s))), mode="area") if s < 1 else lin
    srgb = small.clamp(0, 1) ** (1 / 2.2)
    r, g, b = srgb[:, 0:1], srgb[:, 1:2], srgb[:, 2:3]
    bright = srgb.mean(1, keepdim=True)
    mx, mn = srgb.max(1, keepdim=True).values, srgb.min(1, keepdim=True).values
    blue = (b > 0.3).float() * (b >= r).float() * (b >= g * 0.95).float()
    grey = ((mx - mn) < 0.12).float() * (bright > 0.62).float()  # overcast sky
    gy, gx = torch.zeros_like(bright), torch.zeros_like(bright)
    gy[:, :, 1:] = (bright[:, :, 1:] - bright[:, :, :-1]).abs()
    gx[:, :, :, 1:] = (bright[:, :, :, 1:] - bright[:, :, :, :-1]).abs()
    smooth = (_blur(gx + gy, 3) < 0.035).float()
    score = torch.clamp(blue + grey, 0, 1) * smooth
    score = (_blur(score, 3) > 0.5).float()
    reach = torch.zeros_like(score)  # flood fill from the top edge through sky-like pixels
    reach[:, :, 0] = score[:, :, 0]
    for _ in range(2 * max(score.shape[2:])):
        grown = F.max_pool2d(reach, 3, stride=1, padding=1) * score
        if torch.equal(grown, reach):
            break
        reach = grown
    soft = _blur(F.max_pool2d(reach, 3, stride=1, padding=1), 3)  # edge falls just onto the ground side
    return F.interpolate(soft, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def synthetic_night(rgb: np.ndarray, seed: int = 0, exposure: float = 0.13, stars: int = 250) -> np.ndarray:
    """Night version (uint8 HxWx3) of a daytime photo (uint8 HxWx3)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 HxWx3 image, got {rgb.dtype} {rgb.shape}")
    h, w, _ = rgb.shape
    gen = torch.Generator().manual_seed(int(seed))
    with torch.inference_mode():
        img = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1)[None].float() / 255.0
        lin = img ** 2.2
        sky = sky_mask(lin)
        lum = (lin * torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        # ground: darker, bluer, less saturated (Purkinje-like), in linear light
        ground = (lin * 0.5 + lum * 0.5) * torch.tensor([0.55, 0.72, 1.25]).view(1, 3, 1, 1) * exposure
        # small bright spots stay as warm lights, with bloom
        k = max(5, (max(h, w) // 40) | 1)
        near_sky = (_blur(sky, k) > 0.02).float()
        spots = ((lum - _blur(lum, k)) > 0.4).float() * (lum > 0.85).float() * (1 - near_sky)
        lights = spots * (lin * torch.tensor([1.0, 0.85, 0.6]).view(1, 3, 1, 1)) * 0.8
        bloom = _blur(lights, max(3, k // 2 | 1)) * 1.5
        # sky: dark gradient keeping a faint trace of the clouds, plus stars
        rows = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
        horizon = (sky.mean(3, keepdim=True) > 0.5).float().sum(2, keepdim=True).clamp_min(1.0)
        t = (rows / horizon).clamp(0, 1)
        night_sky = (torch.tensor([0.0004, 0.0008, 0.004]).view(1, 3, 1, 1)
                     + torch.tensor([0.004, 0.006, 0.02]).view(1, 3, 1, 1) * t ** 2 + lum * 0.02)
        n = int(stars * h * w / 512 ** 2)
        if n:
            ys = torch.randint(0, h, (n,), generator=gen)
            xs = torch.randint(0, w, (n,), generator=gen)
            b = torch.rand(n, generator=gen) ** 3 * 0.6 + 0.02
            star = torch.zeros(h * w).index_add_(0, ys * w + xs, b).view(1, 1, h, w)
            night_sky = night_sky + star * sky.clamp(0, 1) ** 4
        out = ground * (1 - sky) + night_sky * sky + lights + bloom
        out = out.clamp(0, 1) ** (1 / 2.2)
        out = out + torch.randn(out.shape, generator=gen) * (0.006 + 0.01 * (1 - out))  # sensor noise
        out = (out.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
    return out[0].permute(1, 2, 0).numpy()
