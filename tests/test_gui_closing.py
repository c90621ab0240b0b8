"""Closing the window during each kind of job asks, cancels, joins every worker and returns quickly;
the job bar says "Cancelling…" at once; cancel stops each kind of job within a second."""

import time

import pytest
from PIL import Image
from PySide6.QtWidgets import QMessageBox

from ganeditor.worlds.portraits import render_portrait
from gui_support import make_window, open_and_wait, wait_window_idle, write_photo, write_tiny_models

A = QMessageBox.StandardButton


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return write_tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def window(qtbot, tmp_path, models_dir, monkeypatch):
    monkeypatch.setenv("GANEDITOR_MODELS", str(models_dir))
    win = make_window(qtbot, tmp_path, monkeypatch)
    for role, name in (("generator", "tiny-stylegan2"), ("translator", "tiny-cyclegan"), ("upscaler", "tiny-sr")):
        win.models.select(role, name)
    wait_window_idle(qtbot, win)
    yield win
    win.discard_and_close()


def start_upscale(qtbot, win, tmp_path):
    open_and_wait(qtbot, win, write_photo(tmp_path / "big.png", (900, 700)))
    win.scene.run_upscale()


def start_inversion(qtbot, win, tmp_path):
    img, _a, lms = render_portrait(3, 128, return_landmarks=True)
    Image.fromarray(img).save(tmp_path / "face.png")
    open_and_wait(qtbot, win, tmp_path / "face.png")
    p = win.portrait
    p.points_button.setChecked(True)
    for x, y in lms:
        win.view.point_picked.emit(float(x), float(y))
    qtbot.waitUntil(lambda: p.aligned is not None, timeout=20000)
    p.method_box.setCurrentIndex(p.method_box.findData("wplus"))
    p.steps_box.setValue(5000)
    p.invert()


def start_training(qtbot, win, tmp_path):
    t = win.train
    for d, seed in (("A", 0), ("B", 10)):
        (tmp_path / d).mkdir()
        for i in range(3):
            write_photo(tmp_path / d / f"{i}.png", (34, 30), seed + i)
    t.folder_a.edit.setText(str(tmp_path / "A"))
    t.folder_b.edit.setText(str(tmp_path / "B"))
    t.out.edit.setText(str(tmp_path / "run"))
    t.steps.setValue(100000)
    t.batch.setValue(1)
    t.checkpoint_every.setValue(100000)
    t.options.setText('{"ngf": 4, "ndf": 4, "n_blocks": 1, "crop_size": 24, "load_size": 26, "n_layers_d": 2}')
    t.start()


STARTERS = {"upscale": start_upscale, "inversion": start_inversion, "training": start_training}


def running(win, kind):
    lane = win.train_lane if kind == "training" else win.device_lane
    job = lane.current
    return job is not None and job.key in ("scene", "portrait-invert", "train") and job.state == "running"


@pytest.mark.parametrize("kind", list(STARTERS))
def test_closing_during_a_job_asks_then_stops_and_joins_every_thread(qtbot, window, tmp_path, kind):
    win = window
    STARTERS[kind](qtbot, win, tmp_path)
    qtbot.waitUntil(lambda: running(win, kind), timeout=30000)
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


@pytest.mark.parametrize("kind", ["upscale", "inversion"])
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
    if kind == "upscale":
        assert win.doc.undo_stack.count() == 0  # nothing partial was applied
