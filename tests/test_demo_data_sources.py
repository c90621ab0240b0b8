"""world:/photos: training data sources and the demo-model make script (tiny runs)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from ganeditor.core.errors import GanEditorError
from ganeditor.formats import load_checkpoint
from ganeditor.pipelines.train import data
from ganeditor.pipelines.train.data import ImageFolder, make_batch, open_source, position_to_index, sample_rng
from ganeditor.worlds.datasets import SceneDataset, to_tensor
from ganeditor.worlds.portraits import render_portraits

MODELS = Path(__file__).resolve().parents[1] / "models"


def _check(t: torch.Tensor, shape: tuple) -> None:
    assert t.dtype == torch.float32 and tuple(t.shape) == shape
    assert -1.0 <= float(t.min()) and float(t.max()) <= 1.0


def test_portraits_are_the_world_portraits_and_deterministic():
    src = open_source("world:portraits?flip=0&offset=5", 32, "resize")
    assert len(src) == 1 << 20
    got = src.get(3, sample_rng(0, 0))
    _check(got, (3, 32, 32))
    imgs, _, _ = render_portraits([8], 32)
    assert torch.equal(got, to_tensor(imgs[0]))
    a = make_batch(src.get, len(src), 7, 2, 6)
    b = make_batch(open_source("world:portraits?flip=0&offset=5", 32, "resize").get, len(src), 7, 2, 6)
    _check(a, (6, 3, 32, 32))
    assert torch.equal(a, b)


def test_prefetch_renders_the_batch_once_and_matches_single_items():
    src = open_source("world:portraits", 16, "resize")
    batch = make_batch(src.get, len(src), 1, 0, 4)
    assert len(src._cache) == 4  # rendered together by prefetch, then cropped/flipped per item
    fresh = open_source("world:portraits", 16, "resize")
    idx = [position_to_index(p, len(fresh), 1) for p in range(4)]
    assert torch.equal(batch, torch.stack([fresh.get(i, sample_rng(1, p)) for p, i in enumerate(idx)]))


def test_scenes_day_night_are_the_unpaired_scene_datasets():
    for time in ("day", "night"):
        src = open_source(f"world:scenes-{time}?n=10&flip=0", 48, "center-crop", 48)
        assert len(src) == 10 and src.seed(3) % 2 == (time == "night")
        got = src.get(3, sample_rng(0, 0))
        _check(got, (3, 48, 48))
        assert torch.equal(got, SceneDataset(10, 48, time)[3])
    day = open_source("world:scenes-day?n=10&flip=0", 48, "center-crop", 48).get(0, sample_rng(0, 0))
    night = open_source("world:scenes-night?n=10&flip=0", 48, "center-crop", 48).get(0, sample_rng(0, 0))
    assert night.mean() < day.mean()


def test_random_crop_is_a_window_of_the_rendered_item():
    src = open_source("world:scenes-day?n=3", 24, "random-crop", 40)
    base = src.base_image(1)
    assert base.shape == (40, 40, 3)
    rng = sample_rng(0, 9)
    got = src.get(1, sample_rng(0, 9))
    top, left = int(rng.integers(0, 17)), int(rng.integers(0, 17))
    win = base[top : top + 24, left : left + 24]
    win = win[:, ::-1] if rng.random() < 0.5 else win
    assert torch.equal(got, to_tensor(win))


def test_cache_respects_its_budget():
    src = open_source("world:portraits?cache_mb=0.01", 16, "resize")  # ~13 items of 768 bytes
    for i in range(40):
        src.base_image(i)
    assert 1 <= len(src._cache) <= 14


def test_spec_errors_and_folders_unchanged(tmp_path):
    with pytest.raises(GanEditorError, match="unknown world 'forest'"):
        open_source("world:forest", 32)
    with pytest.raises(GanEditorError, match="unknown option"):
        open_source("world:portraits?colour=1", 32)
    with pytest.raises(GanEditorError, match="unknown photo split"):
        open_source("photos:test", 32)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    assert isinstance(open_source(str(tmp_path), 16), ImageFolder)


def test_epoch_permutation_is_cached_and_unchanged():
    expected = np.random.default_rng([3, 1]).permutation(50)
    assert [position_to_index(50 + k, 50, 3) for k in range(50)] == expected.tolist()
    assert data._epoch_permutation.cache_info().currsize >= 1


@pytest.fixture
def photo_cache(tmp_path, monkeypatch):
    """A fake gathered-photo cache: 6 natural photos (JPEG and PNG), deterministic split."""
    from ganeditor.worlds import photos

    monkeypatch.setenv("GANEDITOR_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cache" / "photos"
    (root / "files" / "x").mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = []
    names = [f"p{i}" for i in range(40)]
    train = [n for n in names if photos.split_of(f"x/{n}") == "train"][:4]
    held = [n for n in names if photos.split_of(f"x/{n}") == "heldout"][:2]
    for k, n in enumerate(train + held):
        h, w = 120 + 10 * k, 180
        yy, xx = np.mgrid[0:h, 0:w]
        sky = np.stack([100 + 0 * yy, 160 + 0 * yy, 230 + 0 * yy], -1) * (yy < h // 3)[..., None]
        ground = (np.stack([xx % 255, yy % 255, (xx + yy) % 255], -1) * (yy >= h // 3)[..., None])
        img = (sky + ground + rng.integers(0, 20, (h, w, 3))).clip(0, 255).astype(np.uint8)
        ext = "jpg" if k % 2 else "png"
        Image.fromarray(img).save(root / "files" / "x" / f"{n}.{ext}", quality=95)
        files.append({"path": f"files/x/{n}.{ext}", "kind": "natural", "split": photos.split_of(f"x/{n}")})
    (root / "manifest.json").write_text(json.dumps({"version": 1, "files": files}))
    return root


def test_photo_sources(photo_cache):
    src = open_source("photos:train?short=60&scales=1,0.5", 24, "random-crop")
    assert len(src) == 4 * 2
    assert min(src.base_image(0).shape[:2]) == 60 and min(src.base_image(4).shape[:2]) == 30
    a = make_batch(src.get, len(src), 0, 3, 5)
    _check(a, (5, 3, 24, 24))
    assert torch.equal(a, make_batch(open_source("photos:train?short=60&scales=1,0.5", 24).get, len(src), 0, 3, 5))
    big = open_source("photos:heldout?short=4000", 24, "center-crop")
    assert len(big) == 2 and min(big.base_image(0).shape[:2]) in (160, 170)  # never upscaled
    with pytest.raises(GanEditorError, match="not n/offset"):
        open_source("photos:train?n=3", 24)


def test_synthetic_night_source_is_real_photos_turned_night(photo_cache):
    night = open_source("world:synthetic-night?short=60&flip=0", 32, "center-crop")
    day = open_source("photos:train?short=60&flip=0", 32, "center-crop")
    assert len(night) == len(day) == 4
    n0, d0 = night.get(1, sample_rng(0, 0)), day.get(1, sample_rng(0, 0))
    _check(n0, (3, 32, 32))
    assert n0.mean() < d0.mean() - 0.3
    again = open_source("world:synthetic-night?short=60&flip=0", 32, "center-crop").get(1, sample_rng(0, 0))
    assert torch.equal(n0, again)


def _make(argv: list[str]) -> int:
    sys.path.insert(0, str(MODELS))
    try:
        import make_demo_models
    finally:
        sys.path.remove(str(MODELS))
    return make_demo_models.main(argv)


@pytest.mark.parametrize("name,roles", [("portrait-stylegan2", ["G_ema"]), ("daynight-cyclegan", ["G_A", "G_B"]),
                                        ("portrait-stylegan2-encoder", ["E"])])
def test_make_script_trains_exports_fp16_and_writes_card(tmp_path, monkeypatch, name, roles):
    monkeypatch.setenv("GANEDITOR_RUNS", str(tmp_path / "runs"))
    out = tmp_path / "models"
    assert _make([name, "--tiny", "--models-dir", str(out)]) == 0
    path = out / f"{name}.safetensors"
    ck = load_checkpoint(path)
    assert list(ck.nets) == roles and ck.meta["demo_model"] == name and ck.meta["steps"] == 2
    with safe_open(str(path), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    card = (out / f"{name}.md").read_text()
    assert digest in card and "Measured quality" in card and "2 of 2 steps" in card
    run = ck.nets[roles[0]]
    full = load_checkpoint(tmp_path / "runs" / name / "model.safetensors").nets[roles[0]]
    for a, b in zip(run.state_dict().values(), full.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(b.abs().max()) + 1e-6)
    # the export step alone, from the existing run folder, gives the same file
    assert _make([name, "--tiny", "--export-only", "--models-dir", str(out)]) == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_make_script_srgan_tiny_and_missing_run(tmp_path, monkeypatch, photo_cache, capsys):
    monkeypatch.setenv("GANEDITOR_RUNS", str(tmp_path / "runs"))
    out = tmp_path / "models"
    assert _make(["srgan-x4", "--tiny", "--export-only", "--models-dir", str(out)]) == 2
    assert "no model.safetensors" in capsys.readouterr().err
    assert _make(["srgan-x4", "--tiny", "--models-dir", str(out)]) == 0
    ck = load_checkpoint(out / "srgan-x4.safetensors")
    assert list(ck.nets) == ["net"] and ck.nets["net"].arch_name == "msrresnet"
    card = (out / "srgan-x4.md").read_text()
    assert "| bicubic |" in card and "Last in-training validation" in card
    psnr_model = load_checkpoint(out / "srgan-x4-psnr.safetensors")  # the PSNR stage, kept before the GAN stage
    assert psnr_model.meta["stage"] == "psnr" and psnr_model.meta["steps"] == 1
    assert "PSNR-stage model" in card and hashlib.sha256((out / "srgan-x4-psnr.safetensors").read_bytes()).hexdigest() in card


def test_make_script_a_stop_at_the_end_of_the_psnr_stage_is_not_lost(tmp_path, monkeypatch, photo_cache, capsys):
    sys.path.insert(0, str(MODELS))
    try:
        import make_demo_models
    finally:
        sys.path.remove(str(MODELS))
    real_train = make_demo_models.train

    def stop_after_the_psnr_stage(cfg, task, resume=False):  # Ctrl-C arrives just after the stage's last step
        for ev in real_train(cfg, task, resume=resume):
            yield ev
            if ev.step == cfg.options["pretrain_steps"] == cfg.steps:
                task.cancel_token.cancel()

    monkeypatch.setattr(make_demo_models, "train", stop_after_the_psnr_stage)
    monkeypatch.setenv("GANEDITOR_RUNS", str(tmp_path / "runs"))
    out, run = tmp_path / "models", tmp_path / "runs" / "srgan-x4"
    assert _make(["srgan-x4", "--tiny", "--models-dir", str(out)]) == 130
    assert "continue with --resume" in capsys.readouterr().err
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 1 and not (run / "model-psnr.safetensors").exists()  # the GAN stage never started
    assert not (out / "srgan-x4.safetensors").exists()
    assert _make(["srgan-x4", "--tiny", "--resume", "--models-dir", str(out)]) == 0
    assert load_checkpoint(out / "srgan-x4-psnr.safetensors").meta["steps"] == 1
    assert load_checkpoint(out / "srgan-x4.safetensors").meta["steps"] == 2


@pytest.mark.parametrize("name", ["restore-scratches", "restore-colorize"])
def test_make_restoration_models_tiny(tmp_path, monkeypatch, photo_cache, name):
    sys.path.insert(0, str(MODELS))
    try:
        import make_restoration_models
    finally:
        sys.path.remove(str(MODELS))
    monkeypatch.setenv("GANEDITOR_RUNS", str(tmp_path / "runs"))
    out = tmp_path / "models"
    assert make_restoration_models.main([name, "--tiny", "--models-dir", str(out)]) == 0
    path = out / f"{name}.safetensors"
    ck = load_checkpoint(path)
    assert list(ck.nets) == ["net"] and ck.meta["demo_model"] == name and ck.meta["steps"] == 2
    card = (out / f"{name}.md").read_text()
    assert hashlib.sha256(path.read_bytes()).hexdigest() in card and "## Measured (" in card


def test_scene_sources_mix_in_countryside_scenes():
    plain = open_source("world:scenes-night?n=40&flip=0", 32, "center-crop", 32)
    mixed = open_source("world:scenes-night?n=40&flip=0&countryside=0.5", 32, "center-crop", 32)
    same = [torch.equal(plain.get(i, sample_rng(0, 0)), mixed.get(i, sample_rng(0, 0))) for i in range(40)]
    assert 8 <= sum(same) <= 32  # the street items are unchanged, the others are countryside
    with pytest.raises(GanEditorError, match="between 0 and 1"):
        open_source("world:scenes-day?countryside=2", 32)
    with pytest.raises(GanEditorError, match="countryside"):
        open_source("photos:train?countryside=0.5", 24)
