"""SR architectures (RRDBNet, SRVGGNetCompact, MSRResNet, SR discriminators) and their .pth reader.

Goldens in tests/data/sr_archs were made by the ORIGINAL code (Real-ESRGAN ``RealESRGANer``,
ESRGAN ``test.py``, BasicSR/Real-ESRGAN arch classes) from checkpoints our exporter wrote; see
tests/data/sr_archs/README.md.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.archs import build
from ganeditor.core.errors import CheckpointError, UnsafeCheckpointError
from ganeditor.formats import load_checkpoint, sniff
from writers import torch_pth_export as X
from ganeditor.formats.torch_pth import FORMAT_ID, detect, unwrap

SRVGG = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_conv": 4, "act_type": "prelu"}
RRDB = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 2, "num_grow_ch": 4, "num_upconv": 2}


def _pattern(c: int, h: int, w: int) -> torch.Tensor:
    """The deterministic discriminator input used for the goldens."""
    i = torch.arange(h, dtype=torch.float32).view(h, 1)
    j = torch.arange(w, dtype=torch.float32).view(1, w)
    return torch.stack([torch.sin(i * 0.37 + j * 0.11 + k) for k in range(c)])[None] * 0.5 + 0.5


def _upscale_like_realesrgan(net: torch.nn.Module, png) -> np.ndarray:
    """RealESRGANer conventions (tile 0, pre_pad 0, fp32): RGB / 255 -> net -> clamp(0, 1) * 255, rounded."""
    img = np.asarray(Image.open(png).convert("RGB")).astype(np.float32) / 255
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        y = net(x)[0].float().clamp_(0, 1).numpy()
    return (y.transpose(1, 2, 0) * 255.0).round().astype(np.uint8)


def _max_diff(a: np.ndarray, golden_png) -> int:
    g = np.asarray(Image.open(golden_png).convert("RGB"))
    assert a.shape == g.shape
    return int(np.abs(a.astype(int) - g.astype(int)).max())


CASES = [
    # checkpoint (golden_<name>.png beside it), arch, inferred kwargs, key layout
    ("rrdb_x4_basicsr_ema", "rrdbnet", {**RRDB, "scale": 4}, "BasicSR key names"),
    ("rrdb_x2_basicsr", "rrdbnet", {**RRDB, "scale": 2}, "BasicSR key names"),
    ("rrdb_x1_basicsr", "rrdbnet", {**RRDB, "scale": 1}, "BasicSR key names"),
    ("rrdb_x4_esrgan2019", "rrdbnet", {**RRDB, "scale": 4}, "ESRGAN 2019 key names"),
    ("rrdb_x4_esrgan2018", "rrdbnet", {**RRDB, "scale": 4}, "ESRGAN 2018 key names"),
    ("srvgg_x4", "srvgg", {**SRVGG, "upscale": 4}, None),
    ("srvgg_x2", "srvgg", {**SRVGG, "upscale": 2}, None),
    ("msrresnet_x4", "msrresnet", {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_block": 2, "upscale": 4}, None),
    ("msrresnet_x3", "msrresnet", {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1, "upscale": 3}, None),
]


@pytest.mark.parametrize("name,arch,kwargs,layout", CASES, ids=[c[0] for c in CASES])
def test_sr_matches_original(data_dir, name, arch, kwargs, layout):
    d = data_dir / "sr_archs"
    ckpt = load_checkpoint(d / f"{name}.pth")
    assert ckpt.format_id == "esrgan-pth" and ckpt.primary_role == "net" and list(ckpt.nets) == ["net"]
    net = ckpt.primary
    assert net.arch_name == arch and net.init_kwargs == kwargs
    assert not net.training
    if layout:
        assert ckpt.meta["layout"] == layout and layout in net.describe()["summary"]
    out = _upscale_like_realesrgan(net, d / "input_24x20.png")
    assert _max_diff(out, d / f"golden_{name}.png") <= 1


def test_params_ema_preferred(data_dir):
    path = data_dir / "sr_archs" / "rrdb_x4_basicsr_ema.pth"
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"params", "params_ema"}
    assert not torch.equal(raw["params"]["conv_last.weight"], raw["params_ema"]["conv_last.weight"])
    ckpt = load_checkpoint(path)
    assert torch.equal(ckpt.primary.conv_last.weight, raw["params_ema"]["conv_last.weight"])
    assert "params_ema" in ckpt.meta["container"]


def test_esrgan_layouts_agree(data_dir):
    d = data_dir / "sr_archs"
    a = load_checkpoint(d / "rrdb_x4_esrgan2019.pth").primary.state_dict()
    b = load_checkpoint(d / "rrdb_x4_esrgan2018.pth").primary.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert (d / "rrdb_x4_esrgan2018.pth").read_bytes()[:2] == b"\x80\x02"  # legacy (non-zip) torch.save


def test_describe_is_informative(data_dir):
    net = load_checkpoint(data_dir / "sr_archs" / "rrdb_x4_esrgan2019.pth").primary
    info = net.describe()
    assert info["summary"] == "RRDBNet x4, 2 blocks, 8 features, 4 growth (ESRGAN 2019 key names)"
    assert (info["scale"], info["num_feat"], info["blocks"], info["in_channels"], info["out_channels"]) == (4, 8, 2, 3, 3)
    assert build("srvgg").describe()["summary"] == "SRVGGNetCompact x4, 16 convs, 64 features, prelu"
    assert build("msrresnet", upscale=2).describe()["summary"] == "MSRResNet (SRResNet) x2, 16 blocks, 64 features"


def test_io_conventions():
    for name, kw in [("rrdbnet", {"scale": 2}), ("srvgg", {}), ("msrresnet", {})]:
        net = build(name, **kw)
        assert net.io_convention == "unit" and net.needs_global_stats is False
        assert (net.input_mean, net.input_std) == (0.0, 1.0)
    assert build("rrdbnet", scale=2).scale == 2 and build("rrdbnet", scale=1).size_multiple == 4
    with pytest.raises(AssertionError, match="divisible by 2"):
        build("rrdbnet", scale=2, num_feat=4, num_block=1, num_grow_ch=4)(torch.zeros(1, 3, 5, 6))


@pytest.mark.parametrize(
    "arch,kwargs",
    [
        ("rrdbnet", {"scale": 8, "num_feat": 4, "num_block": 1, "num_grow_ch": 4, "num_upconv": 3}),
        ("rrdbnet", {"scale": 2, "num_feat": 4, "num_block": 1, "num_grow_ch": 4, "num_upconv": 1}),
    ],
)
def test_old_esrgan_scales_round_trip(tmp_path, arch, kwargs):
    torch.manual_seed(0)
    net = build(arch, **kwargs).eval()
    for layout in ("2019", "2018"):
        X.save_esrgan(net, tmp_path / f"{layout}.pth", layout=layout)
        got = load_checkpoint(tmp_path / f"{layout}.pth").primary
        assert got.init_kwargs == {"num_in_ch": 3, "num_out_ch": 3, **kwargs}
        x = torch.rand(1, 3, 8, 8)
        assert torch.equal(got(x), net(x))


def test_discriminators_match_original(data_dir):
    d = data_dir / "sr_archs"
    vgg = load_checkpoint(d / "vgg_discriminator.pth")
    assert vgg.primary_role == "D" and vgg.primary.init_kwargs == {"num_in_ch": 3, "num_feat": 2, "input_size": 128}
    got = vgg.primary(_pattern(3, 128, 128)).detach().numpy()
    np.testing.assert_allclose(got, np.load(d / "golden_vgg_discriminator.npy"), rtol=0, atol=1e-5)
    unet = load_checkpoint(d / "unet_discriminator_sn.pth")
    assert unet.primary.arch_name == "unet-discriminator-sn"
    sd = unet.primary.state_dict()
    assert {"conv1.weight_orig", "conv1.weight_u", "conv1.weight_v"} <= set(sd) and "conv1.weight" not in sd
    got = unet.primary(_pattern(3, 24, 32)).detach().numpy()
    np.testing.assert_allclose(got, np.load(d / "golden_unet_discriminator_sn.npy"), rtol=0, atol=1e-5)


def test_exporter_round_trip_and_module_prefix(tmp_path, data_dir):
    net = load_checkpoint(data_dir / "sr_archs" / "srvgg_x2.pth").primary
    sd = {f"module.{k}": v for k, v in net.state_dict().items()}
    torch.save({"params": sd}, tmp_path / "wrapped.pth")
    got = load_checkpoint(tmp_path / "wrapped.pth").primary
    assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), net.state_dict().values()))
    sd2, where = unwrap(torch.load(tmp_path / "wrapped.pth", weights_only=True))
    assert where == "'params'" and next(iter(sd2)) == "body.0.weight"


def test_rosinality_files_are_left_alone(tmp_path):
    from ganeditor.formats import torch_pth

    p = tmp_path / "stylegan2-ffhq.pth"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2), "input.input": torch.zeros(1)}, "latent_avg": torch.zeros(2)}, p)
    head = p.read_bytes()[:4096]
    assert torch_pth.READER.sniff(p, head) is False
    q = tmp_path / "net.pt"
    torch.save({"params": {"conv_first.weight": torch.zeros(1)}}, q)
    assert torch_pth.READER.sniff(q, q.read_bytes()[:4096]) is True


def test_errors_are_one_line(tmp_path):
    p = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, p)
    assert sniff(p).format_id == FORMAT_ID
    with pytest.raises(CheckpointError, match=r"unknown architecture: not an ESRGAN-family or CycleGAN layout, and "
                       r"none of the \d+ architectures spandrel .* knows matches its keys \(encoder.weight"):
        load_checkpoint(p)
    torch.save([torch.zeros(1)], p)
    with pytest.raises(CheckpointError, match="not an image-to-image model: the file holds a list"):
        load_checkpoint(p)
    torch.save({"params": {"conv_first.weight": torch.zeros(1)}, "args": argparse.Namespace(a=1)}, p)
    with pytest.raises(UnsafeCheckpointError, match="argparse.Namespace") as e:
        load_checkpoint(p)
    assert "\n" not in str(e.value)
    p.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(CheckpointError):
        load_checkpoint(p)


def test_shape_mismatch_is_reported():
    net = build("srvgg", num_feat=8, num_conv=2, upscale=2)
    sd = dict(net.state_dict())
    sd["body.2.weight"] = torch.zeros(8, 8, 1, 1)
    from ganeditor.formats.torch_pth import network_from_state_dict

    with pytest.raises(CheckpointError, match=r"SRVGGNetCompact does not match srvgg: tensor 'body.2.weight' has shape \[8, 8, 1, 1\]"):
        network_from_state_dict(sd)
    assert detect(net.state_dict())[0] == "srvgg"


def test_our_format_round_trip(tmp_path, data_dir):
    from ganeditor.formats.native import save_checkpoint

    for name in ("unet_discriminator_sn.pth", "rrdb_x2_basicsr.pth"):
        ckpt = load_checkpoint(data_dir / "sr_archs" / name)
        save_checkpoint(ckpt, tmp_path / "m.safetensors")
        again = load_checkpoint(tmp_path / "m.safetensors")
        a, b = ckpt.primary.state_dict(), again.primary.state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
