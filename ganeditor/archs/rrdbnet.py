"""ESRGAN / Real-ESRGAN RRDBNet with BasicSR key names (``conv_first``, ``body.{i}.rdb{1,2,3}.conv{1..5}``,
``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``).

Scales 2 and 1 use BasicSR's trick: ``pixel_unshuffle`` by 2 or 4 before ``conv_first`` and the same
two x2 upsamplings as x4.  ``num_upconv`` other than 2 covers old ESRGAN-style x2 (one upsampling)
and x8 (three) models.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs.image2image_api import ImageToImageNet
from ganeditor.archs.registry import register
from ganeditor.core.tiling_bands import Op
from ganeditor.core.tiling_sr import TrunkPlan


Edges = tuple[bool, bool, bool, bool]  # (top, bottom, left, right): which sides of a window are the image's own


def _crop(t: torch.Tensor, cut: tuple[int, int, int, int], n: int = 1) -> torch.Tensor:
    """``t`` without ``n`` rows/columns on each cut side (``cut``: 1 per cut side, 0 per true edge; a view)."""
    return t[:, :, n * cut[0] : t.shape[2] - n * cut[1], n * cut[2] : t.shape[3] - n * cut[3]]


def _conv_valid(conv: nn.Conv2d, x: torch.Tensor, edges: Edges) -> torch.Tensor:
    """A 3x3 conv (zero padding 1) on a window: zeros only at the image's true edges; next to a cut side the
    output row/column that would need the missing input is not kept (a conv pads both sides of a dimension
    or neither, so a dimension with one true edge is padded on both and the invented side dropped)."""
    top, bottom, left, right = edges
    y = F.conv2d(x, conv.weight, conv.bias, 1, (int(top or bottom), int(left or right)))
    return y[:, :, int(bottom and not top) : y.shape[2] - int(top and not bottom),
             int(right and not left) : y.shape[3] - int(left and not right)]


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; output conv5 * 0.2 + x."""

    def __init__(self, num_feat: int, num_grow_ch: int):
        super().__init__()
        for j in range(1, 6):
            cin = num_feat + (j - 1) * num_grow_ch
            cout = num_feat if j == 5 else num_grow_ch
            setattr(self, f"conv{j}", nn.Conv2d(cin, cout, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for j in range(1, 5):
            conv = getattr(self, f"conv{j}")
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2, inplace=True))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x

    def forward_valid(self, x: torch.Tensor, edges: Edges) -> torch.Tensor:
        """``forward`` on a window in valid mode: each conv loses a row/column on each cut side (``edges``
        False), so the output is 5 smaller there and every value equals the whole image's."""
        cut = tuple(int(not e) for e in edges)
        feats = [x]
        for j in range(1, 6):
            k = len(feats) - 1  # feats[i] lost i on each cut side: crop all to the newest
            inp = torch.cat([_crop(f, cut, k - i) for i, f in enumerate(feats)], 1)
            y = _conv_valid(getattr(self, f"conv{j}"), inp, edges)
            if j < 5:
                feats.append(F.leaky_relu(y, 0.2, inplace=True))
        return y * 0.2 + _crop(x, cut, 5)


class RRDB(nn.Module):
    """Residual in residual dense block: three RDBs, output * 0.2 + x."""

    def __init__(self, num_feat: int, num_grow_ch: int):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x

    def forward_valid(self, x: torch.Tensor, edges: Edges) -> torch.Tensor:
        """``forward`` on a window in valid mode (15 smaller on each cut side): the banded engine computes
        only what it keeps (a band's or column chunk's 15-pixel context costs ~half of a padded forward)."""
        y = x
        for rdb in (self.rdb1, self.rdb2, self.rdb3):
            y = rdb.forward_valid(y, edges)
        return y * 0.2 + _crop(x, tuple(int(not e) for e in edges), 15)


