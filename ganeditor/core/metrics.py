"""Image quality metrics (PSNR, SSIM) on float tensors, conventions stated with every figure."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gaussian(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0, crop: int = 0) -> float:
    """PSNR in dB of [N,C,H,W] images with values in [0, peak], ``crop`` border pixels ignored."""
    if crop:
        a, b = a[..., crop:-crop, crop:-crop], b[..., crop:-crop, crop:-crop]
    mse = F.mse_loss(a.double(), b.double()).item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(peak**2 / mse)).item()


def ssim_map(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004: 11x11 Gaussian σ 1.5, K1 0.01, K2 0.03), per channel, valid region.

    Always computed in fp32, also under autocast: the variances are differences of nearly equal
    blurred moments, which bf16/fp16 turn into noise (or a zero/negative denominator: ±inf)."""
    c = a.shape[1]
    with torch.autocast(a.device.type, enabled=False):
        a, b = a.float(), b.float()
        g = _gaussian(device=a.device).float()
        wx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
        wy = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

        def blur(x):
            return F.conv2d(F.conv2d(x, wx, groups=c), wy, groups=c)

        c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
        mu_a, mu_b = blur(a), blur(b)
        saa = blur(a * a) - mu_a**2
        sbb = blur(b * b) - mu_b**2
        sab = blur(a * b) - mu_a * mu_b
        return ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))


def ssim(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0, crop: int = 0) -> float:
    """Mean SSIM over channels and pixels of [N,C,H,W] images in [0, peak]."""
    if crop:
        a, b = a[..., crop:-crop, crop:-crop], b[..., crop:-crop, crop:-crop]
    return ssim_map(a.double(), b.double(), peak).mean().item()


def ms_ssim_loss(a: torch.Tensor, b: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """1 − mean SSIM over a few scales; differentiable (images in [0, 1], at least 11·2^(scales−1) px)."""
    total = a.new_zeros(())
    for s in range(scales):
        if min(a.shape[-2:]) < 11:
            break
        total = total + (1 - ssim_map(a, b).mean())
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return total / scales
