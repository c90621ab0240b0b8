"""StyleGAN2 networks and ops: exact against goldens made by the original NVlabs code."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from ganeditor.archs import build, ops
from ganeditor.formats import load_checkpoint

CASES = ["g32_skip", "g64_resnet_cond", "g32_orig_fp16clamp", "g64_skip_gray"]


def to_u8(img: torch.Tensor) -> np.ndarray:
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def seed_inputs(G, seed: int, n: int = 1):
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim))
    c = torch.zeros([n, G.c_dim])
    if G.c_dim:
        c[:, seed % G.c_dim] = 1
    return z, c


@pytest.fixture(scope="module", params=CASES)
def case(request):
    from pathlib import Path

    folder = Path(__file__).parent / "data" / "stylegan2"
    ckpt = load_checkpoint(folder / f"{request.param}.safetensors")
    gold = np.load(folder / f"{request.param}_golden.npz")
    return ckpt, gold


@torch.no_grad()
def test_generator_matches_original(case):
    ckpt, gold = case
    G = ckpt.nets["G_ema"]
    assert ckpt.primary is G
    for i, key in enumerate(gold["keys"]):
        seed_s, psi_s, noise_mode = str(key).split("_")
        z, c = seed_inputs(G, int(seed_s[4:]))
        ws = G.mapping(z, c, truncation_psi=float(psi_s[3:]))
        assert ws.shape == (1, G.num_ws, G.w_dim)
        np.testing.assert_allclose(ws[0].numpy(), gold["ws"][i], rtol=0, atol=1e-6)
        img = G.synthesis(ws, noise_mode=noise_mode)
        diff = np.abs(to_u8(img)[0].astype(int) - gold["img_u8"][i].astype(int))
        assert diff.max() <= 1, f"{key}: 8-bit max diff {diff.max()}"
        assert (diff > 0).mean() < 0.01, f"{key}: {(diff > 0).mean():.3%} of 8-bit values differ"
        if i < len(gold["img_f32"]):
            np.testing.assert_allclose(img[0].numpy(), gold["img_f32"][i], rtol=0, atol=1e-5)
        full = G(z, c, truncation_psi=float(psi_s[3:]), noise_mode=noise_mode)
        torch.testing.assert_close(full, img, rtol=0, atol=1e-6)


@torch.no_grad()
def test_truncation_cutoff_and_batch(case):
    ckpt, gold = case
    G = ckpt.nets["G_ema"]
    z = torch.from_numpy(np.random.RandomState(5).randn(2, G.z_dim))
    c = torch.zeros([2, G.c_dim])
    if G.c_dim:
        c[:, 1] = 1
    ws = G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=2)
    np.testing.assert_allclose(ws.numpy(), gold["ws_cut"], rtol=0, atol=1e-6)
    img = G.synthesis(ws, noise_mode="const")
    np.testing.assert_allclose(img.numpy(), gold["img_cut"], rtol=0, atol=1e-5)
    img_nf = G.synthesis(ws, noise_mode="const", fused_modconv=False, channels_last=False)
    np.testing.assert_allclose(img_nf.numpy(), gold["img_cut"], rtol=0, atol=1e-5)


@torch.no_grad()
def test_discriminator_matches_original(case):
    ckpt, gold = case
    D = ckpt.nets["D"]
    img = torch.from_numpy(np.random.RandomState(7).randn(4, D.img_channels, D.img_resolution, D.img_resolution))
    out = D(img.float() * 0.5, torch.from_numpy(gold["d_c"]))
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out.numpy(), gold["d_out"], rtol=1e-4, atol=1e-6)


@torch.no_grad()
def test_run_blocks_from_cached_activations(case):
    ckpt, _ = case
    syn = ckpt.nets["G_ema"].synthesis
    z, c = seed_inputs(ckpt.nets["G_ema"], 3)
    ws = ckpt.nets["G_ema"].mapping(z, c)
    full = syn(ws, noise_mode="const")
    bws = syn.split_ws(ws)
    x, img = syn.run_blocks(bws, stop=2, noise_mode="const")
    bws[-1] = bws[-1] + 0.0  # later blocks may get edited ws; here unchanged
    _, img2 = syn.run_blocks(bws, x=x, img=img, start=2, noise_mode="const")
    torch.testing.assert_close(img2, full, rtol=0, atol=0)
    assert syn.block_ws_start()[1] == 1 and len(bws) == len(syn.block_resolutions)


def test_describe_and_kwargs_variants():
    # stylegan3-repository style: synthesis kwargs flat, numpy scalars, fused_modconv_default
    G = build("stylegan2-generator", z_dim=np.int64(8), c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
              mapping_kwargs={"num_layers": np.int32(2)}, channel_base=np.int64(128), channel_max=16,
              conv_clamp=256, fused_modconv_default="inference_only")  # fmt: skip
    info = G.describe()
    assert info["resolution"] == 16 and info["num_ws"] == 6 and info["mapping_layers"] == 2
    assert info["channels"] == {"4": 16, "8": 16, "16": 8} and info["conv_clamp"] == 256
    assert G(torch.randn(2, 8), None).shape == (2, 3, 16, 16)
    D = build("stylegan2-discriminator", c_dim=3, img_resolution=16, img_channels=3, channel_base=128,
              channel_max=16, block_kwargs={"freeze_layers": 2})  # fmt: skip
    assert D.describe()["cmap_dim"] == 16
    assert not D.b16.fromrgb.weight.requires_grad and D.b16.conv1.weight.requires_grad
    assert D(torch.randn(2, 3, 16, 16), torch.eye(3)[:2]).shape == (2, 1)


def test_training_mode_gradients_match_fused():
    torch.manual_seed(0)
    G = build("stylegan2-generator", z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
              synthesis_kwargs={"channel_base": 128, "channel_max": 16, "architecture": "resnet"})  # fmt: skip
    for p in G.parameters():
        p.data.normal_()
    ws = torch.randn(3, G.num_ws, G.w_dim, requires_grad=True)
    a = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    b = G.synthesis(ws, noise_mode="const", fused_modconv=True)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    a.square().sum().backward()
    assert ws.grad is not None and torch.isfinite(ws.grad).all()
    assert G.synthesis.b16.conv0.weight.grad is not None


# ---------------------------------------------------------------------------------------------- ops


def test_upfirdn2d_fast_equals_reference():
    rng = random.Random(0)
    torch.manual_seed(0)
    for _ in range(200):
        x = torch.randn(rng.randint(1, 2), rng.randint(1, 3), rng.randint(4, 9), rng.randint(4, 9))
        taps = rng.choice([[1, 3, 3, 1], [1, 2, 1], [1, 1], [1], [1, 4, 6, 4, 1]])
        f = ops.setup_filter(taps, separable=rng.random() < 0.3)
        up = rng.choice([1, 1, 2, 3, [2, 1], [1, 2]])
        down = 1 if up != 1 else rng.choice([1, 2, 3])
        pad = [rng.randint(-1, 4) for _ in range(4)]
        kw = dict(up=up, down=down, padding=pad, flip_filter=rng.random() < 0.5, gain=rng.choice([1, 4, 0.5]))
        try:
            ref = ops.upfirdn2d(x, f, impl="ref", **kw)
        except RuntimeError:  # padded image smaller than the filter: invalid for both paths
            continue
        torch.testing.assert_close(ops.upfirdn2d(x, f, impl="fast", **kw), ref, rtol=1e-5, atol=1e-5)
        xc = x.to(memory_format=torch.channels_last)  # depthwise-conv path for plain filtering
        torch.testing.assert_close(ops.upfirdn2d(xc, f, impl="fast", **kw), ref, rtol=1e-5, atol=1e-5)


def test_resample_helpers_shapes_and_dc_gain():
    f = ops.setup_filter([1, 3, 3, 1])
    torch.testing.assert_close(f, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64)
    x = torch.ones(1, 2, 8, 8)
    up = ops.upsample2d(x, f)
    assert up.shape == (1, 2, 16, 16) and torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1))
    down = ops.downsample2d(x, f)
    assert down.shape == (1, 2, 4, 4) and torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1))
    assert ops.filter2d(x, f).shape == x.shape


@pytest.mark.parametrize("act", list(ops.ACTIVATIONS))
def test_bias_act_fast_equals_reference(act):
    x, b = torch.randn(2, 5, 3, 4), torch.randn(5)
    for kw in (dict(), dict(b=b), dict(b=b, gain=0.7, clamp=0.5), dict(alpha=0.1, clamp=0.0)):
        torch.testing.assert_close(ops.bias_act(x, act=act, **kw), ops.bias_act(x, act=act, impl="ref", **kw))
    assert ops.act_gain("lrelu") == pytest.approx(2**0.5) and ops.act_gain("tanh") == 1


@pytest.mark.parametrize("up,down,k", [(1, 1, 3), (2, 1, 3), (1, 2, 3), (2, 1, 1), (1, 2, 1), (2, 2, 3)])
def test_conv2d_resample_fast_equals_reference(up, down, k):
    torch.manual_seed(1)
    x, w = torch.randn(2, 4, 8, 8), torch.randn(6, 4, k, k)
    f = ops.setup_filter([1, 3, 3, 1])
    for flip in (True, False):
        kw = dict(up=up, down=down, padding=k // 2, flip_weight=flip)
        torch.testing.assert_close(ops.conv2d_resample(x, w, f, impl="fast", **kw),
                                   ops.conv2d_resample(x, w, f, impl="ref", **kw), rtol=1e-4, atol=1e-4)  # fmt: skip
    b = torch.randn(6)
    torch.testing.assert_close(ops.conv2d_resample(x, w, f, up=up, down=down, padding=k // 2, bias=b),
                               ops.conv2d_resample(x, w, f, up=up, down=down, padding=k // 2) + b.reshape(1, -1, 1, 1),
                               rtol=1e-4, atol=1e-4)  # fmt: skip


def test_modulated_conv2d_fused_equals_unfused():
    torch.manual_seed(2)
    x, w, s = torch.randn(3, 4, 8, 8), torch.randn(5, 4, 3, 3), torch.randn(3, 4)
    noise, b = torch.randn(3, 1, 16, 16), torch.randn(5)
    f = ops.setup_filter([1, 3, 3, 1])
    for demod in (True, False):
        kw = dict(noise=noise, up=2, padding=1, resample_filter=f, demodulate=demod, flip_weight=False, out_gain=1.5, bias=b)
        torch.testing.assert_close(ops.modulated_conv2d(x, w, s, fused_modconv=True, **kw),
                                   ops.modulated_conv2d(x, w, s, fused_modconv=False, **kw), rtol=1e-4, atol=1e-4)  # fmt: skip
    y = ops.normalize_2nd_moment(torch.randn(4, 7) * 3)
    torch.testing.assert_close(y.square().mean(1), torch.ones(4))
