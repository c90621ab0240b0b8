"""Workers and lanes: cancel, supersede (stale results never arrive), latest-wins previews,
per-thread inference mode, numpy-only payloads, clean shutdown, and a GUI heartbeat."""

import threading
import time

import numpy as np
import pytest
import torch

from ganeditor.qt.jobs import Job, Lane
from ganeditor.qt.preview import PreviewScheduler
from gui_support import Heartbeat, wait_idle


@pytest.fixture
def lane(qtbot):
    ln = Lane("test")
    yield ln
    assert ln.shutdown(10000)


def spin_job(seconds=30.0, **kw):
    """A job that reports progress until cancelled (or ``seconds`` pass) and returns how far it got."""

    def fn(task):
        t0, i = time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            i += 1
            task.report(i, None, f"tick {i}")
            time.sleep(0.005)
        return i

    return Job(fn, **kw)


def test_result_progress_and_inference_mode_inside_the_worker(qtbot, lane):
    got = {}
    job = Job(lambda task: (task.report(1, 2, "half"), torch.is_inference_mode_enabled(),
                            threading.current_thread() is threading.main_thread())[1:],
              on_result=lambda r: got.setdefault("r", r), on_progress=lambda ev: got.setdefault("msg", ev.message))
    lane.submit(job)
    wait_idle(qtbot, lane)
    assert got["r"] == (True, False)  # inference mode on, and not on the GUI thread
    assert got["msg"] == "half"
    lane.submit(Job(lambda task: torch.is_inference_mode_enabled(), grad=True, on_result=lambda r: got.update(g=r)))
    wait_idle(qtbot, lane)
    assert got["g"] is False
    assert not torch.is_inference_mode_enabled()  # the GUI thread never entered it


def test_user_cancel_stops_quickly_and_the_lane_stays_usable(qtbot, lane):
    events = []
    job = lane.submit(spin_job(on_cancelled=lambda: events.append("cancelled"),
                               on_result=lambda r: events.append("result")))
    qtbot.waitUntil(lambda: job.state == "running", timeout=5000)
    qtbot.wait(100)
    job.cancel()
    qtbot.waitUntil(lambda: events == ["cancelled"], timeout=5000)  # (bench scripts measure the time)
    lane.submit(Job(lambda task: 42, on_result=lambda r: events.append(r)))
    wait_idle(qtbot, lane)
    assert events == ["cancelled", 42]


def test_a_new_job_supersedes_the_old_one_and_its_result_never_arrives(qtbot, lane):
    release = threading.Event()
    seen = []

    def slow(task):
        release.wait(10)
        return "old"  # finishes normally: only the stale flag can stop its delivery

    lane.submit(Job(slow, key="k", on_result=seen.append, on_preview=seen.append))
    qtbot.waitUntil(lambda: lane.current is not None, timeout=5000)
    lane.submit(Job(lambda task: "new", key="k", on_result=seen.append))
    release.set()
    wait_idle(qtbot, lane)
    assert seen == ["new"]


def test_jobs_of_other_keys_queue_behind_each_other(qtbot, lane):
    order = []
    lane.submit(Job(lambda task: time.sleep(0.2) or "a", key="a", on_result=order.append))
    lane.submit(Job(lambda task: "b", key="b", on_result=order.append))
    wait_idle(qtbot, lane)
    assert order == ["a", "b"]


def test_generators_stream_previews_and_tensors_are_refused(qtbot, lane):
    seen, errors = [], []

    def gen(task):
        for i in range(3):
            yield np.full((2, 2), i, np.uint8)
        return "done"

    lane.submit(Job(gen, on_preview=lambda p: seen.append(int(p[0, 0])), on_result=seen.append))
    lane.submit(Job(lambda task: torch.zeros(2), key="t", on_error=errors.append))
    wait_idle(qtbot, lane)
    assert seen == [0, 1, 2, "done"]
    assert errors and "numpy" in str(errors[0])


def test_preview_scheduler_coalesces_and_drops_stale_frames(qtbot, lane):
    gate = threading.Event()
    rendered = []

    def render(params, task):
        gate.wait(10)
        rendered.append(params)
        return params

    sched = PreviewScheduler(lane, render)
    shown = []
    sched.frame.connect(lambda payload, stamp: shown.append((stamp, payload)))
    for v in range(1, 6):  # a fast slider drag: 5 requests while the first render blocks
        sched.request(v)
    gate.set()
    qtbot.waitUntil(lambda: sched.idle and not lane.busy(), timeout=10000)
    assert rendered == [1, 5]  # 2, 3, 4 were never rendered
    assert shown == [(1, 1), (5, 5)]
    assert not sched.accept(3, "stale")  # a frame older than the one on screen is dropped
    assert sched.dropped == 1 and shown[-1] == (5, 5)


def test_shutdown_cancels_and_joins_running_work(qtbot):
    ln = Lane("x")
    job = ln.submit(spin_job())
    qtbot.waitUntil(lambda: job.state == "running", timeout=5000)
    thread = ln._thread
    assert ln.shutdown(5000)
    assert thread.isFinished() and job.stale


def test_gui_thread_keeps_running_while_a_job_runs(qtbot, lane):
    """The work runs on a worker thread (thread identity) and the GUI's 10 ms timer keeps ticking;
    how long the GUI thread may stall is measured by bench/bench_gui_latency.py, not asserted here."""
    threads = []

    def work(task):
        threads.append(threading.current_thread())
        x = torch.randn(160, 160)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:
            x = torch.tanh(x @ x / 160)
            task.report(time.monotonic() - t0, 1.5, "working", image=np.zeros((64, 64, 3), np.uint8))
        return float(x.sum())

    hb = Heartbeat()
    hb.start()
    lane.submit(Job(work))
    wait_idle(qtbot, lane)
    hb.stop()
    assert threads and threads[0] is not threading.main_thread()
    assert hb.ticks > 5


def test_the_job_bar_offers_cancel_only_for_work_that_can_stop(qtbot, lane):
    from ganeditor.qt.job_bar import JobBar

    bar = JobBar(lane)
    qtbot.addWidget(bar)
    housekeeping = lane.submit(spin_job(0.3, key="warmup", label="Preparing engines", cancellable=False))
    qtbot.waitUntil(lambda: bar.job is housekeeping, timeout=5000)
    assert bar.cancel_button.isHidden()
    bar.cancel()  # e.g. Esc: nothing to stop, nothing claimed
    assert not housekeeping.cancelled and "Cancelling" not in bar.label.text()
    work = lane.submit(spin_job(key="scene", label="Upscale"))
    qtbot.waitUntil(lambda: bar.job is work, timeout=10000)
    assert not bar.cancel_button.isHidden()
    bar.cancel()
    assert work.cancelled and "Cancelling Upscale" in bar.label.text()
    wait_idle(qtbot, lane)
