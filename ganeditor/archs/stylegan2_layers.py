"""StyleGAN2 (StyleGAN2-ADA) layers in pure PyTorch: fully connected, conv, mapping, synthesis layer, toRGB.

Attribute, parameter and buffer names equal NVlabs ``training/networks.py`` (stylegan2-ada-pytorch)
and ``training/networks_stylegan2.py`` (stylegan3), so their state dicts load with strict=True.
FP16 blocks (``num_fp16_res``) run in fp16 only on CUDA; elsewhere everything is fp32, which
matches the original run with ``force_fp32=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ganeditor.archs import ops

HOMOGENEOUS = ("linear", "relu", "lrelu")  # act(g*x) == g*act(x) for g > 0: gains fold into weights


def plain(v: Any) -> Any:
    """Turn numpy scalars/arrays (as found in NVlabs pickles) into plain Python values."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def block_dtype(use_fp16: bool, device: torch.device, force_fp32: bool) -> torch.dtype:
    """fp16 only for fp16 blocks on CUDA; fp32 everywhere else."""
    return torch.float16 if use_fp16 and device.type == "cuda" and not force_fp32 else torch.float32


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalised learning rate (NVlabs names: ``weight``, ``bias``); StyleGAN2 and 3."""

    def __init__(
        self,
        in_features: int,  # number of input features
        out_features: int,  # number of output features
        bias: bool = True,  # additive bias before the activation
        activation: str = "linear",  # 'linear', 'relu', 'lrelu', ...
        lr_multiplier: float = 1,  # learning-rate multiplier (equalised lr)
        bias_init: Any = 0,  # initial bias: a value or one per feature (stored / lr_multiplier, as SG3)
        weight_init: float = 1,  # initial weight std
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        w = torch.randn([out_features, in_features])
        self.weight = nn.Parameter(w / lr_multiplier if weight_init == 1 else w * (weight_init / lr_multiplier))
        b = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features]) / np.float32(lr_multiplier)
        self.bias = nn.Parameter(torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype)
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if x.ndim == 2 and b is not None:  # b + gain * x @ W^T in one call (no pass over the weight)
            y = torch.addmm(b.unsqueeze(0), x, w.t(), alpha=self.weight_gain)
            return y if self.activation == "linear" else ops.bias_act(y, None, act=self.activation)
        return ops.bias_act(x.matmul(w.t() * self.weight_gain), b, act=self.activation)


class Conv2dLayer(nn.Module):
    def __init__(
        self,
        in_channels: int,  # number of input channels
        out_channels: int,  # number of output channels
        kernel_size: int,  # kernel width and height
        bias: bool = True,  # additive bias before the activation
        activation: str = "linear",  # 'linear', 'relu', 'lrelu', ...
        up: int = 1,  # integer upsampling factor
        down: int = 1,  # integer downsampling factor
        resample_filter: list[int] | None = None,  # low-pass filter taps, None = [1, 3, 3, 1]
        conv_clamp: float | None = None,  # clamp the output to +-X, None = no clamp
        channels_last: bool = False,  # accepted for compatibility (memory format is chosen at run time)
        trainable: bool = True,  # False = weights are frozen (Freeze-D)
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter or [1, 3, 3, 1]))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size**2))
        self.act_gain = ops.act_gain(activation)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        if not trainable:
            self.weight.requires_grad_(False)
            if self.bias is not None:
                self.bias.requires_grad_(False)

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        b = self.bias.to(x.dtype) if self.bias is not None else None
        flip_weight = self.up == 1
        f = self.resample_filter
        if self.activation in HOMOGENEOUS:  # fold the gain into the weights and the bias
            w = (self.weight * (self.weight_gain * act_gain)).to(x.dtype)
            b = b * act_gain if b is not None else None
            x = ops.conv2d_resample(x, w, f, self.up, self.down, self.padding, flip_weight=flip_weight, bias=b)
            return ops.bias_act(x, None, act=self.activation, gain=1, clamp=act_clamp, inplace=True)
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = ops.conv2d_resample(x, w, f, self.up, self.down, self.padding, flip_weight=flip_weight)
        return ops.bias_act(x, b, act=self.activation, gain=act_gain, clamp=act_clamp)


class MappingNetwork(nn.Module):
    def __init__(
        self,
        z_dim: int,  # input latent (Z) dimensionality, 0 = no latent
        c_dim: int,  # conditioning label (C) dimensionality, 0 = no label
        w_dim: int,  # intermediate latent (W) dimensionality
        num_ws: int | None,  # number of ws to broadcast to, None = do not broadcast
        num_layers: int = 8,  # number of mapping layers
        embed_features: int | None = None,  # label embedding size, None = w_dim
        layer_features: int | None = None,  # hidden features, None = w_dim
        activation: str = "lrelu",  # activation of the mapping layers
        lr_multiplier: float = 0.01,  # learning-rate multiplier of the mapping layers
        w_avg_beta: float | None = 0.995,  # decay of the tracked W average, None = no tracking
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,  # [N, z_dim]
        c: torch.Tensor | None,  # [N, c_dim]
        truncation_psi: float = 1,  # 1 = no truncation
        truncation_cutoff: int | None = None,  # truncate only the first ws, None = all
        update_emas: bool = False,  # update w_avg (training)
        skip_w_avg_update: bool | None = None,  # accepted for SG2-ADA call compatibility
    ) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            assert z is not None and z.ndim == 2 and z.shape[1] == self.z_dim, f"z: expected [N, {self.z_dim}]"
            x = ops.normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            assert c is not None and c.ndim == 2 and c.shape[1] == self.c_dim, f"c: expected [N, {self.c_dim}]"
            y = ops.normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            assert self.w_avg_beta is not None
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    def __init__(
        self,
        in_channels: int,  # number of input channels
        out_channels: int,  # number of output channels
        w_dim: int,  # W dimensionality
        resolution: int,  # output resolution of this layer
        kernel_size: int = 3,  # kernel width and height
        up: int = 1,  # integer upsampling factor
        use_noise: bool = True,  # per-pixel noise input
        activation: str = "lrelu",  # activation function
        resample_filter: list[int] | None = None,  # low-pass filter taps, None = [1, 3, 3, 1]
        conv_clamp: float | None = None,  # clamp the output to +-X, None = no clamp
        channels_last: bool = False,  # accepted for compatibility
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter or [1, 3, 3, 1]))
        self.padding = kernel_size // 2
        self.act_gain = ops.act_gain(activation)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self,
        x: torch.Tensor,  # [N, Cin, R/up, R/up]
        w: torch.Tensor,  # [N, w_dim]
        noise_mode: str = "random",  # 'random', 'const' or 'none'
        fused_modconv: bool = True,  # one grouped conv with per-sample weights
        gain: float = 1,  # extra output gain
    ) -> torch.Tensor:
        assert noise_mode in ("random", "const", "none"), f"bad noise_mode {noise_mode!r}"
        in_res = self.resolution // self.up
        assert x.shape[1:] == (self.in_channels, in_res, in_res), f"x {list(x.shape)}"
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        if self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        fold = self.activation in HOMOGENEOUS
        x = ops.modulated_conv2d(
            x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
            resample_filter=self.resample_filter, flip_weight=self.up == 1, fused_modconv=fused_modconv,
            out_gain=act_gain if fold else 1, bias=(self.bias * act_gain).to(x.dtype) if fold else None,
        )  # fmt: skip
        if fold:
            return ops.bias_act(x, None, act=self.activation, gain=1, clamp=act_clamp, inplace=True)
        return ops.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=act_gain, clamp=act_clamp)


class ToRGBLayer(nn.Module):
    def __init__(
        self,
        in_channels: int,  # number of input channels
        out_channels: int,  # number of image channels
        w_dim: int,  # W dimensionality
        kernel_size: int = 1,  # kernel width and height
        conv_clamp: float | None = None,  # clamp the output to +-X, None = no clamp
        channels_last: bool = False,  # accepted for compatibility
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size**2))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = ops.modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv,
                                 bias=self.bias.to(x.dtype))  # fmt: skip
        return ops.bias_act(x, None, clamp=self.conv_clamp, inplace=True)
