"""rosinality stylegan2-pytorch ``.pt`` checkpoints: exact against goldens made by the original code."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.core.errors import CheckpointError, UnsafeCheckpointError
from ganeditor.formats import rosinality
from ganeditor.formats import load_checkpoint, sniff
from ganeditor.formats.torch_load import torch_load
from ganeditor.pipelines.generate import generate, seed_to_z

# name -> (resolution, z_dim, n_mlp, channels by resolution)
CASES = {
    "g32_cm2_mlp8": (32, 32, 8, {4: 16, 8: 16, 16: 16, 32: 16}),
    "g64_cm1_mlp2": (64, 32, 2, {4: 16, 8: 16, 16: 16, 32: 16, 64: 8}),
    "g128_cm2_mlp4": (128, 32, 4, {4: 16, 8: 16, 16: 16, 32: 16, 64: 16, 128: 8}),
}
SEEDS = (0, 1)
TRUNCS = (1.0, 0.7)


@pytest.fixture(scope="module")
def rdir():
    return Path(__file__).parent / "data" / "rosinality"


@pytest.fixture(scope="module")
def loaded(rdir):
    return {name: load_checkpoint(rdir / f"{name}.pt") for name in [*CASES, "train8_010000"]}


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _synth(G, seed: int, psi: float) -> torch.Tensor:
    with torch.inference_mode():
        z = torch.from_numpy(seed_to_z(seed, G.z_dim))
        return G.synthesis(G.mapping(z, torch.zeros([1, 0]), truncation_psi=psi), noise_mode="const")


def _tag(name: str, seed: int, psi: float) -> str:
    return f"{name}_seed{seed}_t{round(psi * 100):03d}"


@pytest.mark.parametrize("name", list(CASES))
def test_sniff_and_meta(rdir, loaded, name):
    res, z_dim, n_mlp, channels = CASES[name]
    assert sniff(rdir / f"{name}.pt").format_id == "rosinality-pt"
    ckpt = loaded[name]
    assert ckpt.format_id == "rosinality-pt" and list(ckpt.nets) == ["G_ema"]
    G = ckpt.primary
    num_ws = 2 * int(np.log2(res)) - 2
    assert (G.img_resolution, G.z_dim, G.w_dim, G.c_dim, G.num_ws) == (res, z_dim, z_dim, 0, num_ws)
    m = ckpt.meta
    assert (m["resolution"], m["z_dim"], m["n_mlp"]) == (res, z_dim, n_mlp)
    assert m["channels"] == {str(r): c for r, c in channels.items()}
    assert m["w_avg_source"] == {"G_ema": "latent_avg"} and m["has_discriminator"] is False


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("psi", TRUNCS)
@pytest.mark.parametrize("seed", SEEDS)
def test_images_match_original(rdir, loaded, name, seed, psi):
    """Our pipeline on the converted file == rosinality's own 8-bit output (within 1)."""
    G = loaded[name].primary
    (_, img), = generate(G, [seed], truncation_psi=psi)
    ref = _png(rdir / f"{_tag(name, seed, psi)}.png")
    diff = np.abs(img.astype(int) - ref.astype(int))
    assert img.shape == ref.shape and diff.max() <= 1, f"max 8-bit diff {diff.max()}"
    assert (diff > 0).mean() < 0.01  # rounding ties only


@pytest.mark.parametrize("name", ["g32_cm2_mlp8", "g64_cm1_mlp2"])
def test_float_output_matches_original(rdir, loaded, name):
    """Raw [-1, 1] output against the original's float output (seed 0, truncation 0.7)."""
    ref = np.load(rdir / f"{_tag(name, 0, 0.7)}.npy")
    ours = _synth(loaded[name].primary, 0, 0.7)[0].numpy()
    assert np.abs(ours - ref).max() < 2e-5


@pytest.mark.parametrize("name", list(CASES))
def test_writer_round_trip(tmp_path, rdir, loaded, name):
    """Reading then writing gives back the same tensors, keys and key order (rosinality's)."""
    out = tmp_path / "rt.pt"
    rosinality.save_rosinality_pt(out, loaded[name].primary)
    a = torch.load(rdir / f"{name}.pt", weights_only=True)
    b = torch.load(out, weights_only=True)
    assert list(a) == list(b) == ["g_ema", "latent_avg"]
    assert list(a["g_ema"]) == list(b["g_ema"])
    for k, v in a["g_ema"].items():
        assert torch.equal(v, b["g_ema"][k]), k
    assert torch.equal(a["latent_avg"], b["latent_avg"])


