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


def _ssim_terms(a: torch.Tensor, b: torch.Tensor, peak: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Luminance and contrast-structure maps of SSIM (Wang et al. 2004: 11x11 Gaussian σ 1.5, K1 0.01,
    K2 0.03), per channel, valid region, in fp32 (also under autocast: the variances are differences of
    nearly equal blurred moments, which bf16/fp16 turn into noise or a zero/negative denominator)."""
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
        return (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1), (2 * sab + c2) / (saa + sbb + c2)


def ssim_map(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004), per channel, valid region, always in fp32."""
    lum, cs = _ssim_terms(a, b, peak)
    return lum * cs


def ssim(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0, crop: int = 0) -> float:
    """Mean SSIM over channels and pixels of [N,C,H,W] images in [0, peak]."""
    if crop:
        a, b = a[..., crop:-crop, crop:-crop], b[..., crop:-crop, crop:-crop]
    return ssim_map(a.double(), b.double(), peak).mean().item()


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli & Bovik 2003, finest scale first


def ms_ssim(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0, scales: int = 5) -> torch.Tensor:
    """Multi-scale SSIM (Wang et al. 2003) per image [N], differentiable, as pytorch-msssim computes it.

    Per channel: contrast-structure at scales 1..M-1 and full SSIM at scale M, each clipped at 0, raised to
    the scale's weight and multiplied; then averaged over channels.  Scales halve the image by 2x2 averaging
    (an odd side gets one padded row/column).  ``scales`` < 5 uses the first weights rescaled to sum to 1;
    the coarsest scale needs at least 11 px."""
    if not 1 <= scales <= len(MS_SSIM_WEIGHTS):
        raise ValueError(f"scales must be 1..{len(MS_SSIM_WEIGHTS)}")
    if _coarsest(min(a.shape[-2:]), scales) < 11:
        raise ValueError(f"MS-SSIM with {scales} scales needs images of at least {10 * 2 ** (scales - 1) + 1} px")
    w = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float32, device=a.device)
    w = w / w.sum()
    terms = []
    for s in range(scales):
        lum, cs = _ssim_terms(a, b, peak)
        if s == scales - 1:
            terms.append(torch.relu((lum * cs).mean(dim=(2, 3))))
        else:
            terms.append(torch.relu(cs.mean(dim=(2, 3))))
            pad = [d % 2 for d in a.shape[2:]]
            a, b = F.avg_pool2d(a, 2, padding=pad), F.avg_pool2d(b, 2, padding=pad)
    stacked = torch.stack(terms)  # [scales, N, C]
    return torch.prod(stacked ** w.view(-1, 1, 1), dim=0).mean(dim=1)


def _coarsest(side: int, scales: int) -> int:
    """Side of the coarsest MS-SSIM scale: 2x2 average pooling, odd sides padded by one."""
    for _ in range(scales - 1):
        side = (side + side % 2) // 2
    return side


def ms_ssim_loss(a: torch.Tensor, b: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """1 − MS-SSIM (batch mean) of images in [0, 1], with at most ``scales`` scales (fewer on small images)."""
    fit = 1
    while fit < scales and _coarsest(min(a.shape[-2:]), fit + 1) >= 11:
        fit += 1
    return 1 - ms_ssim(a, b, 1.0, fit).mean()
