"""Stopping training inside a step: the step is rolled back and the run resumes exactly."""

import json

import pytest
import torch

from ganeditor.core.errors import Cancelled
from ganeditor.core.progress import Task
from ganeditor.pipelines.train import interrupt
from ganeditor.pipelines.train.engine import train
from ganeditor.pipelines.train.interrupt import ModuleChecks, StepGuard, copy_tree
from ganeditor.formats import load_checkpoint
from test_train_engine import _cfg, folders, losses  # noqa: F401 - the fixture

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def _stop_at_once(monkeypatch):
    monkeypatch.setattr(interrupt, "STOP_GRACE_S", 0.0)  # these tests stop at a chosen check, not after a delay


class CancelAfter(Task):
    """Cancels itself ``n`` token checks after ``arm()`` was called (a stop at a precise operation)."""

    def __init__(self):
        super().__init__()
        self.countdown = None
        self.checks_after_arm = 0
        self.checks = 0

    def arm(self, n):
        self.countdown = n

    def check(self):
        self.checks += 1
        if self.countdown is not None:
            self.checks_after_arm += 1
            self.countdown -= 1
            if self.countdown <= 0:
                self.cancel_token.cancel()
        super().check()


@pytest.mark.parametrize("where", [0.25, 0.6, 0.97])
def test_a_stop_inside_a_step_rolls_it_back_and_the_run_resumes_exactly(folders, tmp_path, monkeypatch, where):
    monkeypatch.setattr(interrupt, "SNAPSHOT_SHARE", float("inf"))  # a snapshot before every step, however fast
    kw = dict(steps=4, checkpoint_every=100, sample_every=0)
    per_step = []
    counting = CancelAfter()
    full = []
    for ev in train(_cfg(folders, tmp_path / "full", **kw), counting):
        full.append(ev.step)
        per_step.append(counting.checks)
    assert full == [1, 2, 3, 4]
    ops = per_step[2] - per_step[1]  # checks in step 3 (module calls and their gradients)
    assert ops > 50

    task, seen = CancelAfter(), []
    with pytest.raises(Cancelled):
        for ev in train(_cfg(folders, tmp_path / "cut", **kw), task):
            seen.append(ev.step)
            if ev.step == 2:
                task.arm(int(where * ops))  # stop at that check of step 3 (0.97: after its first optimiser step)
    assert seen == [1, 2] and task.checks_after_arm == int(where * ops)
    ckpts = tmp_path / "cut" / "checkpoints"
    assert (ckpts / "LATEST").read_text() == "step-00000002.state.safetensors"  # the last whole step

    resumed = list(train(_cfg(folders, tmp_path / "cut", **kw), resume=True))
    assert [e.step for e in resumed] == [3, 4]
    assert losses(tmp_path / "cut") == losses(tmp_path / "full")
    a = load_checkpoint(tmp_path / "full" / "model.safetensors").nets["G_A"].state_dict()
    b = load_checkpoint(tmp_path / "cut" / "model.safetensors").nets["G_A"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_stop_with_no_snapshot_since_the_last_save_writes_nothing(folders, tmp_path, monkeypatch):
    monkeypatch.setattr(StepGuard, "_take_snapshot", lambda self, step: None)  # as when snapshots are spaced out
    task = CancelAfter()
    with pytest.raises(Cancelled):
        for ev in train(_cfg(folders, tmp_path / "run", steps=4, checkpoint_every=100, sample_every=0), task):
            if ev.step == 2:
                task.arm(30)
    assert not (tmp_path / "run" / "checkpoints" / "LATEST").exists()  # a half-updated state is never saved
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_the_checks_reach_the_backward_pass_and_its_error_comes_out_of_it():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 3))
    task = CancelAfter()
    with ModuleChecks(task) as checks:
        loss = net(torch.randn(1, 3, 12, 12)).square().mean()
        forward = checks.checks
        assert forward == 4  # the Sequential and its three layers
        task.arm(2)
        with pytest.raises(Cancelled):
            loss.backward()
    assert task.checks_after_arm == 2  # the gradient reached the second-to-last output, then it stopped
    assert net[0].weight.grad is None  # before the gradient reached the first layer
    other = []  # another thread's modules are not checked
    t = __import__("threading").Thread(target=lambda: other.append(net(torch.randn(1, 3, 8, 8)).shape))
    with ModuleChecks(task):
        t.start()
        t.join()
    assert other == [torch.Size([1, 1, 4, 4])]


