"""StyleGAN2 (StyleGAN2-ADA) discriminator in pure PyTorch, names equal to NVlabs ``training/networks.py``.

Also the discriminator of stylegan3-repository pickles (``networks_stylegan2.Discriminator``; that
class defaults to ``num_fp16_res=4, conv_clamp=256``, ours to the stylegan2-ada ``0, None``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ganeditor.archs import ops
from ganeditor.archs.registry import register
from ganeditor.archs.stylegan2_layers import Conv2dLayer, FullyConnectedLayer, MappingNetwork, block_dtype, plain


class DiscriminatorBlock(nn.Module):
    def __init__(
        self,
        in_channels: int,  # input channels, 0 = first block
        tmp_channels: int,  # intermediate channels
        out_channels: int,  # output channels
        resolution: int,  # resolution of this block
        img_channels: int,  # image channels
        first_layer_idx: int,  # index of the first layer (for Freeze-D)
        architecture: str = "resnet",  # 'orig', 'skip' or 'resnet'
        activation: str = "lrelu",  # activation function
        resample_filter: list[int] | None = None,  # low-pass filter taps, None = [1, 3, 3, 1]
        conv_clamp: float | None = None,  # clamp conv outputs to +-X, None = no clamp
        use_fp16: bool = False,  # fp16 for this block (CUDA only)
        fp16_channels_last: bool = False,  # accepted for compatibility
        freeze_layers: int = 0,  # Freeze-D: number of frozen layers
    ):
        assert in_channels in (0, tmp_channels)
        assert architecture in ("orig", "skip", "resnet"), f"bad architecture {architecture!r}"
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        resample_filter = resample_filter or [1, 3, 3, 1]
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.num_layers = 0

        def trainable() -> bool:
            idx = self.first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                                       trainable=trainable(), conv_clamp=conv_clamp)  # fmt: skip
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
                                 trainable=trainable(), conv_clamp=conv_clamp)  # fmt: skip
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
                                 trainable=trainable(), resample_filter=resample_filter, conv_clamp=conv_clamp)  # fmt: skip
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter)  # fmt: skip

    def forward(
        self,
        x: torch.Tensor | None,  # [N, Cin, R, R] or None for the first block
        img: torch.Tensor | None,  # [N, img_channels, R, R] or None
        force_fp32: bool = False,  # fp32 even for fp16 blocks on CUDA
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        dev = (x if x is not None else img).device
        dtype = block_dtype(self.use_fp16, dev, force_fp32)
        if x is not None:
            assert x.shape[1:] == (self.in_channels, self.resolution, self.resolution), f"x {list(x.shape)}"
            x = x.to(dtype=dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            assert img is not None and img.shape[1:] == (self.img_channels, self.resolution, self.resolution), (
                f"img {None if img is None else list(img.shape)}"
            )
            img = img.to(dtype=dtype)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = ops.downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y.add_(x) if not y.requires_grad else y + x
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        assert x.dtype == dtype or torch.is_autocast_enabled(x.device.type)
        return x, img


class MinibatchStdLayer(nn.Module):
    def __init__(
        self,
        group_size: int | None,  # group size, None = whole minibatch
        num_channels: int = 1,  # number of stddev features
    ):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # [GnFcHW]
        y = y - y.mean(dim=0)  # [GnFcHW]
        y = y.square().mean(dim=0)  # [nFcHW]
        y = (y + 1e-8).sqrt()  # [nFcHW]
        y = y.mean(dim=[2, 3, 4])  # [nF]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [NFHW]
        return torch.cat([x, y], dim=1)  # [N, C+F, H, W]


class DiscriminatorEpilogue(nn.Module):
    def __init__(
        self,
        in_channels: int,  # input channels
        cmap_dim: int,  # mapped label dimensionality, 0 = unconditional
        resolution: int,  # resolution of this block (4)
        img_channels: int,  # image channels
        architecture: str = "resnet",  # 'orig', 'skip' or 'resnet'
        mbstd_group_size: int | None = 4,  # minibatch-stddev group size, None = whole minibatch
        mbstd_num_channels: int = 1,  # minibatch-stddev features, 0 = disable
        activation: str = "lrelu",  # activation function
        conv_clamp: float | None = None,  # clamp conv outputs to +-X, None = no clamp
    ):
        assert architecture in ("orig", "skip", "resnet"), f"bad architecture {architecture!r}"
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)  # fmt: skip
        self.fc = FullyConnectedLayer(in_channels * (resolution**2), in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        assert x.shape[1:] == (self.in_channels, self.resolution, self.resolution), f"x {list(x.shape)}"
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            assert img is not None
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            assert cmap is not None and cmap.shape[1:] == (self.cmap_dim,)
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x  # [N, 1]


@register("stylegan2-discriminator")
class Discriminator(nn.Module):
    def __init__(
        self,
        c_dim: int,  # conditioning label dimensionality, 0 = unconditional
        img_resolution: int,  # input resolution
        img_channels: int,  # image channels
        architecture: str = "resnet",  # 'orig', 'skip' or 'resnet'
        channel_base: int = 32768,  # channels = min(channel_base // res, channel_max)
        channel_max: int = 512,  # maximum channels in any layer
        num_fp16_res: int = 0,  # fp16 for the N highest resolutions (CUDA only)
        conv_clamp: float | None = None,  # clamp conv outputs to +-X, None = no clamp
        cmap_dim: int | None = None,  # mapped label dimensionality, None = channels at 4x4
        block_kwargs: dict[str, Any] | None = None,  # DiscriminatorBlock arguments
        mapping_kwargs: dict[str, Any] | None = None,  # MappingNetwork arguments (label mapping)
        epilogue_kwargs: dict[str, Any] | None = None,  # DiscriminatorEpilogue arguments
        **more: Any,  # ignored extra arguments (tolerated for forward compatibility)
    ):
        super().__init__()
        self.c_dim = int(c_dim)
        self.img_resolution = int(img_resolution)
        self.img_resolution_log2 = int(np.log2(self.img_resolution))
        self.img_channels = int(img_channels)
        self.architecture = architecture
        self.num_fp16_res = int(num_fp16_res)
        self.block_resolutions = [2**i for i in range(self.img_resolution_log2, 2, -1)]
        self.channels_dict = {r: min(int(channel_base) // r, int(channel_max)) for r in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - self.num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = self.channels_dict[4]
        if self.c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = int(cmap_dim)
        common = dict(img_channels=self.img_channels, architecture=architecture, conv_clamp=plain(conv_clamp))
        block_kwargs = plain(dict(block_kwargs or {}))
        layer_idx = 0
        for res in self.block_resolutions:
            in_channels = self.channels_dict[res] if res < self.img_resolution else 0
            block = DiscriminatorBlock(in_channels, self.channels_dict[res], self.channels_dict[res // 2],
                                       resolution=res, first_layer_idx=layer_idx, use_fp16=res >= fp16_resolution,
                                       **block_kwargs, **common)  # fmt: skip
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if self.c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=self.c_dim, w_dim=self.cmap_dim, num_ws=None,
                                          w_avg_beta=None, **plain(dict(mapping_kwargs or {})))  # fmt: skip
        self.b4 = DiscriminatorEpilogue(self.channels_dict[4], cmap_dim=self.cmap_dim, resolution=4,
                                        **plain(dict(epilogue_kwargs or {})), **common)  # fmt: skip

    def forward(
        self,
        img: torch.Tensor,  # [N, img_channels, R, R] in [-1, 1]
        c: torch.Tensor | None,  # [N, c_dim] (ignored when c_dim == 0)
        update_emas: bool = False,  # unused (API compatibility)
        **block_kwargs: Any,  # force_fp32
    ) -> torch.Tensor:
        """Image (and label) -> realness logits [N, 1]."""
        assert img.ndim == 4 and img.shape[1:] == (self.img_channels, self.img_resolution, self.img_resolution), (
            f"img {list(img.shape)}"
        )
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {
            "architecture": f"StyleGAN2 discriminator ({self.architecture})",
            "resolution": self.img_resolution,
            "img_channels": self.img_channels,
            "c_dim": self.c_dim,
            "cmap_dim": self.cmap_dim,
            "channels": {str(r): c for r, c in self.channels_dict.items()},
            "mbstd_group_size": self.b4.mbstd.group_size if self.b4.mbstd is not None else 0,
            "num_fp16_res": self.num_fp16_res,
            "parameters": sum(p.numel() for p in self.parameters()),
        }
