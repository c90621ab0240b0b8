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
    assert set(m) == {"val_psnr", "val_ssim", "val_psnr_bicubic"} and 0 < m["val_ssim"] <= 1
    ckpt = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert ckpt.primary.arch_name == "msrresnet" and ckpt.meta["stage"] == "gan"
    assert "substitute" in ckpt.meta["perceptual_loss"] or "vgg19" in ckpt.meta["perceptual_loss"]
    out = ckpt.primary(torch.rand(1, 3, 8, 8))
    assert out.shape == (1, 3, 32, 32)


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
