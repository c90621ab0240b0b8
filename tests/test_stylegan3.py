"""StyleGAN3 generator (configs T and R) and the filtered leaky ReLU against the original code.

Goldens in tests/data/stylegan3 were made by NVlabs stylegan3 (see the README there)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.archs import build
from ganeditor.archs import filtered_lrelu as fl
from ganeditor.archs.stylegan3 import Generator, input_transform, make_transform
from ganeditor.formats import load_checkpoint

DATA = Path(__file__).parent / "data" / "stylegan3"


@pytest.fixture(scope="module", params=["t", "r"])
def tiny(request):
    ckpt = load_checkpoint(DATA / f"sg3{request.param}_tiny.safetensors")
    cases = json.loads((DATA / f"sg3{request.param}_cases.json").read_text())
    return request.param, ckpt.primary, cases


def _render(G, case, class_idx, impl="fast"):
    G.synthesis.set_impl(impl)
    z = torch.from_numpy(np.random.RandomState(case["seed"]).randn(1, G.z_dim))
    c = torch.zeros(1, G.c_dim)
    if G.c_dim:
        c[:, class_idx] = 1
    G.synthesis.input.transform.copy_(input_transform(case["translate"], case["rotate"]))
    with torch.inference_mode():
        img = G(z, c, truncation_psi=case["psi"], noise_mode="const")
    return img, (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()


def test_goldens_uint8_within_one(tiny):
    name, G, cases = tiny
    for case in cases["cases"]:
        img, u8 = _render(G, case, cases["class_idx"])
        gold = np.asarray(Image.open(DATA / case["file"]))
        diff = np.abs(u8.astype(int) - gold.astype(int))
        assert diff.max() <= 1, f"{case['file']}: max diff {diff.max()}"
        assert (diff > 0).mean() < 0.01, f"{case['file']}: {(diff > 0).sum()} pixels differ"
        if case["seed"] == 0 and case["psi"] == 1.0:
            ref = np.load(DATA / f"sg3{name}_seed0000_psi1.0_float.npy")
            assert np.abs(img[0].numpy() - ref).max() < 1e-4


def test_reference_impl_matches_golden(tiny):
    name, G, cases = tiny
    case = cases["cases"][3]  # translated, truncated
    _, u8 = _render(G, case, cases["class_idx"], impl="ref")
    G.synthesis.set_impl("fast")
    gold = np.asarray(Image.open(DATA / case["file"]))
    assert np.abs(u8.astype(int) - gold.astype(int)).max() <= 1


def test_state_dict_layout_matches_nvlabs(tiny):
    name, G, cases = tiny
    sd = G.state_dict()
    syn = G.synthesis
    assert syn.layer_names[0].startswith("L0_") and syn.layer_names[-1] == f"L14_64_3"
    assert sd["synthesis.input.transform"].shape == (3, 3)
    assert sd["synthesis.input.freqs"].shape[1] == 2
    assert sd["mapping.w_avg"].shape == (G.w_dim,)
    torgb = syn.layer_names[-1]
    assert f"synthesis.{torgb}.up_filter" not in sd and f"synthesis.{torgb}.down_filter" not in sd  # taps == 1
    kernel = 1 if name == "r" else 3
    assert sd[f"synthesis.{syn.layer_names[0]}.weight"].shape[-1] == kernel
    radial = [n for n in syn.layer_names if sd.get(f"synthesis.{n}.down_filter", torch.zeros(1)).ndim == 2]
    assert radial == (syn.layer_names[:-3] if name == "r" else [])
    assert ("mapping.embed.weight" in sd) == (G.c_dim > 0)
    fresh = build("stylegan3-generator", **cases["init_kwargs"])
    fresh.load_state_dict(sd, strict=True)
    assert G.describe()["architecture"] == f"StyleGAN3-{name.upper()}"
    assert G.describe()["num_ws"] == G.num_ws == 16


def test_filter_design_equals_original_filters(tiny):
    _, G, _ = tiny
    for n in G.synthesis.layer_names:
        layer = getattr(G.synthesis, n)
        for which, taps, cutoff, hw, radial in (
            ("up", layer.up_taps, layer.in_cutoff, layer.in_half_width, False),
            ("down", layer.down_taps, layer.out_cutoff, layer.out_half_width, layer.down_radial),
        ):
            stored = getattr(layer, f"{which}_filter")
            ours = fl.design_lowpass_filter(taps, cutoff, hw * 2, layer.tmp_sampling_rate, radial=radial)
            assert (stored is None) == (ours is None)
            if ours is not None:
                torch.testing.assert_close(ours, stored, atol=2e-7, rtol=1e-5)


def test_batch_equals_single_and_nested_kwargs(tiny):
    _, G, cases = tiny
    kw = dict(cases["init_kwargs"])
    syn_kw = {k: kw.pop(k) for k in list(kw) if k not in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")}
    nested = Generator(**kw, synthesis_kwargs=syn_kw)
    nested.load_state_dict(G.state_dict(), strict=True)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(5))
    c = torch.eye(2, G.c_dim) if G.c_dim else None
    with torch.inference_mode():
        ws = nested.mapping(z, c, truncation_psi=0.5, truncation_cutoff=3)
        both = nested.synthesis(ws)
        one = nested.synthesis(ws[1:])
    assert torch.equal(ws[:, 3], nested.mapping(z, c)[:, 3])  # beyond the cutoff: untruncated
    torch.testing.assert_close(both[1:], one, atol=1e-5, rtol=0)


def test_make_transform():
    m = make_transform((0.25, -0.5), 90)
    np.testing.assert_allclose(m, [[0, 1, 0.25], [-1, 0, -0.5], [0, 0, 1]], atol=1e-12)
    t = input_transform((0.25, -0.5), 90)
    np.testing.assert_allclose(t.double().numpy() @ m, np.eye(3), atol=1e-6)


CASES = [  # up, down, padding, in size, up taps, down taps, radial
    (2, 2, [9, 8, 9, 8], (20, 20), 12, 12, False),
    (4, 2, [-6, -9, -6, -9], (19, 23), 24, 12, False),
    (2, 2, [-11, -12, -11, -12], (30, 30), 12, 12, False),
    (4, 2, [-2, -5, -2, -5], (20, 20), 24, 12, True),
    (2, 2, [11, 10, 11, 10], (20, 21), 12, 12, True),
    (1, 1, 0, (16, 16), 1, 1, False),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("strip", [1 << 22, 300])
def test_filtered_lrelu_fast_equals_reference(case, strip, monkeypatch):
    up, down, padding, (h, w), ut, dt, radial = case
    monkeypatch.setattr(fl, "STRIP_FLOATS", strip)  # many strips: exercise the seams
    monkeypatch.setattr(fl, "MIN_STRIP_ROWS", 1 if strip < 1000 else fl.MIN_STRIP_ROWS)
    g = torch.Generator().manual_seed(up * 100 + h)
    fu = fl.design_lowpass_filter(ut, 2.5, 3.0, 8 * up)
    fd = fl.design_lowpass_filter(dt, 2.5, 3.0, 8 * up, radial=radial)
    x = torch.randn(2, 5, h, w, generator=g) * 3
    b = torch.randn(5, generator=g)
    for clamp, slope, gain in ((2.0, 0.2, math.sqrt(2)), (None, 0.2, math.sqrt(2)), (256.0, 1.0, 1.0)):
        kw = dict(fu=fu, fd=fd, b=b, up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp)
        ref = fl.filtered_lrelu(x, impl="ref", **kw)
        fast = fl.filtered_lrelu(x, **kw)
        assert fast.shape == ref.shape == (2, 5, *fl.out_size(w, h, fu, fd, up, down, padding)[::-1])
        torch.testing.assert_close(fast, ref, atol=5e-6, rtol=1e-5)


def test_radial_filter_matches_scipy_when_available():
    signal = pytest.importorskip("scipy.signal")
    special = pytest.importorskip("scipy.special")
    n, cutoff, width, fs = 24, 5.3, 4.1, 32
    x = (np.arange(n) - (n - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    f = special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    win = np.kaiser(n, signal.kaiser_beta(signal.kaiser_atten(n, width / (fs / 2))))
    f *= np.outer(win, win)
    np.testing.assert_allclose(fl.design_lowpass_filter(n, cutoff, width, fs, radial=True).numpy(), f / f.sum(), atol=1e-7)
    h = signal.firwin(numtaps=n, cutoff=cutoff, width=width, fs=fs)
    np.testing.assert_allclose(fl.design_lowpass_filter(n, cutoff, width, fs).numpy(), h, atol=1e-7)


def test_filtered_lrelu_under_bf16_autocast_filters_in_fp32():
    """The bf16 fast mode filters in fp32 (oneDNN's bf16 depthwise filtering is slower and less exact) and
    gives back the input's dtype."""
    g = torch.Generator().manual_seed(3)
    fu = fl.design_lowpass_filter(12, 2.5, 3.0, 16)
    fd = fl.design_lowpass_filter(12, 2.5, 3.0, 16, radial=True)
    x = (torch.randn(1, 6, 20, 20, generator=g) * 3).to(torch.bfloat16)
    b = torch.randn(6, generator=g).to(torch.bfloat16)
    kw = dict(fu=fu, fd=fd, up=2, down=2, padding=[9, 8, 9, 8], clamp=256.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = fl.filtered_lrelu(x, b=b, **kw)
    assert fast.dtype == torch.bfloat16
    assert torch.equal(fast, fl.filtered_lrelu(x.float(), b=b.float(), **kw).to(torch.bfloat16))
