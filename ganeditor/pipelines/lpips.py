"""LPIPS (VGG16 variant) built only from files already on this machine; never downloads.

VGG16 ImageNet weights are looked for at ``$GANEDITOR_VGG16`` then in the torch hub cache
(torchvision's file name); the five linear heads come from the PyPI ``lpips`` package's
``weights/v0.1/vgg.pth`` when that package is installed (or ``$GANEDITOR_LPIPS_HEADS``).
Facts (from the lpips package): inputs in [-1, 1] are shifted/scaled per channel, features are
taken after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (torchvision ``features`` indices 3, 8,
15, 22, 29), unit-normalised over channels (eps 1e-10), squared differences weighted by a 1x1
conv without bias, averaged spatially and summed over the layers.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
import torch.nn as nn

from ganeditor.formats.torch_load import torch_load
from ganeditor.pipelines.losses import find_vgg_weights

LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
VGG16_TAPS = (3, 8, 15, 22, 29)  # relu1_2 .. relu5_3
VGG16_CHANNELS = (64, 128, 256, 512, 512)


def find_lpips_heads() -> Path | None:
    """Path of the LPIPS VGG linear heads (``lpips`` package file or ``$GANEDITOR_LPIPS_HEADS``)."""
    env = os.environ.get("GANEDITOR_LPIPS_HEADS")
    if env and Path(env).is_file():
        return Path(env)
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / "vgg.pth"
    return p if p.is_file() else None


def lpips_unavailable_reason(vgg16: str | Path | None = None) -> str | None:
    """None when LPIPS-VGG16 can be built here, else why not (one line); ``vgg16``: a chosen weights file."""
    if find_vgg_weights("vgg16", vgg16) is None:
        return "no VGG16 weights (set $GANEDITOR_VGG16 or put vgg16-397923af.pth in the torch hub cache)"
    if find_lpips_heads() is None:
        return "no LPIPS linear heads (install the PyPI package 'lpips')"
    return None


def vgg16_features() -> nn.Sequential:
    """torchvision's VGG16 ``features`` up to relu5_3 (random weights; its state-dict keys load)."""
    import torchvision  # deferred: torchvision's model zoo is only needed when LPIPS is built

    return torchvision.models.vgg16(weights=None).features[: max(VGG16_TAPS) + 1]


class LPIPS(nn.Module):
    """LPIPS distance between images in [-1, 1]: returns [N] (no spatial map)."""

    def __init__(
        self,
        vgg_state: dict[str, torch.Tensor] | None = None,  # torchvision vgg16 state dict (features.*), None = random
        heads_state: dict[str, torch.Tensor] | None = None,  # lpips 'linK.model.1.weight' tensors, None = ones
    ):
        super().__init__()
        self.features = vgg16_features().eval().requires_grad_(False)
        if vgg_state is not None:
            feats = {k[len("features."):]: v for k, v in vgg_state.items() if k.startswith("features.")}
            self.features.load_state_dict(feats)
        for i, c in enumerate(VGG16_CHANNELS):
            w = heads_state[f"lin{i}.model.1.weight"] if heads_state is not None else torch.ones(1, c, 1, 1)
            assert w.shape == (1, c, 1, 1), f"lin{i}: {list(w.shape)}"
            self.register_buffer(f"lin{i}", w.float().clone())
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised VGG features of images in [-1, 1] at the five LPIPS layers."""
        assert x.ndim == 4 and x.shape[1] == 3, f"x {list(x.shape)}"
        x = (x - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG16_TAPS:
                out.append(x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def distance(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS from precomputed taps: [N]."""
        total = 0
        for i, (a, b) in enumerate(zip(fa, fb)):
            d = ((a - b).square() * getattr(self, f"lin{i}")).sum(dim=1)
            total = total + d.mean(dim=(1, 2))
        return total

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.distance(self.taps(a), self.taps(b))


def load_lpips(device: torch.device | str = "cpu", vgg16: str | Path | None = None) -> LPIPS | None:
    """LPIPS-VGG16 from files on disk, or None when weights are missing (see ``lpips_unavailable_reason``);
    ``vgg16``: a chosen VGG16 weights file, tried before the usual places."""
    if lpips_unavailable_reason(vgg16) is not None:
        return None
    vgg = torch_load(Path(find_vgg_weights("vgg16", vgg16)))
    heads = torch_load(Path(find_lpips_heads()))
    return LPIPS(vgg, heads).to(device)
