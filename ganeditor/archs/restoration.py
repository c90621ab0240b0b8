"""Small U-Nets for old-photo restoration (ours; trained by ``pipelines.train.restoration``).

One convolutional U-Net body, four heads:

* ``scratch-detector``: RGB -> one logit per pixel (dust and scratches).
* ``inpaint-unet``: RGB with holes + the hole mask -> RGB; the known pixels are passed through.
* ``restore-unet``: RGB -> RGB residual (denoise, deblur, de-JPEG, fading and colour-cast repair).
* ``colorize-unet``: luma -> chroma (Cb, Cr offsets), run at low resolution by the pipeline.

The body has ``len(channels)`` levels; level ``l`` works at 1/2**l of the input size with
``channels[l]`` features and ``blocks[l]`` residual blocks (conv3x3-LeakyReLU-conv3x3) on the way
down and on the way up; downsampling is a stride-2 conv, upsampling nearest x2 + conv3x3, skips
are added.  No normalisation and no global operation: each output pixel depends only on the input
within ``receptive_radius`` pixels, so tiles with that much context give exactly the whole-image
result (``core.tiling``), and inputs must be a multiple of ``size_multiple`` (2**(levels-1)).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs.image2image_api import ImageToImageNet
from ganeditor.archs.registry import register


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


class UNetBody(nn.Module):
    """Features [N, channels[0], H, W] from [N, in_ch, H, W] through the U (see the module docstring)."""

    def __init__(self, in_ch: int, channels: tuple[int, ...], blocks: tuple[int, ...]):
        super().__init__()
        assert len(channels) == len(blocks) >= 1, (channels, blocks)
        self.levels = len(channels)
        self.conv_in = nn.Conv2d(in_ch, channels[0], 3, 1, 1)
        self.down = nn.ModuleList(nn.Conv2d(channels[i], channels[i + 1], 3, 2, 1) for i in range(self.levels - 1))
        self.enc = nn.ModuleList(nn.Sequential(*[ResBlock(c) for c in [ch] * n]) for ch, n in zip(channels, blocks))
        self.up = nn.ModuleList(nn.Conv2d(channels[i + 1], channels[i], 3, 1, 1) for i in range(self.levels - 1))
        self.dec = nn.ModuleList(nn.Sequential(*[ResBlock(c) for c in [ch] * n]) for ch, n in zip(channels[:-1], blocks[:-1]))
        self.size_multiple = 2 ** (self.levels - 1)
        # Receptive radius (input pixels, each side): every 3x3 conv at level l reaches 2**l further;
        # between levels l and l+1 the stride-2 conv, the up conv and the nearest upsampling's cell
        # phase add 2**l each.  Tests check it against the measured gradient support.
        r = 1  # conv_in
        for lvl, n in enumerate(blocks):
            bottom = lvl == self.levels - 1
            r += 2 * n * (1 if bottom else 2) * 2**lvl  # residual blocks on the way down (and up)
            r += 0 if bottom else 3 * 2**lvl
        self.receptive_radius = r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.size_multiple
        assert h % m == 0 and w % m == 0, f"input {h}x{w} is not a multiple of {m}"
        f = self.enc[0](F.leaky_relu(self.conv_in(x), 0.2))
        skips = [f]
        for i in range(self.levels - 1):
            f = self.enc[i + 1](F.leaky_relu(self.down[i](f), 0.2))
            skips.append(f)
        for i in reversed(range(self.levels - 1)):
            f = F.leaky_relu(self.up[i](F.interpolate(f, scale_factor=2.0, mode="nearest")), 0.2)
            f = self.dec[i](f + skips[i])
        return f


class _RestorationNet(nn.Module):
    """Common facts of the four heads (what the tiler and the restore pipeline read)."""

    io_convention = "unit"  # image in [0, 1]
    input_mean = 0.0
    input_std = 1.0
    needs_global_stats = False
    scale = 1
    restore_stage = ""  # which restore stage the net serves
    summary = ""

    def _setup(self, in_ch: int, out_ch: int, channels: tuple[int, ...], blocks: tuple[int, ...]) -> None:
        self.body = UNetBody(in_ch, tuple(channels), tuple(blocks))
        self.conv_out = nn.Conv2d(channels[0], out_ch, 3, 1, 1)
        self.size_multiple = self.body.size_multiple
        self.receptive_radius = self.body.receptive_radius + 1
        self.channels, self.blocks = tuple(channels), tuple(blocks)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info`` and the model library."""
        return {"summary": f"{self.summary} (U-Net, {len(self.channels)} levels)", "arch": self.arch_name,
                "restore_stage": self.restore_stage, "channels": list(self.channels), "blocks": list(self.blocks),
                "tiling": f"exact tiles (receptive field {self.receptive_radius} px each side)",
                "size_multiple": self.size_multiple}


