"""StyleGAN3 generator (configs T and R), "Alias-Free Generative Adversarial Networks".

Parameter and buffer names and shapes equal NVlabs stylegan3 ``training/networks_stylegan3.py``
so its state_dict loads with ``strict=True``; the constructor takes its ``init_kwargs``.  Written
anew from those facts.  The filtered leaky ReLU runs on the strip/polyphase fast path from
``filtered_lrelu.py`` unless ``impl='ref'``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs import ops
from ganeditor.archs.filtered_lrelu import design_lowpass_filter, filtered_lrelu
from ganeditor.archs.registry import register
from ganeditor.archs.stylegan2_layers import FullyConnectedLayer  # shared with StyleGAN2


def make_transform(translate: tuple[float, float] = (0.0, 0.0), angle: float = 0.0) -> np.ndarray:
    """3x3 rotation (degrees) + translation in homogeneous coordinates, as gen_images.py."""
    m = np.eye(3)
    s, c = np.sin(angle / 360.0 * np.pi * 2), np.cos(angle / 360.0 * np.pi * 2)
    m[0][0], m[0][1], m[0][2] = c, s, translate[0]
    m[1][0], m[1][1], m[1][2] = -s, c, translate[1]
    return m


def input_transform(translate: tuple[float, float] = (0.0, 0.0), angle: float = 0.0) -> torch.Tensor:
    """The value for ``G.synthesis.input.transform`` that translates/rotates the output image."""
    return torch.from_numpy(np.linalg.inv(make_transform(translate, angle))).float()


def modulated_conv2d(
    x: torch.Tensor,  # [N, I, H, W]
    w: torch.Tensor,  # [O, I, k, k]
    s: torch.Tensor,  # [N, I] styles
    demodulate: bool = True,  # apply weight demodulation
    padding: int = 0,  # zero padding on each side
    input_gain: torch.Tensor | None = None,  # scale of the input channels: [], [I] or [N, I]
    bias: torch.Tensor | None = None,  # [O] added to the output
) -> torch.Tensor:
    """StyleGAN3's modulated convolution (pre-normalised styles and weights)."""
    n = x.shape[0]
    o, i, kh, kw = w.shape
    assert x.shape[1] == i and s.shape == (n, i), f"x {list(x.shape)}, w {list(w.shape)}, s {list(s.shape)}"
    coef = s.unsqueeze(1)  # [N, 1, I]: all per-sample scales as one factor, then one pass over the weights
    if demodulate:  # weight and style pre-normalisation, then demodulation from sum_k w^2 [O, I]
        coef = coef * (s.square().mean().rsqrt() * w.square().mean([1, 2, 3]).rsqrt()).reshape(1, o, 1)
        coef = coef * ((coef.square() * torch.linalg.vector_norm(w, dim=(2, 3)).square()).sum(2, keepdim=True) + 1e-8).rsqrt()
    if input_gain is not None:
        coef = coef * input_gain.expand(n, i).reshape(n, 1, i)
    coef = coef.expand(n, o, i)
    if kh == kw == 1 and padding == 0 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        wm = (w.reshape(1, o, i) * coef).transpose(1, 2).to(x.dtype)  # [N, I, O]: 1x1 conv = matmul on [N, HW, I]
        xm = x.permute(0, 2, 3, 1).reshape(n, -1, i)
        y = torch.baddbmm(bias.to(x.dtype).reshape(1, 1, o), xm, wm) if bias is not None else torch.bmm(xm, wm)
        return y.reshape(n, x.shape[2], x.shape[3], o).permute(0, 3, 1, 2)  # [NCHW] (memory: channels_last)
    wm = w.unsqueeze(0) * coef.reshape(n, o, i, 1, 1)  # [NOIkk]
    outs = [F.conv2d(x[j : j + 1], wm[j].to(x.dtype), bias, padding=padding) for j in range(n)]
    return outs[0] if n == 1 else torch.cat(outs)


