"""Each training recipe trains a few steps on tiny models and exports a loadable model."""

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.archs import build
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.formats.native import save_checkpoint
from ganeditor.pipelines.train.engine import TrainConfig, train


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    x = np.linspace(0, 8, 48)
    for i in range(3):
        rng = np.random.default_rng(i)
        a = np.sin(x[None, :, None] * (i + 1) + x[:, None, None]) * 100 + 128 + rng.normal(0, 8, (48, 48, 3))
        Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(d / f"{i}.png")
    return d


def test_srgan_psnr_then_gan_stage_validates_and_exports(photos, tmp_path):
    cfg = TrainConfig(
        recipe="srgan", out=str(tmp_path / "run"), data=[str(photos)], steps=4, batch=2, checkpoint_every=4,
        sample_every=4, validate_every=4, precision="fp32", device="cpu",
        options=dict(num_feat=8, num_block=1, crop_size=32, d_feat=8, val=str(photos), val_size=32),
    )  # fmt: skip
    events = list(train(cfg))
    assert "perceptual" not in events[1].losses and "perceptual" in events[2].losses  # switch at step 2
    m = events[-1].metrics
    assert set(m) == {f"val_{k}{s}" for k in ("psnr", "ssim", "psnr_bicubic") for s in ("", "_jpeg30")}
    assert 0 < m["val_ssim"] <= 1 and m["val_psnr_bicubic_jpeg30"] < m["val_psnr_bicubic"]
    ckpt = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert ckpt.primary.arch_name == "msrresnet" and ckpt.meta["stage"] == "gan"
    assert "substitute" in ckpt.meta["perceptual_loss"] or "vgg19" in ckpt.meta["perceptual_loss"]
    out = ckpt.primary(torch.rand(1, 3, 8, 8))
    assert out.shape == (1, 3, 32, 32)


def test_srgan_mix_degradation_draws_clean_jpeg_and_second_order_inputs():
    from ganeditor.pipelines.train.degrade import bicubic_down
    from ganeditor.pipelines.train.srgan import mixed_down

    g = torch.Generator().manual_seed(0)
    hr = torch.rand(1, 3, 48, 48, generator=g).repeat(40, 1, 1, 1)
    rngs = [np.random.default_rng(i) for i in range(40)]
    lr = mixed_down(hr, 4, rngs, clean=0.4, jpeg_only=0.35)
    assert lr.shape == (40, 3, 12, 12) and 0 <= float(lr.min()) and float(lr.max()) <= 1
    clean = (bicubic_down(hr[:1], 4) * 255).round() / 255
    kinds = ["clean" if torch.equal(x, clean[0]) else "other" for x in lr]
    assert 8 <= kinds.count("clean") <= 24  # about 40 % untouched, the rest JPEG'd or second-order degraded
    again = mixed_down(hr, 4, [np.random.default_rng(i) for i in range(40)])
    assert torch.equal(lr, again)  # a function of the per-sample generators: exactly resumable
    from ganeditor.pipelines.train.degrade import jpeg

    low = mixed_down(hr[:1], 4, [np.random.default_rng(7)], clean=0.0, jpeg_only=1.0, jpeg_quality=(20, 20))
    assert torch.equal(low[0], jpeg(clean, 20)[0])  # the JPEG-only inputs take the quality range asked for


def test_srgan_cosine_schedule_anneals_each_stage(photos, tmp_path):
    from ganeditor.pipelines.train.srgan import cosine_lr

    assert cosine_lr(1e-4, 0, 101) == pytest.approx(1e-4)
    assert cosine_lr(1e-4, 50, 101) == pytest.approx(0.505e-4)
    assert cosine_lr(1e-4, 100, 101) == cosine_lr(1e-4, 150, 101) == pytest.approx(1e-6)
    cfg = TrainConfig(
        recipe="srgan", out=str(tmp_path / "run"), data=[str(photos)], steps=4, batch=1, checkpoint_every=4,
        sample_every=0, precision="fp32", device="cpu",
        options=dict(num_feat=8, num_block=1, crop_size=32, d_feat=8, lr_schedule="cosine", lr=1e-3,
                     pretrain_steps=2, total_steps=4),
    )  # fmt: skip
    from ganeditor.pipelines.train.recipe import TrainContext
    from ganeditor.pipelines.train.srgan import SRGANRecipe

    rec = SRGANRecipe(dict(cfg.options), TrainContext(torch.device("cpu")), cfg.data)
    assert [rec.stage_lr(s) for s in range(4)] == pytest.approx([1e-3, 1e-5, 1e-3, 1e-5])
    list(train(cfg))  # trains and exports with the schedule
    assert load_checkpoint(tmp_path / "run" / "model.safetensors").meta["stage"] == "gan"


