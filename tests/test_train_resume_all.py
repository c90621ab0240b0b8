"""Every recipe resumes exactly: N steps straight == k steps, stop, resume to N (losses and weights)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.core.errors import Cancelled
from ganeditor.core.progress import CancelToken, Task
from ganeditor.formats import load_checkpoint
from ganeditor.pipelines.train.engine import TrainConfig, train

INVERT = Path(__file__).parent / "data" / "invert"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    x = np.linspace(0, 6, 40)
    for name, k in (("A", 1), ("B", 2)):
        (root / name).mkdir()
        for i in range(3):
            rng = np.random.default_rng(i + 10 * k)
            a = np.sin(x[None, :, None] * (i + k) + x[:, None, None]) * 90 + 128 + rng.normal(0, 6, (40, 40, 3))
            Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(root / name / f"{i}.png")
    shutil.copy(INVERT / "g16.safetensors", root / "g16.safetensors")
    return root


RECIPES = {
    "cyclegan": lambda r: ([r / "A", r / "B"], dict(ngf=4, ndf=4, n_blocks=1, crop_size=24, load_size=26, n_layers_d=2)),
    "srgan": lambda r: ([r / "A"], dict(num_feat=8, num_block=1, crop_size=24, d_feat=8, degradation="realistic")),
    "stylegan2": lambda r: ([r / "A"], dict(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=32,
                                            mapping_layers=2, pl_weight=2.0, pl_interval=2, r1_interval=2, ada=True,
                                            ada_speed_images=8)),
    "encoder": lambda r: ([r / "A"], dict(generator=str(r / "g16.safetensors"), channel_base=128, channel_max=16,
                                          w_stat_samples=200)),
    **{name: (lambda r: ([r / "A"], dict(channels=[4, 8], blocks=[1, 1], crop_size=24, d_feat=4, pretrain_steps=2,
                                          val=str(r / "B"), val_size=24, min_chroma=0.0)))
       for name in ("scratches", "inpaint", "restore", "colorize")},  # old-photo restoration
}  # fmt: skip


def _cfg(recipe, root, out, steps):
    data, opts = RECIPES[recipe](root)
    return TrainConfig(recipe=recipe, out=str(out), data=[str(d) for d in data], steps=steps, batch=2,
                       checkpoint_every=2, sample_every=0, log_every=1, precision="fp32", device="cpu",
                       options=dict(opts))  # fmt: skip


def _losses(run):
    rows = [json.loads(ln) for ln in (Path(run) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "images_per_s")} for r in rows]


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_stop_and_resume_equals_straight_run(recipe, folders, tmp_path):
    list(train(_cfg(recipe, folders, tmp_path / "straight", 5)))
    tok = CancelToken()
    with pytest.raises(Cancelled):
        for ev in train(_cfg(recipe, folders, tmp_path / "stopped", 5), Task(cancel=tok)):
            if ev.step == 3:
                tok.cancel()
    list(train(_cfg(recipe, folders, tmp_path / "stopped", 5), resume=True))
    assert _losses(tmp_path / "stopped") == _losses(tmp_path / "straight")
    a = load_checkpoint(tmp_path / "straight" / "model.safetensors")
    b = load_checkpoint(tmp_path / "stopped" / "model.safetensors")
    for role in a.nets:
        sa, sb = a.nets[role].state_dict(), b.nets[role].state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), role


def test_pause_blocks_until_resumed(folders, tmp_path):
    import threading
    import time

    tok = CancelToken()
    steps_seen = []

    def consume():
        for ev in train(_cfg("cyclegan", folders, tmp_path / "p", 3), Task(cancel=tok)):
            steps_seen.append(ev.step)
            if ev.step == 1:
                tok.set_paused(True)

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(1.0)
    assert steps_seen == [1]  # paused after the first step
    tok.set_paused(False)
    t.join(60)
    assert steps_seen == [1, 2, 3]


def _records(run):
    return [json.loads(ln) for ln in (Path(run) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("checkpoint", ["with its elapsed time", "written before it was stored"])
def test_time_goes_on_across_a_resume(checkpoint, folders, tmp_path):
    """metrics.jsonl's ``time`` is the run's seconds of training: after a stop and a resume it goes on from
    the checkpoint's (older checkpoints: from the last record at or before their step), never from 0."""
    from ganeditor.core.state_io import load_state, save_state
    from ganeditor.pipelines.train.run_dir import RunDir

    out, tok = tmp_path / "run", CancelToken()
    with pytest.raises(Cancelled):
        for ev in train(_cfg("cyclegan", folders, out, 6), Task(cancel=tok)):
            if ev.step == 3:
                tok.cancel()
    ckpt = RunDir(out).latest_checkpoint()
    state, meta = load_state(ckpt)
    assert state["step"] == 3 and state["elapsed"] == pytest.approx(_records(out)[-1]["time"], abs=1e-3)
    if checkpoint != "with its elapsed time":
        del state["elapsed"]
        save_state(ckpt, state, meta)
    stopped_at = _records(out)[-1]["time"]
    reports = []
    list(train(_cfg("cyclegan", folders, out, 6), Task(reports.append), resume=True))
    assert (reports[0].done, reports[0].extra) == (3, {"initial": 3})  # progress bars time from step 3
    rows = _records(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    times = [r["time"] for r in rows]
    assert times[2] == stopped_at and times[3] >= stopped_at  # the first resumed step goes on from step 3's
    assert times == sorted(times), times
    assert RunDir(out).load_checkpoint()["elapsed"] == pytest.approx(times[-1], abs=1e-3)
