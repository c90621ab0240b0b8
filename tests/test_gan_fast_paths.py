"""Speed paths of the StyleGAN2/3 generators equal their reference paths (fast == reference).

The whole networks are checked against the original NVlabs code in test_stylegan2.py and
test_stylegan3.py; here each fast path is compared with a plain formula on random inputs."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from ganeditor.archs import filtered_lrelu as fl
from ganeditor.archs import ops
from ganeditor.archs import stylegan2_layers as sg2l
from ganeditor.archs import stylegan3 as sg3

CL = torch.channels_last


def _modconv_formula(x, weight, styles, noise, up, padding, f, demodulate, flip_weight, out_gain, bias):
    """StyleGAN2 modulated conv written out: per-sample weights, one reference conv per sample."""
    outs = []
    for j in range(x.shape[0]):
        w = weight * styles[j].reshape(1, -1, 1, 1)
        if demodulate:
            w = w * (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).rsqrt()
        y = ops.conv2d_resample(x[j : j + 1], w, f, up=up, padding=padding, flip_weight=flip_weight, impl="ref")
        if noise is not None:
            y = y + noise
        outs.append(y * out_gain + (bias.reshape(1, -1, 1, 1) if bias is not None else 0))
    return torch.cat(outs)


@torch.no_grad()
@pytest.mark.parametrize("n,up,k,demod,cl", [c for c in itertools.product([1, 3], [1, 2], [1, 3], [True, False], [False, True])
                                             if not (c[1] == 2 and c[2] == 1)])  # fmt: skip
def test_sg2_modulated_conv2d_inference_equals_formula(n, up, k, demod, cl):
    g = torch.Generator().manual_seed(n * 100 + up * 10 + k)
    cin, cout, res = 6, 5, 8
    x = torch.randn(n, cin, res, res, generator=g)
    x = x.to(memory_format=CL) if cl else x
    weight, styles = torch.randn(cout, cin, k, k, generator=g), torch.randn(n, cin, generator=g)
    noise = torch.randn(res * up, res * up, generator=g) if k == 3 else None
    bias = torch.randn(cout, generator=g)
    f = ops.setup_filter([1, 3, 3, 1])
    kw = dict(up=up, padding=k // 2, flip_weight=up == 1, demodulate=demod, out_gain=1.5, bias=bias)
    fast = ops.modulated_conv2d(x, weight, styles, noise=noise, resample_filter=f, fused_modconv=True, **kw)
    ref = _modconv_formula(x, weight, styles, noise, up, k // 2, f, demod, up == 1, 1.5, bias)
    assert fast.shape == ref.shape == (n, cout, res * up, res * up)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=2e-5)
    if cl and n == 1:  # memory format is kept for the next layer (batch 1: no grouped reshape)
        assert fast.is_contiguous(memory_format=CL)


@pytest.mark.parametrize("up,k,demod", [(1, 3, True), (2, 3, True), (1, 1, False)])
def test_sg2_modulated_conv2d_style_gradients_equal_formula(up, k, demod):
    # Frozen weights, styles that need gradients (projection): the cheaper unfused form, same values and gradients.
    g = torch.Generator().manual_seed(up * 10 + k)
    n, cin, cout, res = 2, 6, 5, 8
    x, weight = torch.randn(n, cin, res, res, generator=g), torch.randn(cout, cin, k, k, generator=g)
    s0, noise, bias = torch.randn(n, cin, generator=g), torch.randn(res * up, res * up, generator=g), torch.randn(cout, generator=g)
    f = ops.setup_filter([1, 3, 3, 1])
    grads = []
    for fn in (ops.modulated_conv2d, _modconv_formula):
        styles = s0.clone().requires_grad_(True)
        if fn is ops.modulated_conv2d:
            y = fn(x, weight, styles, noise=noise, up=up, padding=k // 2, resample_filter=f, demodulate=demod,
                   flip_weight=up == 1, fused_modconv=True, out_gain=1.5, bias=bias)  # fmt: skip
        else:
            y = fn(x, weight, styles, noise, up, k // 2, f, demod, up == 1, 1.5, bias)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        grads.append((y.detach(), styles.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-4)


@torch.no_grad()
@pytest.mark.parametrize("cl", [False, True])
def test_upfirdn2d_bias_equals_add_after(cl):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 9, 7, generator=g)
    x = x.to(memory_format=CL) if cl else x
    b = torch.randn(4, generator=g)
    for taps, pad in (([1, 3, 3, 1], [1, 1, 1, 1]), ([1, 2, 1], [2, 0, 1, 1]), ([1], 0)):
        f = ops.setup_filter(taps)
        ref = ops.upfirdn2d(x, f, padding=pad, gain=4, impl="ref") + b.reshape(1, -1, 1, 1)
        torch.testing.assert_close(ops.upfirdn2d(x, f, padding=pad, gain=4, bias=b), ref, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_conv2d_resample_pretransposed_weight_and_fused_bias():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(1, 4, 8, 8, generator=g).to(memory_format=CL)
    w, b = torch.randn(6, 4, 3, 3, generator=g), torch.randn(6, generator=g)
    f = ops.setup_filter([1, 3, 3, 1])
    ref = ops.conv2d_resample(x, w, f, up=2, padding=1, flip_weight=False, impl="ref") + b.reshape(1, -1, 1, 1)
    wt = w.transpose(0, 1).contiguous(memory_format=CL)
    out = ops.conv2d_resample(x, wt, f, up=2, padding=1, flip_weight=False, bias=b, w_transposed=True)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_fully_connected_one_call_equals_formula():
    torch.manual_seed(5)
    x = torch.randn(3, 7)
    for layer in (sg2l.FullyConnectedLayer(7, 4, activation="lrelu", lr_multiplier=0.01, bias_init=0.5),
                  sg2l.FullyConnectedLayer(7, 4, bias_init=1), sg3.FullyConnectedLayer(7, 4, activation="lrelu", lr_multiplier=0.01)):  # fmt: skip
        y = x @ (layer.weight * layer.weight_gain).t() + layer.bias * layer.bias_gain
        if layer.activation == "lrelu":
            y = F.leaky_relu(y, 0.2) * 2**0.5
        torch.testing.assert_close(layer(x), y, rtol=1e-5, atol=1e-6)


def _sg3_modconv_formula(x, w, s, demodulate, padding, input_gain, bias):
    """StyleGAN3 modulated conv in the original's order of operations."""
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    wm = w.unsqueeze(0) * s.reshape(s.shape[0], 1, -1, 1, 1)
    if demodulate:
        wm = wm * (wm.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    wm = wm * input_gain
    return torch.cat([F.conv2d(x[j : j + 1], wm[j], bias, padding=padding) for j in range(x.shape[0])])


@torch.no_grad()
@pytest.mark.parametrize("k,demod,cl", [(1, True, True), (1, False, True), (1, True, False), (3, True, True), (3, True, False)])
def test_sg3_modulated_conv2d_equals_formula(k, demod, cl):
    g = torch.Generator().manual_seed(k + 2 * demod)
    x = torch.randn(2, 6, 7, 7, generator=g)
    x = x.to(memory_format=CL) if cl else x
    w, s, b = torch.randn(5, 6, k, k, generator=g), torch.randn(2, 6, generator=g), torch.randn(5, generator=g)
    gain = torch.tensor(0.8)
    out = sg3.modulated_conv2d(x, w, s, demodulate=demod, padding=k - 1, input_gain=gain, bias=b)
    ref = _sg3_modconv_formula(x.contiguous(), w, s, demod, k - 1, gain, b)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("strip", [1 << 22, 2000])
def test_filtered_lrelu_stacked_radial_terms_equal_reference(strip, monkeypatch):
    # Stacked separable terms of a radial filter (one product per direction), with and without row chunks.
    monkeypatch.setattr(fl, "STRIP_FLOATS", strip)
    monkeypatch.setattr(fl, "MIN_STRIP_ROWS", 1)
    g = torch.Generator().manual_seed(9)
    fu = fl.design_lowpass_filter(24, 2.5, 3.0, 16)
    fd = fl.design_lowpass_filter(12, 2.5, 3.0, 16, radial=True)
    assert len(fl._separable_terms(fd, False)) > 1
    x, b = torch.randn(1, 7, 21, 18, generator=g) * 2, torch.randn(7, generator=g)
    kw = dict(fu=fu, fd=fd, b=b, up=4, down=2, padding=[-2, -5, -2, -5], clamp=256.0)
    ref = fl.filtered_lrelu(x, impl="ref", **kw)
    torch.testing.assert_close(fl.filtered_lrelu(x, **kw), ref, atol=5e-6, rtol=1e-5)
    monkeypatch.setattr(fl, "SVD_REL_TOL", 0.0)  # all terms: the dropped ones are below float32 rounding
    torch.testing.assert_close(fl.filtered_lrelu(x, **kw), ref, atol=5e-6, rtol=1e-5)
