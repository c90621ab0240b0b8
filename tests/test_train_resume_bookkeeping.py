"""What a resumed run carries on rather than restarts: the training clock (elapsed seconds go on from a
checkpoint's and leave pauses out; images/s and the ETA follow this session's pace; a fake monotonic
clock, so no test here waits) and TensorBoard's events (those after the checkpoint are dropped)."""

import types

import pytest

from ganeditor.core import progress
from ganeditor.core.progress import CancelToken
from ganeditor.pipelines.train import clock as clock_module
from ganeditor.pipelines.train.clock import RunClock, start_elapsed


@pytest.fixture
def now(monkeypatch):
    """A settable stand-in for time.monotonic in the token and the clock."""
    t = [1000.0]
    fake = types.SimpleNamespace(monotonic=lambda: t[0])
    monkeypatch.setattr(progress, "time", fake)
    monkeypatch.setattr(clock_module, "time", fake)
    return t


def test_token_counts_the_seconds_spent_paused(now):
    tok = CancelToken()
    tok.set_paused(True)
    now[0] += 15
    tok.set_paused(True)  # asked twice: still one pause
    now[0] += 5
    tok.set_paused(False)
    now[0] += 100
    assert tok.paused_s() == 20
    tok.set_paused(True)
    now[0] += 2
    assert tok.paused_s() == 22  # the current pause counts too


def test_elapsed_goes_on_from_the_checkpoint_and_leaves_pauses_out(now):
    tok = CancelToken()
    clock = RunClock(tok, start_step=30, start_elapsed=120.0)
    now[0] += 2
    assert clock.tick(31) == 122.0
    tok.set_paused(True)
    now[0] += 600  # a coffee break is not training
    tok.set_paused(False)
    now[0] += 2
    assert clock.tick(32) == 124.0
    ips, eta = clock.pace(32, images_per_step=4, steps=40)
    assert ips == 2.0 and eta == 16.0  # 2 steps in 4 s of this session; 8 steps left
    clock.saved(32)
    assert clock.at(32) == 124.0


def test_the_resumed_elapsed_comes_from_the_checkpoint_else_the_metrics_else_zero():
    records = [{"step": 1, "time": 1.5}, {"step": 2, "time": 3.0}, {"step": 3, "time": 4.5}]
    assert start_elapsed({"step": 2, "elapsed": 3.25}, records, 2) == 3.25
    assert start_elapsed({"step": 2}, records, 2) == 3.0  # a checkpoint written before elapsed was stored
    assert start_elapsed({"step": 2}, [{"step": 1}], 2) == 0.0
    assert start_elapsed(None, records, 0) == 0.0  # a fresh run


def test_a_resume_drops_tensorboard_events_after_the_checkpoint(tmp_path, monkeypatch):
    import sys

    from ganeditor.pipelines.train.run_dir import RunDir

    opened = []

    class Writer:  # stands in for torch.utils.tensorboard.SummaryWriter (tensorboard need not be installed)
        def __init__(self, logdir, purge_step=None):
            opened.append(purge_step)

        def add_scalar(self, *args):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    run = RunDir(tmp_path)
    run.write_config({})
    for step in (1, 2, 3):
        run.log_metrics({"step": step, "time": step * 1.0, "G": 0.5})
    resumed = RunDir(tmp_path)
    resumed.truncate_metrics(2)
    resumed.log_metrics({"step": 3, "time": 2.5, "G": 0.4})
    assert opened == [None, 3]  # the first session's step-3 event is purged, as its metrics.jsonl record is
    assert [r["time"] for r in resumed.read_metrics()] == [1.0, 2.0, 2.5]