def test_a_rolled_back_step_leaves_the_state_as_the_snapshot_had_it(monkeypatch):
    monkeypatch.setattr(interrupt, "SNAPSHOT_SHARE", float("inf"))

    class Recipe:
        def __init__(self):
            self.w = torch.zeros(3)
            self.layer = torch.nn.Linear(3, 3)

        def state_dict(self):
            return {"w": self.w, "pool": [self.w + 1]}

        def load_state_dict(self, sd):
            self.w.copy_(sd["w"])

    r, task = Recipe(), CancelAfter()
    guard = StepGuard(task, r, 0)
    guard.step(lambda: r.w.add_(1), 0)
    guard.step(lambda: r.w.add_(1), 1)  # snapshot of step 1 taken first
    first = guard._snapshot["recipe"]["w"].data_ptr()
    task.arm(1)

    def half_step():
        r.w.add_(10)  # done ...
        r.layer(r.w)  # ... and stopped here
    with pytest.raises(Cancelled):
        guard.step(half_step, 2)
    assert guard.stopped_in_step and guard.snapshot_step == 2
    assert r.w.tolist() == [2.0, 2.0, 2.0]  # the +10 was rolled back
    assert guard._snapshot["recipe"]["w"].data_ptr() == first  # snapshots reuse their buffers

    tree = {"a": [torch.ones(2), (torch.zeros(1), "x")], 3: 1.5}
    copied = copy_tree(tree)
    assert copied["a"][0] is not tree["a"][0] and torch.equal(copied["a"][0], tree["a"][0])
    again = copy_tree(tree, copied)
    assert again["a"][0].data_ptr() == copied["a"][0].data_ptr() and again[3] == 1.5


def test_a_step_that_ends_within_the_grace_is_kept(monkeypatch):
    monkeypatch.setattr(interrupt, "STOP_GRACE_S", 60.0)
    layer, task = torch.nn.Linear(2, 2), Task()
    guard = StepGuard(task, None, 10)  # nothing finished since the save at step 10: no snapshot to take

    def step():
        task.cancel_token.cancel()  # the request arrives mid-step ...
        return layer(torch.ones(2)).shape  # ... and the step still runs to its end
    assert guard.step(step, 10) == torch.Size([2]) and not guard.stopped_in_step
    monkeypatch.setattr(interrupt, "STOP_GRACE_S", 0.0)  # once the grace is over, the next module call stops
    with pytest.raises(Cancelled):
        guard.step(lambda: layer(torch.ones(2)), 10)


def test_pause_holds_a_step_at_a_module_and_it_goes_on_from_there():
    import threading

    layer, task, out = torch.nn.Linear(2, 2), Task(), []
    task.cancel_token.set_paused(True)

    def step():
        with ModuleChecks(task):
            try:
                out.append(layer(torch.ones(2)).shape)
            except Cancelled:
                out.append("cancelled")

    t = threading.Thread(target=step)
    t.start()
    t.join(0.5)
    assert t.is_alive() and out == []  # held at the layer's call while paused
    task.cancel_token.set_paused(False)
    t.join(10)
    assert out == [torch.Size([2])]

    task.cancel_token.set_paused(True)
    t = threading.Thread(target=step)
    t.start()
    t.join(0.2)
    task.cancel_token.cancel()  # Stop while paused ends the held step
    t.join(10)
    assert out[-1] == "cancelled"


def test_past_events_stop_at_the_latest_checkpoint(folders, tmp_path):
    from ganeditor.pipelines.train.engine import past_events

    list(train(_cfg(folders, tmp_path / "run", steps=3, checkpoint_every=2, sample_every=0)))
    (tmp_path / "run" / "checkpoints" / "LATEST").write_text("step-00000002.state.safetensors")  # as if killed
    events = past_events(str(tmp_path / "run"))
    assert [e.step for e in events] == [1, 2] and "time" not in events[0].losses
    logged = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert list(events[0].losses) == [k for k in logged if k in events[0].losses] and "G_A" in events[0].losses
    assert past_events(str(tmp_path / "nothing")) == []
