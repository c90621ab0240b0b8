"""Closing the window during each kind of job asks, cancels, joins every worker and returns quickly;
the job bar says "Cancelling…" at once; cancel stops each kind of job within a second."""

import time

import pytest
from PySide6.QtWidgets import QMessageBox

from gui_support import align_portrait, fill_train_form, open_and_wait, write_photo

A = QMessageBox.StandardButton


@pytest.fixture
def window(tiny_window):
    return tiny_window


def start_translate(qtbot, win, tmp_path):
    open_and_wait(qtbot, win, write_photo(tmp_path / "big.png", (2400, 1800)))
    win.scene.run_translate()


def start_upscale(qtbot, win, tmp_path):
    open_and_wait(qtbot, win, write_photo(tmp_path / "big.png", (900, 700)))
    win.scene.run_upscale()


def start_inversion(qtbot, win, tmp_path):
    align_portrait(qtbot, win, tmp_path)
    p = win.portrait
    p.method_box.setCurrentIndex(p.method_box.findData("wplus"))
    p.steps_box.setValue(5000)
    p.invert()


def start_training(qtbot, win, tmp_path):
    fill_train_form(win.train, tmp_path, steps=100000, batch=1)
    win.train.checkpoint_every.setValue(100000)
    win.train.start()


STARTERS = {"translate": start_translate, "upscale": start_upscale, "inversion": start_inversion, "training": start_training}


def running(win, kind):
    lane = win.train_lane if kind == "training" else win.device_lane
    job = lane.current
    return job is not None and job.key in ("scene", "portrait-invert", "train") and job.state == "running"


@pytest.mark.parametrize("kind", list(STARTERS))
def test_closing_during_a_job_asks_then_stops_and_joins_every_thread(qtbot, window, tmp_path, kind):
    win = window
    STARTERS[kind](qtbot, win, tmp_path)
    qtbot.waitUntil(lambda: running(win, kind), timeout=30000)
    if kind == "training":  # past the first step (under load, building the networks takes longer than the wait)
        qtbot.waitUntil(lambda: win.train.last_event is not None, timeout=60000)
    qtbot.wait(300)  # well inside the work
    win.answers = [A.Cancel]
    win.close()
    assert win.isVisible() and running(win, kind)  # "no": the work goes on
    assert "Still running" in win.questions[-1][1] and ("checkpoint" in win.questions[-1][1]) == (kind == "training")
    threads = [ln._thread for ln in (win.device_lane, win.train_lane, win.io_lane) if ln._thread is not None]
    win.answers = [A.Yes, A.Discard]
    t0 = time.monotonic()
    win.close()
    elapsed = time.monotonic() - t0
    assert not win.isVisible()
    assert all(t.isFinished() for t in threads) and threads
    print(f"close during {kind}: {elapsed:.2f} s")
    if kind == "training":
        assert list((tmp_path / "run" / "checkpoints").glob("*")), "stopping training writes a checkpoint"


@pytest.mark.parametrize("kind", ["translate", "upscale", "inversion"])
def test_cancel_shows_cancelling_at_once_and_stops_within_a_second(qtbot, window, tmp_path, kind):
    win = window
    STARTERS[kind](qtbot, win, tmp_path)
    qtbot.waitUntil(lambda: running(win, kind), timeout=30000)
    qtbot.wait(300)
    win.job_bar.cancel_button.click()
    assert "Cancelling" in win.job_bar.label.text() and not win.job_bar.cancel_button.isEnabled()
    t0 = time.monotonic()
    qtbot.waitUntil(lambda: win.device_lane.current is None, timeout=10000)
    print(f"cancel {kind}: {time.monotonic() - t0:.2f} s")
    assert not win.job_bar.isVisible()
    if kind in ("translate", "upscale"):
        assert win.doc.undo_stack.count() == 0  # nothing partial was applied
