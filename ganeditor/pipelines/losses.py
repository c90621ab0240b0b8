"""Perceptual losses that never download: VGG features when weights are on disk, else a stated fallback.

VGG weights are looked for where the ecosystem keeps them: ``$GANEDITOR_VGG16``/``$GANEDITOR_VGG19``
(a file path), then the torch hub cache (``torch.hub.get_dir()/checkpoints``, torchvision's file
names).  Without them the loss is a weight-free substitute (pixel L1 + multi-scale SSIM + image
gradients), and ``.name`` says which one is in use.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.core.metrics import ms_ssim_loss
from ganeditor.formats.torch_load import torch_load

TORCHVISION_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def find_vgg_weights(name: str = "vgg19", chosen: str | Path | None = None) -> Path | None:
    """The path of ImageNet VGG weights if present on this machine, else None (``chosen``: a file the
    user picked, e.g. in the window's Preferences, tried first)."""
    if chosen and Path(chosen).is_file():
        return Path(chosen)
    env = os.environ.get(f"GANEDITOR_{name.upper()}")
    if env and Path(env).is_file():
        return Path(env)
    p = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILES[name]
    return p if p.is_file() else None


class VGGFeatures(nn.Module):
    """Frozen VGG feature maps at chosen layers (torchvision layout), inputs RGB in [0, 1]."""

    def __init__(self, weights: Path, name: str = "vgg19", layers: tuple[int, ...] = (3, 8, 17, 26, 35)):
        super().__init__()
        import torchvision  # deferred: importing torchvision takes seconds

        net = getattr(torchvision.models, name)(weights=None)
        net.load_state_dict(torch_load(Path(weights)))
        self.body = net.features[: max(layers) + 1].eval().requires_grad_(False)
        self.layers = set(layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i in self.layers:
                out.append(x)
        return out


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


class PerceptualLoss(nn.Module):
    """Distance between images in [0, 1]: VGG feature L1 if weights exist, else SSIM + gradients."""

    def __init__(self, vgg: str = "vgg19"):
        super().__init__()
        weights = find_vgg_weights(vgg)
        self.vgg = VGGFeatures(weights, vgg) if weights else None
        self.name = f"{vgg} features ({weights})" if weights else "weight-free substitute (multi-scale SSIM + gradient L1)"

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.vgg is not None:
            return sum(F.l1_loss(x, y) for x, y in zip(self.vgg(a), self.vgg(b)))
        (ax, ay), (bx, by) = _gradients(a), _gradients(b)
        return ms_ssim_loss(a, b) + F.l1_loss(ax, bx) + F.l1_loss(ay, by)
