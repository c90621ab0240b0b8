"""Discriminators used to train the SR generators: BasicSR's VGG-style discriminator (SRGAN/ESRGAN,
128 or 256 px input) and Real-ESRGAN's U-Net discriminator with spectral normalisation.

Spectral norm uses ``torch.nn.utils.spectral_norm``, so the state dict holds upstream's
``convN.weight_orig``, ``convN.weight_u`` and ``convN.weight_v``.  In eval mode the stored u, v
give sigma; in train mode each forward does one power iteration (as upstream).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

from ganeditor.archs.registry import register


@register("vgg-discriminator")
class VGGStyleDiscriminator(nn.Module):
    """Ten convs (3x3 stride 1 / 4x4 stride 2 pairs, BN after all but the first), then two linears."""

    io_convention = "unit"
    input_mean = 0.0
    input_std = 1.0
    scale = 1

    def __init__(
        self,
        num_in_ch: int = 3,  # image channels
        num_feat: int = 64,  # features of the first conv; doubled per stage up to 8x
        input_size: int = 128,  # 128 or 256: the only input size accepted
    ):
        super().__init__()
        if input_size not in (128, 256):
            raise ValueError(f"input size must be 128 or 256, not {input_size}")
        self.num_in_ch, self.num_feat, self.input_size = num_in_ch, num_feat, input_size
        self.stages = 5 if input_size == 128 else 6
        mults = [1, 2, 4, 8, 8, 8]
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(num_feat, affine=True)
        for s in range(1, self.stages):
            cin, cout = num_feat * mults[s - 1], num_feat * mults[s]
            setattr(self, f"conv{s}_0", nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
            setattr(self, f"bn{s}_0", nn.BatchNorm2d(cout, affine=True))
            setattr(self, f"conv{s}_1", nn.Conv2d(cout, cout, 4, 2, 1, bias=False))
            setattr(self, f"bn{s}_1", nn.BatchNorm2d(cout, affine=True))
        self.linear1 = nn.Linear(num_feat * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, input_size, input_size] -> [N, 1] logits."""
        assert x.ndim == 4 and x.shape[1] == self.num_in_ch and x.shape[2] == x.shape[3] == self.input_size, (
            f"expected [N, {self.num_in_ch}, {self.input_size}, {self.input_size}], got {list(x.shape)}"
        )
        feat = F.leaky_relu(self.conv0_0(x), 0.2)
        feat = F.leaky_relu(self.bn0_1(self.conv0_1(feat)), 0.2)
        for s in range(1, self.stages):
            for j in (0, 1):
                feat = F.leaky_relu(getattr(self, f"bn{s}_{j}")(getattr(self, f"conv{s}_{j}")(feat)), 0.2)
        feat = feat.reshape(feat.shape[0], -1)  # [N, num_feat*8*4*4]
        return self.linear2(F.leaky_relu(self.linear1(feat), 0.2))

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {
            "summary": f"VGG-style discriminator, {self.input_size} px input, {self.num_feat} features",
            "arch": "VGGStyleDiscriminator",
            "num_feat": self.num_feat,
            "blocks": self.stages,
            "input_size": self.input_size,
            "in_channels": self.num_in_ch,
            "out_channels": 1,
        }


@register("unet-discriminator-sn")
class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN U-Net discriminator: 3 spectral-normed stride-2 downsamplings, 3 bilinear
    upsamplings with skip connections, two extra convs; a per-pixel logit map."""

    io_convention = "unit"
    input_mean = 0.0
    input_std = 1.0
    scale = 1

    def __init__(
        self,
        num_in_ch: int = 3,  # image channels
        num_feat: int = 64,  # features of the first conv
        skip_connection: bool = True,  # add encoder features to the decoder
    ):
        super().__init__()
        self.num_in_ch, self.num_feat, self.skip_connection = num_in_ch, num_feat, skip_connection
        nf = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, nf, 3, 1, 1)
        self.conv1 = spectral_norm(nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(nf * 2, nf * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(nf * 4, nf * 8, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(nf * 8, nf * 4, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(nf * 4, nf * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(nf * 2, nf, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] (H, W divisible by 8) -> [N, 1, H, W] logits."""
        assert x.ndim == 4 and x.shape[1] == self.num_in_ch, f"expected [N, {self.num_in_ch}, H, W], got {list(x.shape)}"
        assert x.shape[2] % 8 == 0 and x.shape[3] % 8 == 0, f"sides must divide by 8, got {list(x.shape[2:])}"

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, 0.2)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {
            "summary": f"U-Net discriminator with spectral norm, {self.num_feat} features",
            "arch": "UNetDiscriminatorSN",
            "num_feat": self.num_feat,
            "blocks": 10,
            "skip_connection": self.skip_connection,
            "in_channels": self.num_in_ch,
            "out_channels": 1,
        }
