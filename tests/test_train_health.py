"""Training health: the statistics against the reference packages, the alarm rules, and a collapsed run."""

import json

import numpy as np
import pytest
import torch
from train_support import collapse_generator_after

from ganeditor.pipelines.train import health as H
from ganeditor.pipelines.train import health_stats as S
from ganeditor.pipelines.train.engine import TrainConfig, train


def _feats(seed, n=300, d=12, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / d**0.5 + torch.eye(d)
    return (torch.randn(n, d, generator=g) @ mix) * scale + shift


def test_frechet_distance_matches_pytorch_fid():
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    a, b = _feats(0).double(), _feats(1, shift=0.3, scale=1.2).double()
    ref = fid_score.calculate_frechet_distance(a.mean(0).numpy(), np.cov(a.numpy(), rowvar=False),
                                               b.mean(0).numpy(), np.cov(b.numpy(), rowvar=False))
    assert S.frechet_distance(a, b) == pytest.approx(ref, rel=1e-7, abs=1e-9)
    assert S.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_kernel_distance_matches_torchmetrics():
    kid = pytest.importorskip("torchmetrics.image.kid")
    a, b = _feats(2, n=120).double(), _feats(3, n=120, shift=0.2).double()
    ref = float(kid.poly_mmd(a, b))  # one subset holding every sample: no sampling involved
    mean, std = S.kernel_distance(a, b, subsets=3, subset_size=120)
    assert mean == pytest.approx(ref, rel=1e-9) and std == pytest.approx(0.0, abs=1e-12)


def test_precision_recall_see_quality_and_dropped_modes():
    g = torch.Generator().manual_seed(0)
    mode_a, mode_b = torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g) + 12
    real = torch.cat([mode_a, mode_b])
    p, r = S.precision_recall(real, torch.randn(400, 4, generator=g))  # every fake in mode A: mode B dropped
    assert p > 0.9 and 0.4 < r < 0.6
    p, r = S.precision_recall(real, torch.randn(400, 4, generator=g) * 0.5 + 30)  # all fakes off the data
    assert p == 0.0 and r == 0.0
    p, r = S.precision_recall(real, torch.cat([torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g) + 12]))
    assert p > 0.9 and r > 0.9


def test_attribute_coverage_flags_a_missing_binary_attribute_and_a_missing_range():
    rng = np.random.default_rng(0)
    real = np.stack([(rng.random(1000) < 0.3).astype(float), rng.random(1000)], 1)
    fake = np.stack([np.zeros(1000) + 0.05, rng.random(1000) * 0.5], 1)  # no glasses; only the lower half
    cov = S.attribute_coverage(real, fake, ["glasses", "age"], binary=["glasses"])
    assert cov["glasses"]["coverage"] == 0.0 and cov["glasses"]["real_share"] == pytest.approx(0.3, abs=0.05)
    assert cov["age"]["coverage"] == 0.0 and cov["age"]["bins"] == 5
    same = S.attribute_coverage(real, real, ["glasses", "age"], binary=["glasses"])
    assert all(c["coverage"] == pytest.approx(1.0) for c in same.values())


def test_alarm_rules():
    healthy = {"feature_space": "attribute-regressor", "recall": 0.5, "precision": 0.6, "diversity": 0.9,
               "coverage/glasses": 0.8}
    assert H.alarms([healthy]) == []
    assert H.alarms([healthy, dict(healthy, recall=0.45)]) == []
    kinds = [a.kind for a in H.alarms([healthy, dict(healthy, recall=0.2)])]
    assert kinds == ["recall"]
    low_cov = dict(healthy, **{"coverage/glasses": 0.1, "coverage/beard": 0.3})
    (a,) = H.alarms([low_cov])
    assert a.kind == "coverage" and "glasses 0.10x" in a.message and "r3gan" in a.advice
    assert H.alarms([dict(low_cov, precision=0.2)]) == []  # images not yet real: no coverage alarm
    assert H.alarms([dict(healthy, diversity=0.3)]) == []  # the first evaluation is exempt
    assert [a.kind for a in H.alarms([healthy, dict(healthy, diversity=0.3)])] == ["diversity"]