class MappingNetwork(nn.Module):
    """z (+ c) -> w, broadcast to ``num_ws`` and truncated towards ``w_avg``."""

    def __init__(
        self,
        z_dim: int,  # input latent (Z) dimensionality
        c_dim: int,  # conditioning label dimensionality, 0 = none
        w_dim: int,  # intermediate latent (W) dimensionality
        num_ws: int,  # number of ws to output
        num_layers: int = 2,  # number of mapping layers
        lr_multiplier: float = 0.01,  # learning-rate multiplier of the mapping layers
        w_avg_beta: float = 0.998,  # decay of the W moving average (training)
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        self.embed = FullyConnectedLayer(c_dim, w_dim) if c_dim > 0 else None
        features = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation="lrelu", lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c=None, truncation_psi: float = 1, truncation_cutoff: int | None = None, update_emas: bool = False):
        """[N, z_dim] (+ [N, c_dim]) -> ws [N, num_ws, w_dim]."""
        assert z.ndim == 2 and z.shape[1] == self.z_dim, f"z {list(z.shape)}, expected [N, {self.z_dim}]"
        if truncation_cutoff is None:
            truncation_cutoff = self.num_ws
        x = ops.normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            assert c is not None and c.shape == (z.shape[0], self.c_dim), f"c must be [N, {self.c_dim}]"
            y = ops.normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisInput(nn.Module):
    """Fourier features, rotated/translated by an affine of w and by the user ``transform``."""

    def __init__(
        self,
        w_dim: int,  # intermediate latent (W) dimensionality
        channels: int,  # number of output channels
        size: int,  # output spatial size
        sampling_rate: float,  # output sampling rate
        bandwidth: float,  # output bandwidth
    ):
        super().__init__()
        self.w_dim, self.channels = w_dim, channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))  # user inverse transform of the image
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """[N, w_dim] -> [N, channels, size, size]."""
        n = w.shape[0]
        t = self.affine(w)  # (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        m_r = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])  # inverse rotation
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t = torch.eye(3, device=w.device).unsqueeze(0).repeat([n, 1, 1])  # inverse translation
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[1, 1] = 0.5 * self.size[1] / self.sampling_rate
        sx, sy = int(self.size[0]), int(self.size[1])
        grids = F.affine_grid(theta.unsqueeze(0), [1, 1, sy, sx], align_corners=False)
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [NHWC]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        x = x.permute(0, 3, 1, 2)  # [NCHW] (memory stays channels_last)
        assert x.shape == (n, self.channels, sy, sx)
        return x


