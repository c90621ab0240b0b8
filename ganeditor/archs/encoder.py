"""Inversion encoder: a CNN from an image to W+ offsets around the generator's mean latent.

As e4e/pSp: a downsampling residual backbone; coarse ws (the first three) are predicted from the
deepest features, middle ws (3..6) from the next level, fine ws from the shallowest level kept; the
output is ``w_avg + offsets`` with the heads initialised at zero, so an untrained encoder returns
the mean latent.  ``w_avg`` is a buffer copied from the generator when training starts.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs.registry import register

GROUP_CUTS = (3, 7)  # ws [0,3) coarse, [3,7) medium, [7,num_ws) fine (e4e/pSp for 18 ws)


class ResDown(nn.Module):
    """Residual block halving the resolution: (conv3x3, lrelu, conv3x3, lrelu, avgpool) + pooled 1x1 skip."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv0(x), 0.2)
        y = F.avg_pool2d(F.leaky_relu(self.conv1(y), 0.2), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) * np.sqrt(0.5)


@register("latent-encoder")
class LatentEncoder(nn.Module):
    def __init__(
        self,
        img_resolution: int,  # input resolution (power of two >= 8)
        num_ws: int,  # number of ws predicted
        w_dim: int,  # W dimensionality
        img_channels: int = 3,  # input channels
        channel_base: int = 4096,  # channels at resolution r = min(channel_base // r, channel_max)
        channel_max: int = 256,  # maximum channels
        channel_min: int = 16,  # minimum channels
    ):
        assert img_resolution >= 8 and img_resolution & (img_resolution - 1) == 0, "resolution must be 2^k >= 8"
        super().__init__()
        self.img_resolution = int(img_resolution)
        self.num_ws = int(num_ws)
        self.w_dim = int(w_dim)
        self.img_channels = int(img_channels)

        def ch(r: int) -> int:
            return max(channel_min, min(channel_base // r, channel_max))

        self.resolutions = [2**i for i in range(int(np.log2(img_resolution)), 1, -1)]  # R .. 4
        self.channels = {r: ch(r) for r in self.resolutions}
        self.stem = nn.Conv2d(img_channels, ch(img_resolution), 3, padding=1)
        for r in self.resolutions[:-1]:
            setattr(self, f"down{r // 2}", ResDown(ch(r), ch(r // 2)))
        cuts = [0] + [min(c, num_ws) for c in GROUP_CUTS] + [num_ws]
        self.groups = [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        levels = [4, 8, 16][: len(self.groups)]
        levels = [min(lv, img_resolution // 2) for lv in levels]
        self.group_levels = levels
        for g, ((a, b), lv) in enumerate(zip(self.groups, levels)):
            head = nn.Linear(2 * ch(lv), (b - a) * w_dim)
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
            setattr(self, f"head{g}", head)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Image [N, C, R, R] in [-1, 1] -> ws [N, num_ws, w_dim]."""
        assert img.ndim == 4 and img.shape[1:] == (self.img_channels, self.img_resolution, self.img_resolution), (
            f"img {list(img.shape)}"
        )
        x = F.leaky_relu(self.stem(img), 0.2)
        feats = {self.img_resolution: x}
        for r in self.resolutions[:-1]:
            x = getattr(self, f"down{r // 2}")(x)
            feats[r // 2] = x
        parts = []
        for g, ((a, b), lv) in enumerate(zip(self.groups, self.group_levels)):
            f = feats[lv]
            pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)  # [N, 2C]
            parts.append(getattr(self, f"head{g}")(pooled).view(-1, b - a, self.w_dim))
        return self.w_avg.view(1, 1, -1) + torch.cat(parts, dim=1)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {
            "architecture": "latent encoder (image -> W+ offsets from w_avg)",
            "resolution": self.img_resolution,
            "img_channels": self.img_channels,
            "num_ws": self.num_ws,
            "w_dim": self.w_dim,
            "channels": {str(r): c for r, c in self.channels.items()},
            "ws_groups": [list(g) for g in self.groups],
            "group_feature_resolutions": self.group_levels,
            "parameters": sum(p.numel() for p in self.parameters()),
        }