@register("rrdbnet")
class RRDBNet(nn.Module, ImageToImageNet):
    """ESRGAN generator: conv_first, RRDB trunk + conv_body (residual), nearest x2 upsamplings each
    followed by conv + lrelu(0.2), conv_hr + lrelu, conv_last.  No clamp inside."""

    input_mean = 0.0
    input_std = 1.0

    def __init__(
        self,
        num_in_ch: int = 3,  # image channels in
        num_out_ch: int = 3,  # image channels out
        scale: int = 4,  # upscaling factor: 4, 2, 1 (BasicSR) or 2**num_upconv
        num_feat: int = 64,  # trunk features
        num_block: int = 23,  # RRDB blocks in the trunk
        num_grow_ch: int = 32,  # growth channels inside each RDB
        num_upconv: int = 2,  # x2 nearest upsamplings (2 in every BasicSR model)
    ):
        super().__init__()
        assert num_upconv >= 0 and scale >= 1
        unshuffle, rem = divmod(2**num_upconv, scale)
        if rem or unshuffle not in (1, 2, 4):
            raise ValueError(f"scale {scale} is not reachable with {num_upconv} x2 upsamplings")
        self.num_in_ch, self.num_out_ch, self.scale = num_in_ch, num_out_ch, scale
        self.num_feat, self.num_block, self.num_grow_ch, self.num_upconv = num_feat, num_block, num_grow_ch, num_upconv
        self.unshuffle = unshuffle
        self.size_multiple = unshuffle  # input sides must divide by the pixel-unshuffle factor
        self.source_layout: str | None = None  # set by loaders: which key names the file used
        self.conv_first = nn.Conv2d(num_in_ch * unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        for i in range(1, num_upconv + 1):
            setattr(self, f"conv_up{i}", nn.Conv2d(num_feat, num_feat, 3, 1, 1))
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in [0, 1] -> [N, C, H*scale, W*scale] (unclamped)."""
        assert x.ndim == 4 and x.shape[1] == self.num_in_ch, f"expected [N, {self.num_in_ch}, H, W], got {list(x.shape)}"
        if self.unshuffle > 1:
            assert x.shape[2] % self.unshuffle == 0 and x.shape[3] % self.unshuffle == 0, (
                f"x{self.scale} RRDBNet needs sides divisible by {self.unshuffle}, got {list(x.shape[2:])}"
            )
            x = F.pixel_unshuffle(x, self.unshuffle)  # [N, C*u*u, H/u, W/u]
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for i in range(1, self.num_upconv + 1):
            up = getattr(self, f"conv_up{i}")
            feat = F.leaky_relu(up(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2, inplace=True)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2, inplace=True))

    def band_plan(self) -> TrunkPlan:
        """Head [unshuffle] + conv_first; 23 RRDBs (15 stride-1 3x3 convs each: 15 rows of context); tail
        conv_body + feat, nearest x2 + conv + lrelu per upsampling, conv_hr + lrelu, conv_last."""
        conv = lambda m: Op("conv", m, 1)  # noqa: E731 - every conv here is 3x3, zero padding 1
        head = ([Op("unshuffle", pad=self.unshuffle)] if self.unshuffle > 1 else []) + [conv(self.conv_first)]
        tail = [conv(self.conv_body), Op("add")]  # the add without a store: + the head output (feat)
        for i in range(1, self.num_upconv + 1):
            tail += [Op("up", pad=2), conv(getattr(self, f"conv_up{i}")), Op("point", nn.LeakyReLU(0.2))]
        tail += [conv(self.conv_hr), Op("point", nn.LeakyReLU(0.2)), conv(self.conv_last)]
        return TrunkPlan(head, [Op("opaque", b, pad=15) for b in self.body], tail, self.num_feat)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        summary = f"RRDBNet x{self.scale}, {self.num_block} blocks, {self.num_feat} features, {self.num_grow_ch} growth"
        if self.source_layout:
            summary += f" ({self.source_layout})"
        return {
            "summary": summary,
            "arch": "RRDBNet",
            "scale": self.scale,
            "num_feat": self.num_feat,
            "blocks": self.num_block,
            "growth": self.num_grow_ch,
            "in_channels": self.num_in_ch,
            "out_channels": self.num_out_ch,
            "pixel_unshuffle": self.unshuffle,
            "io": "RGB [0, 1] in and out",
        }
