"""Real-ESRGAN SRVGGNetCompact (realesr-general-x4v3, realesr-animevideov3): convs + activations in
``body`` (a ModuleList: even indices are convs, odd indices activations), a last conv to
``num_out_ch * upscale**2`` channels, PixelShuffle, plus the nearest-upsampled input."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs.image2image_api import ImageToImageNet
from ganeditor.archs.registry import register
from ganeditor.core.tiling_bands import Op
from ganeditor.core.tiling_sr import TrunkPlan

ACTS = ("prelu", "relu", "leakyrelu")


def _act(act_type: str, num_feat: int) -> nn.Module:
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    if act_type == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)
    raise ValueError(f"unknown activation {act_type!r} (expected one of {', '.join(ACTS)})")


@register("srvgg")
class SRVGGNetCompact(nn.Module, ImageToImageNet):
    """Compact VGG-style SR network: all convs at input resolution, upsampling in the last layer."""

    input_mean = 0.0
    input_std = 1.0

    def __init__(
        self,
        num_in_ch: int = 3,  # image channels in
        num_out_ch: int = 3,  # image channels out
        num_feat: int = 64,  # features of every body conv
        num_conv: int = 16,  # body convs after the first (general-x4v3: 32, animevideov3: 16)
        upscale: int = 4,  # PixelShuffle factor
        act_type: str = "prelu",  # 'prelu' (per-channel weights) | 'relu' | 'leakyrelu' (slope 0.1)
    ):
        super().__init__()
        self.num_in_ch, self.num_out_ch, self.num_feat = num_in_ch, num_out_ch, num_feat
        self.num_conv, self.upscale, self.act_type = num_conv, upscale, act_type
        self.scale = upscale
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _act(act_type, num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), _act(act_type, num_feat)]
        layers += [nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1)]
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in [0, 1] -> [N, C, H*upscale, W*upscale] (unclamped)."""
        assert x.ndim == 4 and x.shape[1] == self.num_in_ch, f"expected [N, {self.num_in_ch}, H, W], got {list(x.shape)}"
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")

    def band_plan(self) -> TrunkPlan:
        """Head: the first conv + activation; body: the other convs + activations; tail: the last conv,
        pixel shuffle, + the nearest-upsampled input."""
        ops = [Op("conv", m, 1) if isinstance(m, nn.Conv2d) else Op("point", m) for m in self.body]
        tail = [ops[-1], Op("shuffle", pad=self.upscale), Op("skip", pad=self.upscale, pad_mode="nearest")]
        return TrunkPlan(ops[:2], ops[2:-1], tail, self.num_feat)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {
            "summary": f"SRVGGNetCompact x{self.upscale}, {self.num_conv} convs, {self.num_feat} features, {self.act_type}",
            "arch": "SRVGGNetCompact",
            "scale": self.upscale,
            "num_feat": self.num_feat,
            "blocks": self.num_conv,
            "activation": self.act_type,
            "in_channels": self.num_in_ch,
            "out_channels": self.num_out_ch,
            "io": "RGB [0, 1] in and out",
        }