@register("scratch-detector")
class ScratchDetector(_RestorationNet):
    """RGB [N,3,H,W] in [0,1] -> dust/scratch logits [N,1,H,W] (sigmoid > 0.5: damaged)."""

    restore_stage = "scratches"
    summary = "dust and scratch detector"

    def __init__(
        self,
        channels: tuple[int, ...] = (16, 32, 64, 96),  # features per level
        blocks: tuple[int, ...] = (1, 1, 1, 2),  # residual blocks per level (down and up)
    ):
        super().__init__()
        self._setup(3, 1, channels, blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == 3, x.shape
        return self.conv_out(self.body(x - 0.5))


@register("inpaint-unet")
class InpaintUNet(_RestorationNet):
    """RGB [N,3,H,W] in [0,1] + mask [N,1,H,W] (1 = fill) -> RGB with the masked pixels filled."""

    restore_stage = "inpaint"
    summary = "dust and scratch inpainter"

    def __init__(
        self,
        channels: tuple[int, ...] = (24, 48, 96, 128),  # features per level
        blocks: tuple[int, ...] = (1, 1, 2, 2),  # residual blocks per level (down and up)
    ):
        super().__init__()
        self._setup(4, 3, channels, blocks)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == 3 and mask.shape[1] == 1, (x.shape, mask.shape)
        m = (mask > 0.5).to(x.dtype)
        holed = (x - 0.5) * (1 - m)
        y = self.conv_out(self.body(torch.cat([holed, m], dim=1))) + 0.5
        return x * (1 - m) + y * m


@register("restore-unet")
class RestoreUNet(_RestorationNet, ImageToImageNet):
    """RGB [N,3,H,W] in [0,1] -> restored RGB (a residual added to the input)."""

    restore_stage = "global"
    summary = "global old-photo restorer (1x)"

    def __init__(
        self,
        channels: tuple[int, ...] = (24, 48, 96, 144),  # features per level
        blocks: tuple[int, ...] = (1, 1, 2, 2),  # residual blocks per level (down and up)
    ):
        super().__init__()
        self._setup(3, 3, channels, blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == 3, x.shape
        return x + self.conv_out(self.body(x - 0.5))


@register("colorize-unet")
class ColorizeUNet(_RestorationNet):
    """Luma [N,1,H,W] in [0,1] -> chroma [N,2,H,W]: BT.601 Cb and Cr, centred on 0 (range about +-0.5)."""

    restore_stage = "colour"
    summary = "colouriser (chroma from luma)"

    def __init__(
        self,
        channels: tuple[int, ...] = (16, 32, 64, 128, 160),  # features per level (5 levels: wide context)
        blocks: tuple[int, ...] = (1, 1, 1, 2, 2),  # residual blocks per level (down and up)
    ):
        super().__init__()
        self._setup(1, 2, channels, blocks)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        assert y.ndim == 4 and y.shape[1] == 1, y.shape
        return self.conv_out(self.body(y - 0.5))
