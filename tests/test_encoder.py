"""Inversion encoder: architecture, the 'encoder' training recipe, and encoder/progressive inversion."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ganeditor.archs import build
from ganeditor.cli import main
from ganeditor.core.imageio import read_image
from ganeditor.formats import load_checkpoint
from ganeditor.pipelines.direction_io import generator_fingerprint
from ganeditor.pipelines.invert import ProjectOptions, invert, run_inversion
from ganeditor.pipelines.invert_pti import PTIOptions
from ganeditor.pipelines.invert_loss import PixelSSIMLoss
from ganeditor.pipelines.train.engine import TrainConfig, train

DATA = Path(__file__).parent / "data" / "invert"


def test_untrained_encoder_returns_w_avg():
    E = build("latent-encoder", img_resolution=16, num_ws=6, w_dim=16)
    E.w_avg.copy_(torch.arange(16.0))
    out = E(torch.rand(2, 3, 16, 16) * 2 - 1)
    assert out.shape == (2, 6, 16) and torch.equal(out, torch.arange(16.0).expand(2, 6, 16))
    d = E.describe()
    assert d["num_ws"] == 6 and d["ws_groups"] == [[0, 3], [3, 6]]
    big = build("latent-encoder", img_resolution=64, num_ws=18, w_dim=32)
    assert big(torch.zeros(1, 3, 64, 64)).shape == (1, 18, 32) and len(big.groups) == 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("enc")
    gen = root / "g16.safetensors"
    shutil.copy(DATA / "g16.safetensors", gen)
    photos = root / "photos"
    photos.mkdir()
    from PIL import Image

    Image.open(DATA / "target_seed5.png").resize((24, 24)).save(photos / "a.png")
    cfg = TrainConfig(recipe="encoder", out=str(root / "run"), data=[str(photos)], steps=3, batch=2,
                      checkpoint_every=3, sample_every=3, validate_every=3, precision="fp32", device="cpu",
                      options=dict(generator=str(gen), channel_base=128, channel_max=16, w_stat_samples=500,
                                   lr=1e-3))  # fmt: skip
    events = list(train(cfg))
    return root, gen, events


def test_encoder_recipe_trains_and_exports(trained):
    root, gen, events = trained
    assert [e.step for e in events] == [1, 2, 3]
    assert {"latent", "image", "real", "loss"} <= set(events[-1].losses)
    assert all(np.isfinite(v) for e in events for v in e.losses.values())
    assert events[-1].sample is not None and "val_psnr" in events[-1].metrics
    ck = load_checkpoint(root / "run" / "model.safetensors")
    G = load_checkpoint(gen).primary
    assert list(ck.nets) == ["E"] and ck.nets["E"].arch_name == "latent-encoder"
    assert ck.meta["generator"] == str(gen) and ck.meta["generator_fingerprint"] == generator_fingerprint(G)
    assert torch.allclose(ck.nets["E"].w_avg, G.mapping.w_avg, atol=0.5)


def test_encoder_and_progressive_inversion(trained):
    root, gen, _ = trained
    G = load_checkpoint(gen).primary
    E = load_checkpoint(root / "run" / "model.safetensors").nets["E"]
    target = read_image(DATA / "target_seed5.png").pixels
    enc = run_inversion(invert(G, target, PixelSSIMLoss(), "encoder", E=E))
    assert [s.method for s in enc.stages] == ["encoder"] and enc.ws.shape == (1, 6, 16) and enc.psnr > 5
    order = []
    for up in invert(G, target, PixelSSIMLoss(), "progressive", E=E,
                     projection=ProjectOptions(steps=10), pti=PTIOptions(steps=5)):
        if up.stage_result is not None:
            order.append(up.stage_result.method)
        if up.result is not None:
            res = up.result
    assert order == ["encoder", "wplus", "pti"] and [s.method for s in res.stages] == order
    assert res.stages[1].psnr > enc.psnr and res.G_tuned is not None


def test_encoder_cli_and_wrong_generator(trained, tmp_path, capsys):
    root, gen, _ = trained
    enc = root / "run" / "model.safetensors"
    photo = DATA / "target_seed5.png"
    rc = main(["invert", "--network", str(gen), str(photo), "--outdir", str(tmp_path / "o"), "--method", "encoder",
               "--encoder", str(enc), "--align", "none"])  # fmt: skip
    assert rc == 0 and np.load(tmp_path / "o" / "projected_w.npz")["w"].shape == (1, 6, 16)
    other = build("stylegan2-generator", **load_checkpoint(gen).primary.init_kwargs)
    from ganeditor.formats import Checkpoint
    from ganeditor.formats.native import save_checkpoint

    save_checkpoint(Checkpoint("t", "t", {"G_ema": other}), tmp_path / "other.safetensors")
    capsys.readouterr()
    rc = main(["invert", "--network", str(tmp_path / "other.safetensors"), str(photo), "--outdir", str(tmp_path / "p"),
               "--method", "encoder", "--encoder", str(enc), "--align", "none"])  # fmt: skip
    assert rc == 2 and "trained for another generator" in capsys.readouterr().err


def test_invert_cli_uses_the_encoder_made_for_the_network(trained, tmp_path, capsys):
    root, gen, _ = trained
    net = tmp_path / "mine.safetensors"
    shutil.copy(gen, net)
    photo = DATA / "target_seed5.png"
    capsys.readouterr()
    rc = main(["invert", "--network", str(net), str(photo), "--outdir", str(tmp_path / "a"), "--method", "encoder",
               "--align", "none"])  # fmt: skip
    assert rc == 2 and "needs --encoder" in capsys.readouterr().err
    shutil.copy(root / "run" / "model.safetensors", tmp_path / "mine-encoder.safetensors")
    rc = main(["invert", "--network", str(net), str(photo), "--outdir", str(tmp_path / "b"), "--method", "encoder",
               "--align", "none"])  # fmt: skip
    assert rc == 0 and "encoder: mine-encoder.safetensors" in capsys.readouterr().out
    E = load_checkpoint(tmp_path / "mine-encoder.safetensors").nets["E"]
    from ganeditor.pipelines.invert import encoder_input

    target = torch.from_numpy(np.array(read_image(tmp_path / "b" / "target.png").pixels)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expect = E(encoder_input(E, target)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "b" / "projected_w.npz")["w"], expect, atol=1e-5)
