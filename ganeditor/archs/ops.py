"""Low-level StyleGAN ops in pure PyTorch: bias + activation, FIR resampling, resampling conv,
modulated conv.  Same semantics as the NVlabs reference paths (torch_utils/ops), written anew.

Each op has ``impl='fast'`` (default) and ``impl='ref'``; tests compare the two.  The FIR
resampling ops live in ``ops_fir`` and are re-exported here.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ganeditor.archs.ops_fir import (  # noqa: F401  (re-exported: the public op set lives here)
    Padding,
    _filter_size,
    _parse_padding,
    downsample2d,
    filter2d,
    setup_filter,
    upfirdn2d,
    upsample2d,
)

# name -> (function(x, alpha), default alpha, default gain)
ACTIVATIONS: dict[str, tuple[Callable[..., torch.Tensor], float, float]] = {
    "linear": (lambda x, a: x, 0.0, 1.0),
    "relu": (lambda x, a: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": (lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    "tanh": (lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": (lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": (lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": (lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": (lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": (lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
}

_INPLACE: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "relu": lambda x, a: F.relu_(x),
    "lrelu": lambda x, a: F.leaky_relu_(x, a),
    "tanh": lambda x, a: x.tanh_(),
    "sigmoid": lambda x, a: x.sigmoid_(),
}


def act_gain(act: str) -> float:
    """Default output gain of activation ``act`` (sqrt(2) for relu/lrelu/swish, else 1)."""
    return ACTIVATIONS[act][2]


# ----------------------------------------------------------------------------------------------
# bias + activation


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,  # bias [x.shape[dim]] or None
    dim: int = 1,  # dimension of x that b runs along
    act: str = "linear",  # activation name, see ACTIVATIONS
    alpha: float | None = None,  # activation shape parameter, None = default
    gain: float | None = None,  # output scale, None = the activation's default gain
    clamp: float | None = None,  # clamp output to [-clamp, clamp], None = no clamp
    impl: str = "fast",  # 'fast' (in-place on fresh tensors) or 'ref'
    inplace: bool = False,  # the caller owns x: the fast path may overwrite it
) -> torch.Tensor:
    """Add bias, apply activation, scale by gain, clamp (NVlabs ``bias_act`` semantics)."""
    func, def_alpha, def_gain = ACTIVATIONS[act]
    alpha = float(alpha if alpha is not None else def_alpha)
    gain = float(gain if gain is not None else def_gain)
    assert clamp is None or clamp >= 0
    if b is not None:
        assert b.ndim == 1 and 0 <= dim < x.ndim and b.shape[0] == x.shape[dim]
        b = b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    if impl == "ref" or (torch.is_grad_enabled() and x.requires_grad):
        if b is not None:
            x = x + b
        x = func(x, alpha)
        if gain != 1:
            x = x * gain
        if clamp is not None:
            x = x.clamp(-clamp, clamp)
        return x
    # Fast path: one fresh tensor, then in-place ops on it.
    fresh = inplace
    if b is not None:
        x = x.add_(b) if fresh else x + b
        fresh = True
    if act != "linear":
        if fresh and act in _INPLACE:
            x = _INPLACE[act](x, alpha)
        else:
            x = func(x, alpha)
            fresh = True
    if gain != 1:
        x = x.mul_(gain) if fresh else x * gain
        fresh = True
    if clamp is not None:
        x = x.clamp_(-clamp, clamp) if fresh else x.clamp(-clamp, clamp)
    return x


# ----------------------------------------------------------------------------------------------
# convolution with resampling


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True, bias=None):
    kh, kw = w.shape[2], w.shape[3]
    if not flip_weight and (kh > 1 or kw > 1):
        w = w.flip([2, 3])
    # oneDNN keeps channels_last only when the weight's layout agrees (a transposed view does not)
    cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    w = w.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
    if transpose:
        return F.conv_transpose2d(x, w, bias, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, bias, stride=stride, padding=padding, groups=groups)


def conv2d_resample(
    x: torch.Tensor,  # [N, Cin, H, W]
    w: torch.Tensor,  # [Cout, Cin // groups, kh, kw]
    f: torch.Tensor | None = None,  # low-pass filter for resampling (from setup_filter)
    up: int = 1,  # integer upsampling factor
    down: int = 1,  # integer downsampling factor
    padding: Padding = 0,  # padding with respect to the upsampled image
    groups: int = 1,  # grouped convolution
    flip_weight: bool = True,  # True = correlation (like F.conv2d), False = convolution
    flip_filter: bool = False,  # False = convolution, True = correlation
    impl: str = "fast",  # resampling implementation for upfirdn2d
    bias: torch.Tensor | None = None,  # [Cout] added to the output (fused into the conv or filter if possible)
    w_transposed: bool = False,  # up > 1 only: w is already [groups * Cin_g, Cout // groups, kh, kw]
) -> torch.Tensor:
    """2-D convolution with optional FIR up/downsampling (NVlabs ``conv2d_resample`` semantics)."""
    fuse_bias = up > 1 and down == 1 and w.shape[3] > 1  # added by the FIR filter's last pass
    if bias is not None and (up > 1 or down > 1) and not fuse_bias:
        y = conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter, impl, None, w_transposed)
        return y.add_(bias.to(y.dtype).reshape(1, -1, 1, 1)) if not y.requires_grad else y + bias.reshape(1, -1, 1, 1)
    assert x.ndim == 4 and w.ndim == 4 and w.dtype == x.dtype
    assert isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1
    assert not w_transposed or (up > 1 and down == 1 and w.shape[2] * w.shape[3] > 1)
    cout, cin_g, kh, kw = w.shape
    if w_transposed:
        cout, cin_g = w.shape[1] * groups, w.shape[0] // groups
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    ufd = lambda t, **kw_: upfirdn2d(t, f, flip_filter=flip_filter, impl=impl, **kw_)  # noqa: E731
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = ufd(x, down=down, padding=[px0, px1, py0, py1])
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return ufd(x, up=up, padding=[px0, px1, py0, py1], gain=up**2)
    if down > 1 and up == 1:
        x = ufd(x, padding=[px0, px1, py0, py1])
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        if w_transposed:
            pass
        elif groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, cout // groups, cin_g, kh, kw).transpose(1, 2)
            w = w.reshape(groups * cin_g, cout // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight)
        x = ufd(x, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up**2, bias=bias)
        if down > 1:
            x = ufd(x, down=down)
        return x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight, bias=bias)
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1], impl=impl)
    return _conv(x, w, groups=groups, flip_weight=flip_weight, bias=bias)


# ----------------------------------------------------------------------------------------------
# StyleGAN2 helpers


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` to unit mean square along ``dim``."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,  # [N, Cin, H, W]
    weight: torch.Tensor,  # [Cout, Cin, kh, kw]
    styles: torch.Tensor,  # [N, Cin] modulation coefficients
    noise: torch.Tensor | None = None,  # added to the output (broadcastable), or None
    up: int = 1,  # integer upsampling factor
    down: int = 1,  # integer downsampling factor
    padding: int = 0,  # padding with respect to the upsampled image
    resample_filter: torch.Tensor | None = None,  # low-pass filter for resampling
    demodulate: bool = True,  # apply weight demodulation
    flip_weight: bool = True,  # True = correlation (like F.conv2d)
    fused_modconv: bool = True,  # one grouped conv with per-sample weights
    out_gain: float = 1,  # extra factor folded into the weights and noise
    bias: torch.Tensor | None = None,  # [Cout] added last (folded into the conv when possible)
    impl: str = "fast",  # resampling implementation
) -> torch.Tensor:
    """StyleGAN2 modulated (and demodulated) convolution: ``out_gain * (conv + noise) + bias``."""
    n = x.shape[0]
    cout, cin, kh, kw = weight.shape
    assert x.ndim == 4 and x.shape[1] == cin, f"x {list(x.shape)} vs weight {list(weight.shape)}"
    assert styles.shape == (n, cin), f"styles {list(styles.shape)}, expected {[n, cin]}"
    if x.dtype == torch.float16 and demodulate:  # pre-normalise against fp16 overflow
        weight = weight * (1 / np.sqrt(cin * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    if fused_modconv and not (torch.is_grad_enabled() and (weight.requires_grad or styles.requires_grad)):
        return _modconv_infer(x, weight, styles, noise, up, down, padding, resample_filter, demodulate,
                              flip_weight, out_gain, bias, impl)  # fmt: skip
    if fused_modconv and not weight.requires_grad:
        # Gradients through the styles only (a frozen generator: projection, encoder training): the
        # unfused form is the same function and its backward skips the per-sample weight gradients.
        fused_modconv = False
    w = None
    dcoefs = None
    if fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [NOIkk]
        if demodulate:
            dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [NO]
    elif demodulate:  # sum_i s[n, i]^2 * sum_k w[o, i, k]^2 as a [N, I] x [I, O] product
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [NO]
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up, down, padding, flip_weight=flip_weight, impl=impl)
        scale = None
        if demodulate:
            scale = dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if out_gain != 1:
            scale = out_gain if scale is None else scale * out_gain
        if noise is not None:
            noise = noise.to(x.dtype) * out_gain if out_gain != 1 else noise.to(x.dtype)
            x = x * scale + noise if scale is not None else x + noise
        elif scale is not None:
            x = x * scale
        return x + bias.to(x.dtype).reshape(1, -1, 1, 1) if bias is not None else x
    if demodulate:
        w = w * (dcoefs * out_gain).reshape(n, -1, 1, 1, 1)
    elif out_gain != 1:
        w = w * out_gain
    return _fused_conv(x, w, noise, up, down, padding, resample_filter, flip_weight, out_gain, bias, impl)


def _modconv_infer(x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight, out_gain, bias, impl):
    """Inference modulated conv: per-sample weights built in one pass, in the layout the conv wants."""
    n, (cout, cin, kh, kw) = x.shape[0], weight.shape
    coef = styles.unsqueeze(1)  # [N, 1, I]
    if demodulate:  # d[n, o] = rsqrt(sum_i s[n, i]^2 * sum_k w[o, i, k]^2): a [N, I] x [I, O] matmul
        wsq = torch.linalg.vector_norm(weight, dim=(2, 3)).square()  # [O, I]
        coef = coef * ((styles.square() @ wsq.t() + 1e-8).rsqrt() * out_gain).unsqueeze(2)  # [N, O, I]
    elif out_gain != 1:
        coef = coef * out_gain
    cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if kh == kw == 1 and up == down == 1 and padding == 0 and cl:  # 1x1 (toRGB): a matmul on [N, HW, C]
        h, w_ = x.shape[2], x.shape[3]
        wm = (weight.reshape(1, cout, cin) * coef).transpose(1, 2).to(x.dtype)  # [N, I, O]
        xm = x.permute(0, 2, 3, 1).reshape(n, h * w_, cin)
        if bias is not None:
            y = torch.baddbmm(bias.to(x.dtype).reshape(1, 1, cout), xm, wm)
        else:
            y = torch.bmm(xm, wm)
        y = y.reshape(n, h, w_, -1).permute(0, 3, 1, 2)  # [NCHW] (memory: channels_last)
        if noise is not None:
            y = y.add_(noise.to(y.dtype), alpha=out_gain)
        return y
    coef = coef.expand(n, cout, cin)
    if up > 1 and down == 1 and kh * kw > 1:  # conv_transpose2d wants [N*I, O, k, k]; channels_last = memory [N, I, k, k, O]
        wm = torch.empty(n, cin, kh, kw, cout, dtype=weight.dtype, device=weight.device) if cl else \
            torch.empty(n, cin, cout, kh, kw, dtype=weight.dtype, device=weight.device)
        view = wm.permute(0, 1, 4, 2, 3) if cl else wm
        torch.mul(weight.transpose(0, 1).unsqueeze(0), coef.transpose(1, 2).reshape(n, cin, cout, 1, 1), out=view)
        w = view.reshape(n * cin, cout, kh, kw) if not cl else view.flatten(0, 1)
        return _fused_conv(x, w, noise, up, down, padding, resample_filter, flip_weight, out_gain, bias, impl, True)
    wm = torch.empty(n, cout, kh, kw, cin, dtype=weight.dtype, device=weight.device) if cl else \
        torch.empty(n, cout, cin, kh, kw, dtype=weight.dtype, device=weight.device)
    view = wm.permute(0, 1, 4, 2, 3) if cl else wm
    torch.mul(weight.unsqueeze(0), coef.reshape(n, cout, cin, 1, 1), out=view)
    return _fused_conv(x, view, noise, up, down, padding, resample_filter, flip_weight, out_gain, bias, impl)


def _fused_conv(x, w, noise, up, down, padding, resample_filter, flip_weight, out_gain, bias, impl, pre_t=False):
    """Grouped conv of [N, Cin, H, W] with per-sample weights [N, Cout, Cin, k, k] (or, with
    ``pre_t``, already transposed for the up-sampling conv: [N*Cin, Cout, k, k])."""
    n = x.shape[0]
    x = x.reshape(1, -1, *x.shape[2:])  # [1, N*Cin, H, W]
    if not pre_t:
        w = w.reshape(-1, *w.shape[2:])  # [N*Cout, Cin, k, k]
    w = w.to(x.dtype)
    if bias is not None and n > 1:
        bias = bias.repeat(n)
    x = conv2d_resample(x, w, resample_filter, up, down, padding, groups=n, flip_weight=flip_weight, impl=impl,
                        bias=bias, w_transposed=pre_t)  # fmt: skip
    x = x.reshape(n, -1, *x.shape[2:])  # [N, Cout, H, W]
    if noise is not None:
        x = x.add_(noise.to(x.dtype), alpha=out_gain) if not x.requires_grad else x + noise * out_gain
    return x
