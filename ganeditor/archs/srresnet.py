"""BasicSR MSRResNet (modified SRResNet, the SRGAN generator without batch norm): ``conv_first``,
``body.{i}.conv{1,2}``, ``upconv1`` (``upconv2`` for x4) with PixelShuffle, ``conv_hr``,
``conv_last``, plus the bilinear-upsampled input."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs.image2image_api import ImageToImageNet
from ganeditor.archs.registry import register
from ganeditor.core.tiling_bands import Op
from ganeditor.core.tiling_sr import TrunkPlan


class ResidualBlockNoBN(nn.Module):
    """x + conv2(relu(conv1(x)))."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))


@register("msrresnet")
class MSRResNet(nn.Module, ImageToImageNet):
    """SRResNet without BN; lrelu 0.1; x2/x3 use one PixelShuffle step, x4 two x2 steps."""

    input_mean = 0.0
    input_std = 1.0

    def __init__(
        self,
        num_in_ch: int = 3,  # image channels in
        num_out_ch: int = 3,  # image channels out
        num_feat: int = 64,  # trunk features
        num_block: int = 16,  # residual blocks
        upscale: int = 4,  # 2, 3 or 4
    ):
        super().__init__()
        if upscale not in (2, 3, 4):
            raise ValueError(f"MSRResNet supports x2, x3 and x4, not x{upscale}")
        self.num_in_ch, self.num_out_ch, self.num_feat = num_in_ch, num_out_ch, num_feat
        self.num_block, self.upscale, self.scale = num_block, upscale, upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(num_feat) for _ in range(num_block)])
        if upscale == 4:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        else:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * upscale * upscale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(upscale)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in [0, 1] -> [N, C, H*upscale, W*upscale] (unclamped)."""
        assert x.ndim == 4 and x.shape[1] == self.num_in_ch, f"expected [N, {self.num_in_ch}, H, W], got {list(x.shape)}"
        feat = F.leaky_relu(self.conv_first(x), 0.1, inplace=True)
        out = self.body(feat)
        out = F.leaky_relu(self.pixel_shuffle(self.upconv1(out)), 0.1, inplace=True)
        if self.upscale == 4:
            out = F.leaky_relu(self.pixel_shuffle(self.upconv2(out)), 0.1, inplace=True)
        out = self.conv_last(F.leaky_relu(self.conv_hr(out), 0.1, inplace=True))
        return out + F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)

    def band_plan(self) -> TrunkPlan:
        """Head conv_first + lrelu; residual blocks; tail upconv(s) + shuffle + lrelu, conv_hr + lrelu,
        conv_last, + the bilinear-upsampled input."""
        conv, lrelu = (lambda m: Op("conv", m, 1)), (lambda: Op("point", nn.LeakyReLU(0.1)))  # noqa: E731
        body = [Op("block", b, inner=[conv(b.conv1), Op("point", nn.ReLU()), conv(b.conv2)]) for b in self.body]
        ups = [(self.upconv1, 2), (self.upconv2, 2)] if self.upscale == 4 else [(self.upconv1, self.upscale)]
        tail = [op for m, s in ups for op in (conv(m), Op("shuffle", pad=s), lrelu())]
        tail += [conv(self.conv_hr), lrelu(), conv(self.conv_last), Op("skip", pad=self.upscale, pad_mode="bilinear")]
        return TrunkPlan([conv(self.conv_first), lrelu()], body, tail, self.num_feat)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {
            "summary": f"MSRResNet (SRResNet) x{self.upscale}, {self.num_block} blocks, {self.num_feat} features",
            "arch": "MSRResNet",
            "scale": self.upscale,
            "num_feat": self.num_feat,
            "blocks": self.num_block,
            "in_channels": self.num_in_ch,
            "out_channels": self.num_out_ch,
            "io": "RGB [0, 1] in and out",
        }