def test_fid_inception_matches_pytorch_fid_network():
    pfi = pytest.importorskip("pytorch_fid.inception")
    from ganeditor.pipelines.inception import FIDInception

    torch.manual_seed(0)
    ours = FIDInception()
    for m in ours.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics, so the pooling variants matter
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    sd = ours.net.state_dict()
    orig = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda *a, **k: sd  # the reference builds its net from our random weights
    try:
        ref = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    finally:
        pfi.load_state_dict_from_url = orig
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        assert torch.allclose(ours(x * 2 - 1), ref(x)[0].flatten(1), atol=1e-5)


def test_no_inception_weights_means_a_named_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("GANEDITOR_INCEPTION", str(tmp_path / "missing.pth"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    opts = H.HealthOptions()
    assert H.choose_feature_space(opts, ["world:portraits"], torch.device("cpu")).name == "attribute-regressor"
    assert H.choose_feature_space(opts, [str(tmp_path)], torch.device("cpu")).name == "pixels-16"


def test_alarm_fires_on_a_collapsed_run_in_the_cli_log(tmp_path, monkeypatch, capsys):
    from ganeditor.cli import main

    collapse_generator_after(monkeypatch, images=16)
    out = tmp_path / "run"
    args = ["train", "stylegan2", "--data", "world:portraits", "--out", str(out), "--steps", "6", "--batch", "4",
            "--eval-every", "2", "--eval-count", "48", "--sample-every", "0", "--checkpoint-every", "6",
            "--precision", "fp32", "--device", "cpu", "--set", "resolution=16", "--set", "z_dim=16", "--set", "w_dim=16",
            "--set", "channel_base=256", "--set", "channel_max=32", "--set", "mapping_layers=2"]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "health [attribute-regressor features" in err
    records = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    health = [r for r in records if "feature_space" in r]
    assert [r["step"] for r in health] == [2, 4, 6]
    assert "alarms" not in health[0] and health[0]["diversity"] > 0.5  # healthy before the collapse (step 4)
    assert health[-1]["diversity"] < 0.05
    assert any("diversity collapsed" in a for a in health[-1]["alarms"])
    assert "WARNING Sample diversity collapsed" in err and "Try:" in err


def test_resumed_run_keeps_its_health_history(tmp_path, monkeypatch):
    collapse_generator_after(monkeypatch, images=12)
    cfg = TrainConfig(recipe="stylegan2", out=str(tmp_path / "r"), data=["world:portraits"], steps=2, batch=4,
                      checkpoint_every=2, sample_every=0, precision="fp32", device="cpu", eval_every=2, eval_count=32,
                      options=dict(resolution=16, z_dim=8, w_dim=8, channel_base=128, channel_max=16, mapping_layers=1))
    first = list(train(cfg))
    assert first[-1].metrics["diversity"] > 0.5 and not first[-1].alarms
    cfg.steps = 4
    later = list(train(cfg, resume=True))
    assert [a.kind for a in later[-1].alarms] == ["diversity"]  # judged against the record written before resuming
    assert "best so far" in later[-1].alarms[0].message
    from ganeditor.pipelines.train.engine import past_events

    past = past_events(cfg.out)  # what the Train panel replays when the run is resumed again
    assert [e.step for e in past if e.metrics.get("feature_space")] == [2, 4]
    assert not past[0].alarms and [a.kind for a in past[-1].alarms] == ["diversity"]


def test_eval_images_are_held_out_and_fixed(tmp_path):
    from ganeditor.pipelines.train.data import eval_images
    from ganeditor.pipelines.train.data_worlds import HELDOUT_PORTRAIT_SEED, heldout_spec
    from ganeditor.worlds.portraits import render_portraits

    a = eval_images("world:portraits", 3, 16, "resize")
    imgs, _, _ = render_portraits(range(HELDOUT_PORTRAIT_SEED, HELDOUT_PORTRAIT_SEED + 3), 16)
    assert torch.equal(a, torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1)
    assert heldout_spec("photos:train?short=768") == "photos:heldout?short=768"
    assert heldout_spec(str(tmp_path)) is None and heldout_spec("world:synthetic-night") is None
