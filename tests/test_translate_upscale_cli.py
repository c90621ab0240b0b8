"""translate / upscale: pipelines against golden outputs of the original code, batch behaviour, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.archs import build
from ganeditor.core.errors import Cancelled, CheckpointError
from ganeditor.core.imageio import read_image, write_image
from ganeditor.core.progress import CancelToken, Task
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.formats.native import save_checkpoint
from ganeditor.pipelines.image2image import Image2ImageOptions, plan_batch, run_batch, translate, upscale

REPO = Path(__file__).resolve().parents[1]


def _save(tmp_path: Path, name: str, role: str, net) -> Path:
    path = tmp_path / f"{name}.safetensors"
    save_checkpoint(Checkpoint("ganeditor", "GAN Editor safetensors", {role: net}, {}), path)
    return path


def _maxdiff(a, b):
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.fixture
def gold(data_dir):
    return data_dir / "image2image"


@pytest.mark.parametrize("tile", [None, 16])
def test_translate_matches_junyanz_golden(gold, tile):
    ckpt = load_checkpoint(gold / "cyclegan_tiny.safetensors")
    img = read_image(gold / "input.png")
    out = translate(ckpt, img, Image2ImageOptions(tile=tile))
    ref = np.asarray(Image.open(gold / "cyclegan_junyanz.png"))
    assert out.pixels.shape == ref.shape and _maxdiff(out.pixels, ref) <= 1


@pytest.mark.parametrize("name, pre_pad", [("realesrgan_prepad0.png", 0), ("realesrgan_prepad10.png", 10)])
def test_upscale_matches_realesrganer_golden(gold, name, pre_pad):
    ckpt = load_checkpoint(gold / "rrdbnet_tiny_x4.safetensors")
    img = read_image(gold / "input.png")
    ref = np.asarray(Image.open(gold / name))
    whole = upscale(ckpt, img, Image2ImageOptions(tile=1000, pre_pad=pre_pad))
    assert _maxdiff(whole.pixels, ref) <= 1
    banded = upscale(ckpt, img, Image2ImageOptions(tile=16, pre_pad=pre_pad))  # exact banded RRDBNet streaming
    assert _maxdiff(banded.pixels, ref) <= 1
    tiled = upscale(ckpt, img, Image2ImageOptions(tile=16, tile_pad=40, pre_pad=pre_pad))  # 2-D tiles covering the tiny net's field
    assert _maxdiff(tiled.pixels, ref) <= 1


def test_upscale_alpha_16bit_outscale(tmp_path):
    torch.manual_seed(0)
    ckpt = Checkpoint("ganeditor", "x", {"net": build("srvgg", num_feat=4, num_conv=1, upscale=2).eval()}, {})
    px = np.random.RandomState(0).randint(0, 65536, (10, 14, 3)).astype(np.uint16)
    alpha = np.full((10, 14), 50000, np.uint16)
    write_image(tmp_path / "in.png", px, alpha, bit_depth=16)
    res = upscale(ckpt, read_image(tmp_path / "in.png"), Image2ImageOptions(outscale=3))
    assert res.pixels.shape == (30, 42, 3) and res.pixels.dtype == np.uint16 and res.bit_depth == 16
    assert res.alpha.shape == (30, 42) and np.all(res.alpha == 50000)


def test_wrong_kind_of_model(tmp_path):
    d = Checkpoint("ganeditor", "x", {"D_A": build("patchgan-discriminator", ndf=4, n_layers=1)}, {}, tmp_path / "d.pth")
    img = read_image(REPO / "tests" / "data" / "images" / "rgb.png")
    with pytest.raises(CheckpointError, match="not an image-to-image model"):
        translate(d, img)
    sr = Checkpoint("ganeditor", "x", {"net": build("srvgg", num_feat=4, num_conv=1)}, {}, tmp_path / "sr.pth")
    with pytest.raises(CheckpointError, match="use 'ganeditor upscale'"):
        translate(sr, img)


def test_cancel_mid_batch_leaves_no_partial_output(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.random.RandomState(i).randint(0, 256, (24, 24, 3)).astype(np.uint8)).save(src / f"{i}.png")
    torch.manual_seed(1)
    ckpt = Checkpoint("ganeditor", "x", {"G_A": build("cyclegan-resnet-generator", ngf=4, n_blocks=1).eval()}, {})
    inputs, outputs = plan_batch(src, tmp_path / "out")
    token = CancelToken()

    def on_progress(ev):
        if ev.done > 1.2:  # inside the second image's tiles
            token.cancel()

    with pytest.raises(Cancelled):
        run_batch(inputs, outputs, lambda img, t: translate(ckpt, img, Image2ImageOptions(tile=8), task=t), Task(on_progress, token, 0))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png"]  # nothing half-written


def _cli(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "ganeditor", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_end_to_end(tmp_path, capsys):
    torch.manual_seed(2)
    g = build("cyclegan-resnet-generator", ngf=4, n_blocks=2).eval()
    cg = _save(tmp_path, "cg", "G_A", g)
    sr = _save(tmp_path, "sr", "net", build("srvgg", num_feat=4, num_conv=1, upscale=4).eval())
    disc = _save(tmp_path, "d", "D_A", build("patchgan-discriminator", ndf=4, n_layers=1))
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        Image.fromarray(np.random.RandomState(i).randint(0, 256, (21, 30, 3)).astype(np.uint8)).save(src / f"{i}.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    r = _cli("translate", cg, src, tmp_path / "out", "--tile", "8", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.splitlines()[-2:] == [
        f"ganeditor: error: {src / 'broken.jpg'}: truncated or damaged image file (Truncated File Read)",
        "ganeditor: 1 of 3 files failed",
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png"]
    direct = translate(Checkpoint("ganeditor", "x", {"G_A": g}, {}), read_image(src / "0.png"))
    assert _maxdiff(np.asarray(Image.open(tmp_path / "out" / "0.png")), direct.pixels[:, :, :]) <= 1
    from ganeditor.cli import main  # the rest in-process: same code path, no interpreter start-up

    capsys.readouterr()
    assert main(["upscale", str(sr), str(src / "0.png"), str(tmp_path / "up.jpg"), "--outscale", "2"]) == 0
    assert Image.open(tmp_path / "up.jpg").size == (60, 42)
    assert main(["upscale", str(disc), str(src / "0.png"), str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err == f"ganeditor: error: {disc}: not an image-to-image model (it holds a patchgan-discriminator network)\n"
    assert not (tmp_path / "x.png").exists()


def test_image_to_image_networks_declare_one_interface():
    from ganeditor.archs.image2image_api import ImageToImageNet
    from ganeditor.pipelines.image2image import tile_options

    nets = {"cyclegan-resnet-generator": dict(ngf=4, n_blocks=1), "rrdbnet": dict(num_feat=4, num_block=1, num_grow_ch=2,
            scale=2), "srvgg": dict(num_feat=4, num_conv=1), "msrresnet": dict(num_feat=4, num_block=1, upscale=3)}
    facts = {}
    for name, kw in nets.items():
        net = build(name, **kw)
        assert isinstance(net, ImageToImageNet) and net.describe()["summary"]
        opts, _ = tile_options(net, Image2ImageOptions(tile=32))
        facts[name] = (net.io_convention, net.scale, opts.mod, opts.global_stats, opts.tile)
    assert facts == {"cyclegan-resnet-generator": ("tanh", 1, 4, True, 32), "rrdbnet": ("unit", 2, 2, False, 32),
                     "srvgg": ("unit", 4, 1, False, 32), "msrresnet": ("unit", 3, 1, False, 32)}
    assert not isinstance(build("patchgan-discriminator", ndf=4, n_layers=1), ImageToImageNet)
    with pytest.raises(TypeError):
        Image2ImageOptions(16)  # keyword-only
