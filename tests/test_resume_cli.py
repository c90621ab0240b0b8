"""Exact resume through the CLI in the DEFAULT precision (bf16 + channels_last on CPUs with native
bf16): a run SIGKILLed after a checkpoint and continued with ``--resume`` equals the straight run,
bit for bit, in its logged losses and its final weights, for every recipe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganeditor.formats import load_checkpoint
from test_train_resume_all import folders  # noqa: F401  (the same tiny image folders and generator)

STEPS = 8

RECIPES = {
    "cyclegan": (["A", "B"], dict(ngf=4, ndf=4, n_blocks=1, crop_size=24, load_size=26, n_layers_d=2)),
    "srgan": (["A"], dict(num_feat=8, num_block=1, crop_size=24, d_feat=8, degradation="realistic")),
    "stylegan2": (["A"], dict(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=32, mapping_layers=2,
                              pl_weight=2.0, pl_interval=2, r1_interval=2, ada=True, ada_speed_images=8)),
    "encoder": (["A"], dict(generator="g16.safetensors", channel_base=128, channel_max=16, w_stat_samples=200)),
}  # fmt: skip


def _command(recipe: str, root: Path, out: Path, resume: bool = False) -> list[str]:
    data, opts = RECIPES[recipe]
    cmd = [sys.executable, "-m", "ganeditor", "train", recipe, "--out", str(out), "--steps", str(STEPS),
           "--batch", "2", "--checkpoint-every", "2", "--log-every", "1", "--sample-every", "0", "--device", "cpu"]
    if data:
        cmd += ["--data", *(str(root / d) for d in data)]
    for k, v in opts.items():
        cmd += ["--set", f"{k}={root / v if k == 'generator' else json.dumps(v)}"]
    return cmd + (["--resume"] if resume else [])  # no --precision: the default ('auto') is what is tested


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _losses(run: Path) -> list[dict]:
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "images_per_s")} for r in rows]


def _kill_after_first_checkpoint(cmd: list[str], run: Path, sig: int) -> subprocess.CompletedProcess:
    """Start a run and send ``sig`` as soon as its first checkpoint exists (polled every 5 ms)."""
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marker = run / "checkpoints" / "LATEST"
    deadline = time.monotonic() + 300
    while p.poll() is None and not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    if p.poll() is None:
        p.send_signal(sig)
    out, err = p.communicate(timeout=300)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_sigkill_then_resume_is_bit_exact_in_default_precision(recipe, folders, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    r = subprocess.run(_command(recipe, folders, straight), env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((straight / "config.json").read_text())
    k = _kill_after_first_checkpoint(_command(recipe, folders, killed), killed, signal.SIGKILL)
    assert k.returncode == -signal.SIGKILL, (k.returncode, k.stderr)
    assert len(_losses(killed)) < STEPS  # it was stopped before the end
    r = subprocess.run(_command(recipe, folders, killed, resume=True), env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads((killed / "config.json").read_text())["precision"] == cfg["precision"]
    assert _losses(killed) == _losses(straight)
    a = load_checkpoint(straight / "model.safetensors")
    b = load_checkpoint(killed / "model.safetensors")
    for role in a.nets:
        sa, sb = a.nets[role].state_dict(), b.nets[role].state_dict()
        different = [key for key in sa if not torch.equal(sa[key], sb[key])]
        assert not different, (role, different[:3])


def test_sigterm_stops_training_with_a_checkpoint_then_resumes_exactly(folders, tmp_path):
    """SIGTERM is handled like Ctrl-C: a checkpoint at the current step, exit 143 with a message."""
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    r = subprocess.run(_command("srgan", folders, straight), env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    k = _kill_after_first_checkpoint(_command("srgan", folders, stopped), stopped, signal.SIGTERM)
    assert k.returncode == 143, (k.returncode, k.stderr)
    assert "SIGTERM" in k.stderr and "Traceback" not in k.stderr
    r = subprocess.run(_command("srgan", folders, stopped, resume=True), env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert _losses(stopped) == _losses(straight)
