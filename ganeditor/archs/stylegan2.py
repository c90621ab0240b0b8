"""StyleGAN2 (StyleGAN2-ADA) generator in pure PyTorch: synthesis blocks, synthesis network, Generator.

Names and shapes equal NVlabs ``training/networks.py`` (stylegan2-ada-pytorch) and
``training/networks_stylegan2.py`` (stylegan3), so their state dicts load with strict=True.
Note: the stylegan3 repository's classes default to ``num_fp16_res=4, conv_clamp=256`` where
stylegan2-ada-pytorch defaults to ``0, None``; ours use the stylegan2-ada defaults, so readers of
stylegan3-repository pickles must pass those two values when the pickle does not store them.

FP16 blocks run in fp16 only on CUDA; elsewhere everything is fp32 (the original with force_fp32).
Synthesis can run block by block (``split_ws`` + ``run_blocks``) so slider previews can restart
from cached activations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ganeditor.archs import ops
from ganeditor.archs.registry import register
from ganeditor.archs.stylegan2_layers import (  # noqa: F401  (re-exported)
    Conv2dLayer,
    FullyConnectedLayer,
    MappingNetwork,
    SynthesisLayer,
    ToRGBLayer,
    block_dtype,
    plain,
)


def use_channels_last(x: torch.Tensor, channels: int, resolution: int) -> bool:
    """Memory format choice: channels_last on CPU for the large, narrow layers where oneDNN gains."""
    return x.device.type == "cpu" and resolution >= 64


class SynthesisBlock(nn.Module):
    def __init__(
        self,
        in_channels: int,  # input channels, 0 = first block (learned constant input)
        out_channels: int,  # output channels
        w_dim: int,  # W dimensionality
        resolution: int,  # resolution of this block
        img_channels: int,  # image channels
        is_last: bool,  # last block (always has toRGB)
        architecture: str = "skip",  # 'orig', 'skip' or 'resnet'
        resample_filter: list[int] | None = None,  # low-pass filter taps, None = [1, 3, 3, 1]
        conv_clamp: float | None = None,  # clamp conv outputs to +-X, None = no clamp
        use_fp16: bool = False,  # fp16 for this block (CUDA only)
        fp16_channels_last: bool = False,  # accepted for compatibility
        fused_modconv_default: Any = None,  # None = SG2-ADA rule, True/False, or 'inference_only'
        **layer_kwargs: Any,  # more SynthesisLayer arguments
    ):
        assert architecture in ("orig", "skip", "resnet"), f"bad architecture {architecture!r}"
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.fused_modconv_default = fused_modconv_default
        resample_filter = resample_filter or [1, 3, 3, 1]
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0
        common = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, **layer_kwargs)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        if in_channels != 0:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, resample_filter=resample_filter, **common)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **common)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)  # fmt: skip

    def forward(
        self,
        x: torch.Tensor | None,  # [N, Cin, R/2, R/2], None for the first block
        img: torch.Tensor | None,  # [N, img_channels, R/2, R/2] or None
        ws: torch.Tensor,  # [N, num_conv + num_torgb, w_dim]
        force_fp32: bool = False,  # fp32 even for fp16 blocks on CUDA
        fused_modconv: bool | None = None,  # None = by fused_modconv_default
        update_emas: bool = False,  # unused (API compatibility)
        channels_last: bool | None = None,  # memory format, None = automatic
        **layer_kwargs: Any,  # noise_mode
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert ws.ndim == 3 and ws.shape[1:] == (self.num_conv + self.num_torgb, self.w_dim), f"ws {list(ws.shape)}"
        w_iter = iter(ws.unbind(dim=1))
        dtype = block_dtype(self.use_fp16, ws.device, force_fp32)
        if fused_modconv is None:
            rule = self.fused_modconv_default
            if rule is None:
                fused_modconv = (not self.training) and (dtype == torch.float32 or int(ws.shape[0]) == 1)
            elif rule == "inference_only":
                fused_modconv = not self.training
            else:
                fused_modconv = bool(rule)
        if channels_last is None:
            channels_last = use_channels_last(ws, self.out_channels, self.resolution)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = x.to(memory_format=fmt)
        else:
            half = self.resolution // 2
            assert x is not None and x.shape[1:] == (self.in_channels, half, half), f"x {list(x.shape)}"
            x = x.to(dtype=dtype, memory_format=fmt)
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=np.sqrt(0.5), **layer_kwargs)
            x = y.add_(x) if not y.requires_grad else y + x
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        if img is not None:
            assert img.shape[1:] == (self.img_channels, self.resolution // 2, self.resolution // 2)
            img = ops.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = (img.add_(y) if not img.requires_grad else img + y) if img is not None else y
        assert x.dtype == dtype or torch.is_autocast_enabled(x.device.type)
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(
        self,
        w_dim: int,  # W dimensionality
        img_resolution: int,  # output resolution (power of two >= 4)
        img_channels: int,  # image channels
        channel_base: int = 32768,  # channels = min(channel_base // res, channel_max)
        channel_max: int = 512,  # maximum channels in any layer
        num_fp16_res: int = 0,  # fp16 for the N highest resolutions (CUDA only)
        **block_kwargs: Any,  # more SynthesisBlock arguments
    ):
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0, "resolution must be 2^k >= 4"
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        self.channels_dict = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = self.channels_dict[res // 2] if res > 4 else 0
            is_last = res == self.img_resolution
            block = SynthesisBlock(in_channels, self.channels_dict[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, use_fp16=res >= fp16_resolution,
                                   **block_kwargs)  # fmt: skip
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        """The synthesis blocks, lowest resolution first."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def block_ws_start(self) -> list[int]:
        """Index of the first ws entry each block reads (blocks overlap by their toRGB entry)."""
        starts, idx = [], 0
        for block in self.blocks():
            starts.append(idx)
            idx += block.num_conv
        return starts

    def split_ws(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """Split ws [N, num_ws, w_dim] into each block's slice."""
        assert ws.ndim == 3 and ws.shape[1:] == (self.num_ws, self.w_dim), f"ws {list(ws.shape)}"
        ws = ws.to(torch.float32)
        return [ws.narrow(1, s, b.num_conv + b.num_torgb) for s, b in zip(self.block_ws_start(), self.blocks())]

    def run_blocks(
        self,
        block_ws: list[torch.Tensor],  # per-block ws from split_ws
        x: torch.Tensor | None = None,  # features entering block `start` (None when start == 0)
        img: torch.Tensor | None = None,  # image entering block `start`
        start: int = 0,  # first block to run
        stop: int | None = None,  # run blocks [start, stop), None = to the end
        **block_kwargs: Any,  # noise_mode, force_fp32, fused_modconv, channels_last
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run blocks start..stop-1; returns (features, image) after the last block run."""
        blocks = self.blocks()
        stop = len(blocks) if stop is None else stop
        for i in range(start, stop):
            x, img = blocks[i](x, img, block_ws[i], **block_kwargs)
        return x, img

    def forward(self, ws: torch.Tensor, **block_kwargs: Any) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R], roughly in [-1, 1]."""
        _, img = self.run_blocks(self.split_ws(ws), **block_kwargs)
        return img


@register("stylegan2-generator")
class Generator(nn.Module):
    def __init__(
        self,
        z_dim: int,  # Z dimensionality
        c_dim: int,  # conditioning label dimensionality, 0 = unconditional
        w_dim: int,  # W dimensionality
        img_resolution: int,  # output resolution
        img_channels: int,  # image channels
        mapping_kwargs: dict[str, Any] | None = None,  # MappingNetwork arguments (num_layers, ...)
        synthesis_kwargs: dict[str, Any] | None = None,  # SynthesisNetwork arguments (SG2-ADA nesting)
        **more_synthesis_kwargs: Any,  # SynthesisNetwork arguments passed flat (stylegan3 repository)
    ):
        super().__init__()
        self.z_dim = int(z_dim)
        self.c_dim = int(c_dim)
        self.w_dim = int(w_dim)
        self.img_resolution = int(img_resolution)
        self.img_channels = int(img_channels)
        syn = {**plain(dict(synthesis_kwargs or {})), **plain(dict(more_synthesis_kwargs))}
        self.synthesis = SynthesisNetwork(w_dim=self.w_dim, img_resolution=self.img_resolution,
                                          img_channels=self.img_channels, **syn)  # fmt: skip
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
                                      **plain(dict(mapping_kwargs or {})))  # fmt: skip

    def forward(
        self,
        z: torch.Tensor,  # [N, z_dim]
        c: torch.Tensor | None,  # [N, c_dim] (ignored when c_dim == 0)
        truncation_psi: float = 1,  # 1 = no truncation
        truncation_cutoff: int | None = None,  # truncate the first ws only, None = all
        update_emas: bool = False,  # training: update w_avg
        **synthesis_kwargs: Any,  # noise_mode, force_fp32, fused_modconv, channels_last
    ) -> torch.Tensor:
        """z -> image [N, img_channels, R, R], roughly in [-1, 1]."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)  # fmt: skip
        return self.synthesis(ws, **synthesis_kwargs)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        syn, mp = self.synthesis, self.mapping
        b0 = syn.blocks()[-1]
        return {
            "architecture": "StyleGAN2",
            "resolution": self.img_resolution,
            "img_channels": self.img_channels,
            "z_dim": self.z_dim,
            "c_dim": self.c_dim,
            "w_dim": self.w_dim,
            "num_ws": self.num_ws,
            "mapping_layers": mp.num_layers,
            "synthesis_architecture": b0.architecture,
            "channels": {str(r): c for r, c in syn.channels_dict.items()},
            "num_fp16_res": syn.num_fp16_res,
            "conv_clamp": b0.conv1.conv_clamp,
            "parameters": sum(p.numel() for p in self.parameters()),
        }
