"""CycleGAN networks (junyanz pytorch-CycleGAN-and-pix2pix): ResNet generator and PatchGAN discriminator.

Attribute names equal the upstream checkpoint keys (``model.1.weight``, ``model.10.conv_block.1.weight``,
...), so a ``latest_net_G_A.pth`` loads with ``strict=True``.  ``ResnetGenerator.model`` is an
``nn.Sequential`` laid out exactly as upstream, and each ``ResnetBlock.conv_block`` too.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ganeditor.archs.image2image_api import ImageToImageNet
from ganeditor.archs.registry import register

NORMS = ("instance", "batch", "none")
UPSAMPLES = ("deconv", "resize")
PADDINGS = ("reflect", "replicate", "zero")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The normalisation layer upstream's ``get_norm_layer(norm)`` builds for ``channels``."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r} (expected one of {', '.join(NORMS)})")


def _pad_layer(padding_type: str) -> tuple[list[nn.Module], int]:
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    if padding_type == "zero":
        return [], 1
    raise ValueError(f"unknown padding {padding_type!r} (expected one of {', '.join(PADDINGS)})")


class ResnetBlock(nn.Module):
    """x + conv_block(x) with conv_block = [pad, conv3, norm, relu, (dropout), pad, conv3, norm]."""

    def __init__(self, dim: int, padding_type: str, norm: str, use_dropout: bool, use_bias: bool):
        super().__init__()
        layers: list[nn.Module] = []
        pads, p = _pad_layer(padding_type)
        layers += pads + [nn.Conv2d(dim, dim, 3, padding=p, bias=use_bias), norm_layer(norm, dim), nn.ReLU(True)]
        if use_dropout:
            layers += [nn.Dropout(0.5)]
        pads, p = _pad_layer(padding_type)
        layers += pads + [nn.Conv2d(dim, dim, 3, padding=p, bias=use_bias), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


@register("cyclegan-resnet-generator")
class ResnetGenerator(nn.Module, ImageToImageNet):
    """junyanz ResNet generator: c7s1-ngf, two stride-2 downsamplings, n_blocks ResnetBlocks, two
    transposed-conv (or resize-conv) upsamplings, c7s1-output_nc, tanh."""

    io_convention = "tanh"  # input (rgb01 - 0.5) / 0.5, output in [-1, 1]
    input_mean = 0.5  # per channel, as upstream's Normalize((0.5,)*3, (0.5,)*3)
    input_std = 0.5
    size_multiple = 4  # upstream '--preprocess none' makes sizes a multiple of 4

    def __init__(
        self,
        input_nc: int = 3,  # channels of the input image
        output_nc: int = 3,  # channels of the output image
        ngf: int = 64,  # filters of the first conv; 2*ngf, 4*ngf after the downsamplings
        norm: str = "instance",  # 'instance' (no affine, no running stats) | 'batch' | 'none'
        use_dropout: bool = False,  # Dropout(0.5) inside the blocks (training only; shifts indices)
        n_blocks: int = 9,  # ResnetBlocks: 9 ('resnet_9blocks') or 6 ('resnet_6blocks')
        padding_type: str = "reflect",  # padding inside the blocks: 'reflect' | 'replicate' | 'zero'
        upsample: str = "deconv",  # 'deconv': transposed convs (junyanz, loads their checkpoints) | 'resize':
        # nearest x2 then reflection-padded 3x3 conv (no checkerboard, Odena et al. 2016; our own recipe)
    ):
        super().__init__()
        assert n_blocks >= 0
        norm_layer(norm, 1)  # validates the name
        self.input_nc, self.output_nc, self.ngf = input_nc, output_nc, ngf
        self.norm, self.use_dropout, self.n_blocks, self.padding_type = norm, use_dropout, n_blocks, padding_type
        if upsample not in UPSAMPLES:
            raise ValueError(f"unknown upsample {upsample!r} (expected one of {', '.join(UPSAMPLES)})")
        self.upsample = upsample
        use_bias = norm == "instance"  # upstream: convs have biases only with InstanceNorm
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, 7, padding=0, bias=use_bias),
            norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(2):  # downsampling
            c = ngf * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=use_bias), norm_layer(norm, 2 * c), nn.ReLU(True)]
        for _ in range(n_blocks):
            layers += [ResnetBlock(ngf * 4, padding_type, norm, use_dropout, use_bias)]
        for i in range(2):  # upsampling
            c = ngf * 2 ** (2 - i)
            if upsample == "resize":
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                           nn.Conv2d(c, c // 2, 3, bias=use_bias)]
            else:
                layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias)]
            layers += [norm_layer(norm, c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    @property
    def needs_global_stats(self) -> bool:
        """True when the output depends on whole-image statistics (instance norm): tiles need care."""
        return self.norm == "instance"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, input_nc, H, W] normalised to [-1, 1] -> [N, output_nc, H, W] in [-1, 1]."""
        assert x.ndim == 4 and x.shape[1] == self.input_nc, f"expected [N, {self.input_nc}, H, W], got {list(x.shape)}"
        return self.model(x)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {
            "summary": f"CycleGAN ResNet generator, {self.n_blocks} blocks, ngf {self.ngf}, {self.norm} norm",
            "arch": "ResnetGenerator",
            "scale": self.scale,
            "num_feat": self.ngf,
            "blocks": self.n_blocks,
            "in_channels": self.input_nc,
            "out_channels": self.output_nc,
            "norm": self.norm,
            "padding": self.padding_type,
            "upsample": {"deconv": "transposed convolution", "resize": "nearest x2 + 3x3 convolution"}[self.upsample],
            "io": "input normalised with mean 0.5 / std 0.5, output tanh in [-1, 1]",
            "needs_global_stats": self.needs_global_stats,
        }


@register("patchgan-discriminator")
class NLayerDiscriminator(nn.Module):
    """junyanz PatchGAN discriminator ('basic' = 3 layers: 70x70 receptive field); 1-channel logit map."""

    io_convention = "tanh"
    input_mean = 0.5
    input_std = 0.5
    scale = 1

    def __init__(
        self,
        input_nc: int = 3,  # channels of the judged image
        ndf: int = 64,  # filters of the first conv
        n_layers: int = 3,  # stride-2 convs after the first ('basic' = 3)
        norm: str = "batch",  # 'batch' (upstream default) | 'instance' (CycleGAN training) | 'none'
    ):
        super().__init__()
        assert n_layers >= 1
        norm_layer(norm, 1)
        self.input_nc, self.ndf, self.n_layers, self.norm = input_nc, ndf, n_layers, norm
        use_bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=use_bias),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=use_bias),
            norm_layer(norm, ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)

    @property
    def needs_global_stats(self) -> bool:
        """True with instance norm."""
        return self.norm == "instance"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, input_nc, H, W] in [-1, 1] -> [N, 1, h, w] patch logits."""
        assert x.ndim == 4 and x.shape[1] == self.input_nc, f"expected [N, {self.input_nc}, H, W], got {list(x.shape)}"
        return self.model(x)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {
            "summary": f"PatchGAN discriminator, {self.n_layers} layers, ndf {self.ndf}, {self.norm} norm",
            "arch": "NLayerDiscriminator",
            "num_feat": self.ndf,
            "blocks": self.n_layers,
            "in_channels": self.input_nc,
            "out_channels": 1,
            "norm": self.norm,
        }