class SynthesisLayer(nn.Module):
    """Modulated conv, then bias + filtered leaky ReLU (up, lrelu, clamp, down)."""

    def __init__(
        self,
        w_dim: int,  # intermediate latent (W) dimensionality
        is_torgb: bool,  # the final ToRGB layer
        is_critically_sampled: bool,  # uses critical sampling
        use_fp16: bool,  # (CUDA only in the original; kept for the record)
        in_channels: int,  # input channels
        out_channels: int,  # output channels
        in_size: int,  # input spatial size
        out_size: int,  # output spatial size
        in_sampling_rate: float,  # input sampling rate (s)
        out_sampling_rate: float,  # output sampling rate (s)
        in_cutoff: float,  # input cutoff frequency (f_c)
        out_cutoff: float,  # output cutoff frequency (f_c)
        in_half_width: float,  # input transition band half-width (f_h)
        out_half_width: float,  # output transition band half-width (f_h)
        conv_kernel: int = 3,  # conv kernel size (ToRGB: 1)
        filter_size: int = 6,  # low-pass filter size relative to the lower resolution
        lrelu_upsampling: int = 2,  # relative sampling rate of the leaky ReLU
        use_radial_filters: bool = False,  # radial down filters in non-critical layers (config R)
        conv_clamp: float | None = 256,  # clamp outputs to [-X, X], None = off
        magnitude_ema_beta: float = 0.999,  # decay of the input magnitude average (training)
    ):
        super().__init__()
        self.w_dim, self.is_torgb, self.is_critically_sampled, self.use_fp16 = w_dim, is_torgb, is_critically_sampled, use_fp16
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate, self.out_sampling_rate = in_sampling_rate, out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff, self.out_cutoff = in_cutoff, out_cutoff
        self.in_half_width, self.out_half_width = in_half_width, out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        assert in_sampling_rate * self.up_factor == self.tmp_sampling_rate
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", design_lowpass_filter(self.up_taps, in_cutoff, in_half_width * 2, self.tmp_sampling_rate))
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        assert out_sampling_rate * self.down_factor == self.tmp_sampling_rate
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("down_filter", design_lowpass_filter(
            self.down_taps, out_cutoff, out_half_width * 2, self.tmp_sampling_rate, radial=self.down_radial))
        pad_total = (self.out_size - 1) * self.down_factor + 1  # output size before downsampling
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor  # input size after upsampling
        pad_total += self.up_taps + self.down_taps - 2  # size reduction caused by the filters
        pad_lo = (pad_total + self.up_factor) // 2  # symmetric interpretation of sample positions
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]
        self.impl = "fast"  # 'fast' or 'ref' filtered leaky ReLU

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", force_fp32: bool = True, update_emas: bool = False):
        """[N, in_channels, in_size, in_size] -> [N, out_channels, out_size, out_size]."""
        assert noise_mode in ("random", "const", "none")  # no noise in StyleGAN3
        assert x.shape[1:] == (self.in_channels, int(self.in_size[1]), int(self.in_size[0])), f"x {list(x.shape)}"
        assert w.shape == (x.shape[0], self.w_dim)
        if update_emas:
            mag = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(mag.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * (self.conv_kernel**2)))
        fast = self.impl == "fast" and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))
        x = modulated_conv2d(x, self.weight, styles, demodulate=not self.is_torgb, padding=self.conv_kernel - 1,
                             input_gain=self.magnitude_ema.rsqrt(), bias=self.bias.to(x.dtype) if fast else None)
        gain, slope = (1.0, 1.0) if self.is_torgb else (math.sqrt(2), 0.2)
        x = filtered_lrelu(x, fu=self.up_filter, fd=self.down_filter, b=None if fast else self.bias.to(x.dtype),
                           up=self.up_factor, down=self.down_factor, padding=self.padding, gain=gain, slope=slope,
                           clamp=self.conv_clamp, impl=self.impl)
        assert x.shape[1:] == (self.out_channels, int(self.out_size[1]), int(self.out_size[0])), f"x {list(x.shape)}"
        return x