def test_train_checkpoint_with_args(rdir, loaded):
    """A train.py snapshot (g, d, g_ema, optimisers, argparse args, ada_aug_p), no latent_avg."""
    path = rdir / "train8_010000.pt"
    with pytest.raises(Exception, match="argparse.Namespace"):
        torch.load(path, weights_only=True)  # what a plain safe load says
    ckpt = loaded["train8_010000"]
    assert set(ckpt.nets) >= {"G_ema", "G"} and ckpt.primary_role == "G_ema"
    m = ckpt.meta
    assert m["train_args"]["size"] == 8 and m["train_args"]["arch"] == "stylegan2"
    assert m["ada_aug_p"] == 0.125 and m["has_discriminator"] is True
    assert m["w_avg_source"]["G_ema"].startswith("computed: mean of 4096")
    for role, tag in (("G_ema", "train8_gema"), ("G", "train8_g")):
        for seed in SEEDS:
            (_, img), = generate(ckpt.nets[role], [seed])
            ref = _png(rdir / f"{_tag(tag, seed, 1.0)}.png")
            assert np.abs(img.astype(int) - ref.astype(int)).max() <= 1, (role, seed)
            ours = _synth(ckpt.nets[role], seed, 1.0)[0].numpy()
            assert np.abs(ours - np.load(rdir / f"{_tag(tag, seed, 1.0)}.npy")).max() < 2e-5
    G = ckpt.nets["G_ema"]
    assert torch.allclose(G.mapping.w_avg, rosinality.mean_w(G), atol=0)


def test_train_checkpoint_discriminator(rdir, loaded):
    ckpt = loaded["train8_010000"]
    if "D" not in ckpt.nets:
        pytest.skip("no StyleGAN2 discriminator architecture registered")
    assert ckpt.meta["discriminator_loaded"] is True
    x = torch.from_numpy(np.load(rdir / "train8_d_in.npy"))
    with torch.inference_mode():
        y = ckpt.nets["D"](x, torch.zeros([4, 0]))
    np.testing.assert_allclose(y.numpy(), np.load(rdir / "train8_d_out.npy"), atol=2e-5, rtol=0)


def _resave(tmp_path, rdir, name, edit, **save_kw):
    obj = torch_load(rdir / f"{name}.pt", allow=[argparse.Namespace])
    edit(obj)
    out = tmp_path / f"edited_{name}.pt"
    torch.save(obj, out, **save_kw)
    return out


def test_missing_key_is_one_line_error(tmp_path, rdir):
    path = _resave(tmp_path, rdir, "g64_cm1_mlp2", lambda o: o["g_ema"].pop("convs.3.noise.weight"))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "missing key 'convs.3.noise.weight'" in msg and str(path) in msg and "\n" not in msg


def test_wrong_shape_and_unknown_key(tmp_path, rdir):
    def bad_shape(o):
        o["g_ema"]["style.2.bias"] = torch.zeros(5)

    with pytest.raises(CheckpointError, match=r"'style.2.bias' has shape \[5\], expected \[32\]"):
        load_checkpoint(_resave(tmp_path, rdir, "g64_cm1_mlp2", bad_shape))

    def extra(o):
        o["g_ema"]["convs.9.something"] = torch.zeros(1)

    with pytest.raises(CheckpointError, match="unexpected key 'convs.9.something'"):
        load_checkpoint(_resave(tmp_path, rdir, "g64_cm1_mlp2", extra))


class NotAllowed:
    """A class the safe loader must refuse to import."""


def test_unsafe_global_is_refused(tmp_path, rdir):
    path = _resave(tmp_path, rdir, "g32_cm2_mlp8", lambda o: o.update(evil=NotAllowed()))
    with pytest.raises(UnsafeCheckpointError, match="NotAllowed"):
        load_checkpoint(path)