def test_srgan_fine_tunes_an_esrgan_checkpoint(photos, tmp_path):
    net = build("rrdbnet", num_in_ch=3, num_out_ch=3, scale=4, num_feat=8, num_block=1, num_grow_ch=4)
    save_checkpoint(Checkpoint("t", "t", {"net": net}), tmp_path / "esrgan.safetensors")
    cfg = TrainConfig(
        recipe="srgan", out=str(tmp_path / "run"), data=[str(photos)], steps=2, batch=1, checkpoint_every=2,
        sample_every=0, precision="fp32", device="cpu",
        options=dict(init=str(tmp_path / "esrgan.safetensors"), stage="psnr", crop_size=32),
    )  # fmt: skip
    list(train(cfg))
    tuned = load_checkpoint(tmp_path / "run" / "model.safetensors").primary
    assert tuned.arch_name == "rrdbnet" and tuned.init_kwargs["num_feat"] == 8
    changed = any(not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), net.state_dict().values()))
    assert changed


SG2_TINY = dict(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=32, mapping_layers=2)


def test_stylegan2_trains_with_regularisers_and_fine_tunes_with_wgan_gp(photos, tmp_path):
    opts = dict(SG2_TINY, pl_weight=2.0, pl_interval=2, r1_interval=2, ada=True, ada_speed_images=8)
    cfg = TrainConfig(recipe="stylegan2", out=str(tmp_path / "run"), data=[str(photos)], steps=4, batch=2,
                      checkpoint_every=4, sample_every=4, precision="fp32", device="cpu", options=opts)  # fmt: skip
    events = list(train(cfg))
    assert {"G", "D", "pl", "r1", "ada_p"} <= set(events[0].losses)
    assert events[-1].sample.shape == (4 * 20, 4 * 20, 3)  # 4x4 grid of 16 px + 2 px padding
    ckpt = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert set(ckpt.nets) == {"G_ema", "G", "D"} and ckpt.primary.img_resolution == 16
    assert 0 <= ckpt.meta["ada_p"] <= 1 and ckpt.meta["images_seen"] == 8
    # transfer learning from the exported checkpoint, with the WGAN-GP loss
    cfg2 = TrainConfig(recipe="stylegan2", out=str(tmp_path / "ft"), data=[str(photos)], steps=2, batch=2,
                       checkpoint_every=2, sample_every=0, precision="fp32", device="cpu",
                       options=dict(init=str(tmp_path / "run" / "model.safetensors"), loss="wgan-gp"))  # fmt: skip
    evs = list(train(cfg2))
    assert all(np.isfinite(list(e.losses.values())).all() for e in evs)
    tuned = load_checkpoint(tmp_path / "ft" / "model.safetensors").nets["G"]
    start = ckpt.nets["G"].state_dict()
    assert any(not torch.equal(v, start[k]) for k, v in tuned.state_dict().items())


def test_trained_cyclegan_translates_both_ways_from_the_cli(photos, tmp_path, capsys):
    from ganeditor.cli import main

    cfg = TrainConfig(recipe="cyclegan", out=str(tmp_path / "run"), data=[str(photos), str(photos)], steps=2,
                      batch=1, checkpoint_every=2, sample_every=0, precision="fp32", device="cpu",
                      options=dict(ngf=4, ndf=4, n_blocks=1, crop_size=24, load_size=26, n_layers_d=2))  # fmt: skip
    list(train(cfg))
    model, src = tmp_path / "run" / "model.safetensors", photos / "0.png"
    assert main(["translate", str(model), str(src), str(tmp_path / "ab.png"), "--device", "cpu"]) == 0
    assert main(["translate", str(model), str(src), str(tmp_path / "ba.png"), "--direction", "BtoA", "--device", "cpu"]) == 0
    ab, ba = (np.asarray(Image.open(tmp_path / f)) for f in ("ab.png", "ba.png"))
    assert ab.shape == ba.shape == (48, 48, 3) and not np.array_equal(ab, ba)
    assert main(["translate", str(model), str(src), str(tmp_path / "x.png"), "--net", "G_C"]) == 2
    assert "no network 'G_C'" in capsys.readouterr().err