class SynthesisNetwork(nn.Module):
    """ws -> image: Fourier input, ``num_layers`` filtered layers, ToRGB."""

    def __init__(
        self,
        w_dim: int,  # intermediate latent (W) dimensionality
        img_resolution: int,  # output resolution
        img_channels: int,  # output colour channels
        channel_base: int = 32768,  # overall multiplier of the channel counts
        channel_max: int = 512,  # maximum channels of any layer
        num_layers: int = 14,  # layers excluding Fourier features and ToRGB
        num_critical: int = 2,  # critically sampled layers at the end
        first_cutoff: float = 2,  # cutoff of the first layer (f_{c,0})
        first_stopband: float = 2**2.1,  # minimum stopband of the first layer (f_{t,0})
        last_stopband_rel: float = 2**0.3,  # minimum stopband of the last layer, relative to its cutoff
        margin_size: int = 10,  # extra pixels outside the image
        output_scale: float = 0.25,  # scale of the output image
        num_fp16_res: int = 4,  # fp16 for the N highest resolutions (CUDA only in the original)
        **layer_kwargs: Any,  # SynthesisLayer hyperparameters
    ):
        super().__init__()
        self.w_dim, self.num_ws = w_dim, num_layers + 2
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.num_layers, self.num_critical = num_layers, num_critical
        self.margin_size, self.output_scale, self.num_fp16_res = margin_size, output_scale, num_fp16_res
        last_cutoff = img_resolution / 2
        last_stopband = last_cutoff * last_stopband_rel
        exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
        sizes = sampling_rates + margin_size * 2
        sizes[-2:] = img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = img_channels
        self.input = SynthesisInput(w_dim=w_dim, channels=int(channels[0]), size=int(sizes[0]),
                                    sampling_rate=sampling_rates[0], bandwidth=cutoffs[0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=idx == num_layers, is_critically_sampled=idx >= num_layers - num_critical,
                use_fp16=bool(sampling_rates[idx] * (2**num_fp16_res) > img_resolution),
                in_channels=int(channels[prev]), out_channels=int(channels[idx]),
                in_size=int(sizes[prev]), out_size=int(sizes[idx]),
                in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
                in_cutoff=cutoffs[prev], out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev], out_half_width=half_widths[idx], **layer_kwargs)
            name = f"L{idx}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def set_impl(self, impl: str) -> None:
        """Choose the filtered leaky ReLU implementation: 'fast' or 'ref'."""
        assert impl in ("fast", "ref")
        for name in self.layer_names:
            getattr(self, name).impl = impl

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", **layer_kwargs: Any) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> image [N, img_channels, res, res] in about [-1, 1]."""
        assert ws.ndim == 3 and ws.shape[1:] == (self.num_ws, self.w_dim), f"ws {list(ws.shape)}"
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, noise_mode=noise_mode, **layer_kwargs)
        if self.output_scale != 1:
            x = x * self.output_scale
        assert x.shape[1:] == (self.img_channels, self.img_resolution, self.img_resolution)
        return x.to(torch.float32).contiguous()


@register("stylegan3-generator")
class Generator(nn.Module):
    """StyleGAN3 generator = MappingNetwork + SynthesisNetwork (NVlabs init_kwargs)."""

    def __init__(
        self,
        z_dim: int = 512,  # input latent (Z) dimensionality
        c_dim: int = 0,  # conditioning label dimensionality
        w_dim: int = 512,  # intermediate latent (W) dimensionality
        img_resolution: int = 1024,  # output resolution
        img_channels: int = 3,  # output colour channels
        mapping_kwargs: dict | None = None,  # MappingNetwork arguments
        **synthesis_kwargs: Any,  # SynthesisNetwork / SynthesisLayer arguments (flat or nested)
    ):
        super().__init__()
        synthesis_kwargs = dict(synthesis_kwargs)
        synthesis_kwargs.update(synthesis_kwargs.pop("synthesis_kwargs", None) or {})
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **(mapping_kwargs or {}))
        self._synthesis_kwargs = synthesis_kwargs

    def forward(self, z, c=None, truncation_psi: float = 1, truncation_cutoff: int | None = None, update_emas: bool = False, **synthesis_kwargs: Any):
        """z [N, z_dim] (+ c) -> image [N, img_channels, res, res]."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)

    @property
    def config(self) -> str:
        """'R' (radial filters, 1x1 convs) or 'T'."""
        k = self._synthesis_kwargs
        return "R" if k.get("use_radial_filters", False) or k.get("conv_kernel", 3) == 1 else "T"

    def describe(self) -> dict[str, object]:
        """Facts that ``ganeditor info`` prints."""
        syn = self.synthesis
        layers = [getattr(syn, n) for n in syn.layer_names]
        return {
            "architecture": f"StyleGAN3-{self.config}",
            "resolution": self.img_resolution,
            "img_channels": self.img_channels,
            "z_dim": self.z_dim,
            "c_dim": self.c_dim,
            "w_dim": self.w_dim,
            "num_ws": self.num_ws,
            "mapping_layers": self.mapping.num_layers,
            "synthesis_layers": len(layers),
            "conv_kernel": layers[0].conv_kernel,
            "channels": [syn.input.channels] + [layer.out_channels for layer in layers],
            "sizes": [int(syn.input.size[0])] + [int(layer.out_size[0]) for layer in layers],
            "parameters": sum(p.numel() for p in self.parameters()),
        }