def test_legacy_serialization_and_bare_state_dict(tmp_path, rdir, loaded):
    """Old (non-zip) torch files and a bare ``g_ema.state_dict()`` file load the same."""
    ref = _synth(loaded["g32_cm2_mlp8"].primary, 1, 1.0)
    legacy = _resave(tmp_path, rdir, "g32_cm2_mlp8", lambda o: None, _use_new_zipfile_serialization=False)
    assert open(legacy, "rb").read(2) == b"\x80\x02"
    assert torch.equal(_synth(load_checkpoint(legacy).primary, 1, 1.0), ref)
    bare = tmp_path / "bare.pt"
    torch.save(torch_load(rdir / "g32_cm2_mlp8.pt", allow=[argparse.Namespace])["g_ema"], bare)
    ckpt = load_checkpoint(bare)
    assert ckpt.meta["w_avg_source"]["G_ema"].startswith("computed")
    assert torch.equal(_synth(ckpt.primary, 1, 1.0), ref)  # psi 1 does not use w_avg


def test_other_torch_files_are_not_claimed(tmp_path):
    p = tmp_path / "esrgan.pth"
    torch.save({"params": {"conv_first.weight": torch.zeros(1)}}, p)
    assert not rosinality._sniff(p, p.read_bytes()[:4096])
    t = tmp_path / "trunc.pt"
    buf = io.BytesIO()
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2), "input.input": 0, "conv1.conv.weight": 0}}, buf)
    t.write_bytes(buf.getvalue()[:-100])
    with pytest.raises(CheckpointError):
        load_checkpoint(t)


def test_namespace_allowed_only_inside_loader():
    buf = io.BytesIO()
    torch.save({"args": argparse.Namespace(a=1)}, buf)
    buf.seek(0)
    with pytest.raises(Exception, match="argparse.Namespace"):
        torch.load(buf, weights_only=True)


def test_channel_formula_reproduces_rosinality_widths():
    """min(base // res, max) expresses channel_multiplier 1 and 2 up to 1024 px; 4 is refused clearly."""
    for cm, base in ((1, 16384), (2, 32768)):
        widths = {r: 512 if r <= 32 else 16384 * cm // r for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)}
        kw = rosinality.channel_kwargs(widths)
        assert kw is not None
        assert all(min(kw["channel_base"] // r, kw["channel_max"]) == c for r, c in widths.items())
        assert rosinality.channel_multiplier(widths) == cm and kw["channel_max"] == 512
        if cm == 2:
            assert kw == {"channel_base": base, "channel_max": 512}
    widths = {r: 512 if r <= 32 else 16384 * 4 // r for r in (4, 8, 16, 32, 64, 128)}
    assert rosinality.channel_kwargs(widths) is None
    cfg = {"size": 128, "style_dim": 512, "n_mlp": 8, "channels": widths}
    with pytest.raises(CheckpointError, match="cannot be expressed"):
        rosinality.generator_kwargs(cfg)


def test_writer_refuses_layouts_rosinality_cannot_hold():
    from ganeditor.archs import build

    kw = dict(z_dim=8, w_dim=8, img_resolution=8, img_channels=3)
    with pytest.raises(CheckpointError, match="unconditional RGB"):
        rosinality.rosinality_state_dict(build("stylegan2-generator", c_dim=2, **kw))
    with pytest.raises(CheckpointError, match="'skip' generator"):
        G = build("stylegan2-generator", c_dim=0, synthesis_kwargs={"architecture": "resnet"}, **kw)
        rosinality.rosinality_state_dict(G)
    with pytest.raises(CheckpointError, match="lr_multiplier 0.01"):
        G = build("stylegan2-generator", c_dim=0, mapping_kwargs={"lr_multiplier": 1}, **kw)
        rosinality.rosinality_state_dict(G)


def test_convert_to_our_format_keeps_output(tmp_path, loaded):
    from ganeditor.formats.native import save_checkpoint

    ckpt = loaded["train8_010000"]
    save_checkpoint(ckpt, tmp_path / "m.safetensors")
    back = load_checkpoint(tmp_path / "m.safetensors")
    assert set(back.nets) == set(ckpt.nets) and back.meta["train_args"]["size"] == 8
    for role in ("G_ema", "G"):
        assert torch.equal(_synth(back.nets[role], 3, 0.5), _synth(ckpt.nets[role], 3, 0.5))


def test_cli_generate_matches_original(tmp_path, rdir):
    from ganeditor.cli import main

    net = rdir / "g64_cm1_mlp2.pt"
    argv = ["generate", "--network", str(net), "--seeds", "1", "--trunc", "0.7", "--outdir", str(tmp_path)]
    assert main([*argv, "--device", "cpu"]) == 0
    ours = _png(tmp_path / "seed0001.png")
    ref = _png(rdir / f"{_tag('g64_cm1_mlp2', 1, 0.7)}.png")
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1
