"""Reconstruction losses for inversion, injectable and never downloaded.

``make_inversion_loss(G, ckpt)`` picks, in order: LPIPS-VGG16 (weights on disk, see ``lpips.py``),
the discriminator's features when the checkpoint holds a D, else a weight-free loss (pixel MSE +
multi-scale SSIM).  Every loss takes images in [-1, 1]; ``set_target`` precomputes the target's
features; ``.name`` says which loss is in use (inversion results report it).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.core.metrics import ms_ssim_loss
from ganeditor.pipelines.lpips import LPIPS, load_lpips

MAX_LOSS_RES = 256  # images above this are area-downsampled first (as the NVlabs projector does)


def _shrink(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=(MAX_LOSS_RES, MAX_LOSS_RES), mode="area") if x.shape[-1] > MAX_LOSS_RES else x


class InversionLoss(nn.Module):
    """Base: distance of a batch of images to a fixed target (both in [-1, 1])."""

    name = "loss"

    def set_target(self, target: torch.Tensor) -> None:
        assert target.ndim == 4 and target.shape[0] == 1, f"target {list(target.shape)}"
        self.target = target.detach()

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pair(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distance between two image batches (used by PTI's locality regulariser)."""
        raise NotImplementedError


class PixelSSIMLoss(InversionLoss):
    """Weight-free: pixel MSE + multi-scale SSIM loss."""

    name = "pixel+ms-ssim"

    def __init__(self, ssim_weight: float = 1.0):
        super().__init__()
        self.ssim_weight = ssim_weight

    def pair(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        mse = F.mse_loss(a, b)
        scales = 3 if min(a.shape[-2:]) >= 44 else 1
        return mse + self.ssim_weight * ms_ssim_loss((_shrink(a) + 1) / 2, (_shrink(b) + 1) / 2, scales)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.pair(img, self.target.expand_as(img))


class LPIPSLoss(InversionLoss):
    """LPIPS-VGG16 (+ optional pixel MSE)."""

    name = "lpips-vgg16"

    def __init__(self, lpips: LPIPS, mse_weight: float = 0.0):
        super().__init__()
        self.lpips, self.mse_weight = lpips, mse_weight

    def set_target(self, target: torch.Tensor) -> None:
        super().set_target(target)
        with torch.no_grad():
            self.target_taps = self.lpips.taps(_shrink(self.target))

    def pair(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.lpips(_shrink(a), _shrink(b)).mean() + self.mse_weight * F.mse_loss(a, b)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        taps = [t.expand(img.shape[0], -1, -1, -1) for t in self.target_taps]
        d = self.lpips.distance(self.lpips.taps(_shrink(img)), taps).mean()
        return d + self.mse_weight * F.mse_loss(img, self.target.expand_as(img))


class DiscriminatorFeatureLoss(InversionLoss):
    """Distance of the StyleGAN2 discriminator's block activations (unit-normalised) + pixel MSE."""

    name = "discriminator-features"

    def __init__(self, D: nn.Module, mse_weight: float = 1.0):
        super().__init__()
        self.D, self.mse_weight = D.eval().requires_grad_(False), mse_weight

    def taps(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Activations after each discriminator block, unit-normalised over channels."""
        x, out = None, []
        for res in self.D.block_resolutions:
            x, img = getattr(self.D, f"b{res}")(x, img)
            out.append(x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-8))
        return out

    def set_target(self, target: torch.Tensor) -> None:
        super().set_target(target)
        with torch.no_grad():
            self.target_taps = self.taps(self.target)

    def _dist(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        return sum((a - b).square().sum(dim=1).mean() for a, b in zip(fa, fb)) / len(fa)

    def pair(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._dist(self.taps(a), self.taps(b)) + self.mse_weight * F.mse_loss(a, b)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        taps = [t.expand(img.shape[0], -1, -1, -1) for t in self.target_taps]
        return self._dist(self.taps(img), taps) + self.mse_weight * F.mse_loss(img, self.target.expand_as(img))


def _usable_d(D: nn.Module | None, G: nn.Module) -> bool:
    return (
        D is not None
        and hasattr(D, "block_resolutions")
        and getattr(D, "img_resolution", None) == G.img_resolution
        and getattr(D, "c_dim", 0) == 0
    )


def make_inversion_loss(
    G: nn.Module,  # the generator being inverted
    ckpt=None,  # its Checkpoint (a D in ckpt.nets enables the discriminator loss), or None
    device: torch.device | str = "cpu",  # where the loss runs
    prefer: str = "auto",  # 'auto', 'lpips', 'discriminator' or 'pixel'
    vgg16: str | Path | None = None,  # a chosen VGG16 weights file (else $GANEDITOR_VGG16 / the torch hub cache)
) -> InversionLoss:
    """The best available reconstruction loss (LPIPS > discriminator features > pixel + MS-SSIM)."""
    D = ckpt.nets.get("D") if ckpt is not None else None
    if prefer in ("auto", "lpips"):
        lp = load_lpips(device, vgg16)
        if lp is not None:
            return LPIPSLoss(lp).to(device)
    if prefer in ("auto", "discriminator") and _usable_d(D, G):
        return DiscriminatorFeatureLoss(D).to(device)
    return PixelSSIMLoss().to(device)
