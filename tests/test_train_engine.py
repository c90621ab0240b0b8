"""The training engine: exact resume after SIGKILL, cancel, NaN, bad input, disk full, torchrun."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.core.errors import Cancelled, GanEditorError
from ganeditor.core.progress import CancelToken, Task
from ganeditor.formats import load_checkpoint
from ganeditor.pipelines.train.engine import TrainConfig, train

TINY = ["--set", "ngf=4", "--set", "ndf=4", "--set", "n_blocks=1", "--set", "crop_size=24",
        "--set", "load_size=26", "--set", "n_layers_d=2"]  # fmt: skip
TINY_OPTS = dict(ngf=4, ndf=4, n_blocks=1, crop_size=24, load_size=26, n_layers_d=2)
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


@pytest.fixture
def folders(tmp_path):
    for d, scale in (("A", 1.0), ("B", 0.4)):
        (tmp_path / d).mkdir()
        for i in range(5):
            rng = np.random.default_rng(i + (100 if d == "B" else 0))
            Image.fromarray((rng.random((30, 34, 3)) * 255 * scale).astype(np.uint8)).save(tmp_path / d / f"{i}.png")
    return tmp_path / "A", tmp_path / "B"


def cli(*args):
    return [sys.executable, "-m", "ganeditor", "train", "cyclegan", *map(str, args)]


def losses(run_dir):
    rows = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "images_per_s")} for r in rows]


def test_resume_after_sigkill_gives_identical_losses(folders, tmp_path):
    a, b = folders
    common = ["--data", a, b, "--steps", 10, "--batch", 2, "--checkpoint-every", 2, "--log-every", 1,
              "--sample-every", 0, "--precision", "fp32", "--device", "cpu", *TINY]  # fmt: skip
    full = tmp_path / "full"
    subprocess.run(cli("--out", full, *common), check=True, env=ENV, capture_output=True, timeout=300)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cli("--out", killed, *common), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = killed / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 5:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(metrics.read_text().splitlines())
    assert n_before < 10, "the run finished before it could be killed"
    r = subprocess.run(cli("--out", killed, "--resume", "--data", a, b), env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert losses(killed) == losses(full)
    assert len(losses(full)) == 10
    sd_full = load_checkpoint(full / "model.safetensors").nets["G_A"].state_dict()
    sd_res = load_checkpoint(killed / "model.safetensors").nets["G_A"].state_dict()
    assert all((sd_full[k] == sd_res[k]).all() for k in sd_full)


def test_ctrl_c_writes_a_checkpoint_at_the_step_it_stopped(folders, tmp_path):
    a, b = folders
    run = tmp_path / "run"
    args = ["--out", run, "--data", a, b, "--steps", 100000, "--batch", 1, "--checkpoint-every", 100000,
            "--log-every", 1, "--sample-every", 0, "--precision", "fp32", "--device", "cpu", *TINY]  # fmt: skip
    proc = subprocess.Popen(cli(*args), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "keeping the last whole step" in err
    latest = (run / "checkpoints" / "LATEST").read_text()
    step = int(latest.split("-")[1].split(".")[0])
    assert step >= 3 and step == json.loads(metrics.read_text().splitlines()[-1])["step"]
    assert f"checkpoint at step {step} in {run}" in err


def _cfg(folders, out, **kw):
    a, b = folders
    base = dict(recipe="cyclegan", out=str(out), data=[str(a), str(b)], steps=6, batch=2, checkpoint_every=2,
                sample_every=3, log_every=1, precision="fp32", device="cpu", options=dict(TINY_OPTS))
    base.update(kw)
    return TrainConfig(**base)


def test_cancel_writes_a_checkpoint_and_events_carry_samples(folders, tmp_path):
    tok = CancelToken()
    events = []
    with pytest.raises(Cancelled):
        for ev in train(_cfg(folders, tmp_path / "run"), Task(cancel=tok)):
            events.append(ev)
            if ev.step == 3:
                tok.cancel()
    assert [e.step for e in events] == [1, 2, 3]
    assert events[2].sample is not None and events[2].sample.dtype == np.uint8
    assert (tmp_path / "run" / "checkpoints" / "LATEST").read_text() == "step-00000003.state.safetensors"
    assert (tmp_path / "run" / "samples" / "step-00000003.png").is_file()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(folders, tmp_path, monkeypatch):
    from ganeditor.pipelines.train.cyclegan import CycleGANRecipe

    real_step = CycleGANRecipe.train_step

    def step(self, i, n):
        out = real_step(self, i, n)
        return {**out, "cycle_A": float("nan")} if i == 4 else out

    monkeypatch.setattr(CycleGANRecipe, "train_step", step)
    with pytest.raises(GanEditorError, match=r"diverged at step 5: cycle_A is nan; last good checkpoint kept: step-00000004"):
        list(train(_cfg(folders, tmp_path / "run")))
    assert (tmp_path / "run" / "checkpoints" / "LATEST").read_text() == "step-00000004.state.safetensors"


def test_resume_refuses_other_recipe_and_changed_architecture(folders, tmp_path):
    list(train(_cfg(folders, tmp_path / "run", steps=2)))
    with pytest.raises(GanEditorError, match="holds a 'cyclegan' run"):
        list(train(TrainConfig(recipe="srgan", out=str(tmp_path / "run")), resume=True))
    cfg = _cfg(folders, tmp_path / "run", steps=4)
    cfg.options["ngf"] = 8
    with pytest.raises(GanEditorError, match="cannot resume with ngf=8"):
        list(train(cfg, resume=True))
    with pytest.raises(GanEditorError, match="already has checkpoints"):
        list(train(_cfg(folders, tmp_path / "run")))


def test_bad_data_folders(folders, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanEditorError, match="no images found"):
        list(train(_cfg(folders, tmp_path / "r1", data=[str(tmp_path / "empty"), str(folders[1])])))
    with pytest.raises(GanEditorError, match="data folder not found"):
        list(train(_cfg(folders, tmp_path / "r2", data=[str(tmp_path / "nope"), str(folders[1])])))
    (folders[0] / "broken.png").write_bytes(b"\x89PNG not really")
    evs = list(train(_cfg(folders, tmp_path / "r3", steps=4)))
    assert evs[-1].done


def test_disk_full_keeps_previous_checkpoint(folders, tmp_path, monkeypatch):
    import ganeditor.pipelines.train.run_dir as rd

    real = rd.save_state
    calls = []

    def flaky(path, state, md=None):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(path, state, md)

    monkeypatch.setattr(rd, "save_state", flaky)
    with pytest.raises(GanEditorError, match="No space left on device.*step-00000002.state.safetensors is intact"):
        list(train(_cfg(folders, tmp_path / "run")))
    assert (tmp_path / "run" / "checkpoints" / "LATEST").read_text() == "step-00000002.state.safetensors"
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["LATEST", "step-00000002.state.safetensors"]


def test_torchrun_two_gloo_processes_match_one_process(folders, tmp_path):
    a, b = folders
    common = ["--data", a, b, "--steps", 3, "--batch", 2, "--checkpoint-every", 3, "--log-every", 1,
              "--sample-every", 0, "--eval-every", 0, "--precision", "fp32", "--device", "cpu", "--set", "pool_size=0",
              *TINY]  # fmt: skip
    one = tmp_path / "one"
    subprocess.run(cli("--out", one, *common), check=True, env=ENV, capture_output=True, timeout=300)
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "ganeditor", "train", "cyclegan", "--out", str(two), *map(str, common)]  # fmt: skip
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    l1, l2 = losses(one), losses(two)
    assert [x["step"] for x in l2] == [1, 2, 3]
    for x, y in zip(l1, l2):
        for k in x:
            assert y[k] == pytest.approx(x[k], rel=1e-4, abs=1e-5), k
    g1 = load_checkpoint(one / "model.safetensors").nets["G_A"].state_dict()
    g2 = load_checkpoint(two / "model.safetensors").nets["G_A"].state_dict()
    # Adam normalises updates, so elements whose gradient is ~0 may move by up to lr per step either
    # way from float-rounding differences; on average the two runs agree closely.
    diffs = torch.cat([(g1[k] - g2[k]).abs().flatten() for k in g1])
    assert float(diffs.mean()) < 2e-5 and float(diffs.max()) < 3 * 2e-4 * 3
