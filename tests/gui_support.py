"""Shared helpers for the GUI tests: tiny models written to a folder, a window factory, waiting."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from ganeditor.archs import build
from ganeditor.formats import Checkpoint
from ganeditor.formats.native import save_checkpoint

TINY_G = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs={"num_layers": 2},
              synthesis_kwargs={"channel_base": 256, "channel_max": 16, "num_fp16_res": 0, "conv_clamp": None})


def write_tiny_models(folder: Path) -> Path:
    """A 16 px StyleGAN2, a tiny two-way CycleGAN and a tiny x4 SRResNet in our format."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    save_checkpoint(Checkpoint("ganeditor", "test", {"G_ema": build("stylegan2-generator", **TINY_G)}),
                    folder / "tiny-stylegan2.safetensors")
    ga = build("cyclegan-resnet-generator", ngf=4, n_blocks=1)
    gb = build("cyclegan-resnet-generator", ngf=4, n_blocks=1)
    save_checkpoint(Checkpoint("ganeditor", "test", {"G_A": ga, "G_B": gb},
                               {"data": ["world:scenes-day", "world:scenes-night"]}),
                    folder / "tiny-cyclegan.safetensors")
    save_checkpoint(Checkpoint("ganeditor", "test", {"net": build("msrresnet", num_feat=4, num_block=1, upscale=4)},
                               {"scale": 4}), folder / "tiny-sr.safetensors")
    return folder


def write_photo(path: Path, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(path)
    return path


def wait_idle(qtbot, lane, timeout_ms: int = 60000) -> None:
    """Process events until ``lane`` has no job left."""
    qtbot.waitUntil(lambda: not lane.busy() and lane.current is None, timeout=timeout_ms)


def make_window(qtbot, tmp_path, monkeypatch, **kw):
    """A MainWindow with its own settings file and autosave folder; message boxes are collected in
    ``win.errors`` and questions answered by ``win.answers`` (a list, first answer first)."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    from ganeditor.qt.main_window import MainWindow
    from ganeditor.qt.settings import Settings

    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    errors = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: errors.append(a[1:3]))
    win = MainWindow(settings, kw.pop("autosave_dir", tmp_path / "autosave"), **kw)
    win.errors, win.answers, win.questions = errors, [], []

    def ask(title, text, buttons, default):
        win.questions.append((title, text))
        return win.answers.pop(0) if win.answers else QMessageBox.StandardButton.Cancel

    win.ask = ask
    qtbot.addWidget(win)
    win.show()
    wait_window_idle(qtbot, win)
    return win


def wait_window_idle(qtbot, win, timeout_ms: int = 60000) -> None:
    """Until the window's device and I/O lanes are idle (models scanned and loaded, files opened)."""
    qtbot.waitUntil(win.idle, timeout=timeout_ms)


def open_and_wait(qtbot, win, path) -> None:
    assert win.open_path(str(path))
    wait_window_idle(qtbot, win)


class Heartbeat:
    """A 10 ms QTimer on the GUI thread; ``max_gap`` is the longest time between two ticks (seconds)."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last: float | None = None
        self.max_gap = 0.0
        self.ticks = 0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.max_gap = max(self.max_gap, now - self.last)
        self.last = now
        self.ticks += 1

    def start(self) -> None:
        self.last = None
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()


TINY_CYCLEGAN_OPTIONS = '{"ngf": 4, "ndf": 4, "n_blocks": 1, "crop_size": 24, "load_size": 26, "n_layers_d": 2}'


def tiny_window(qtbot, tmp_path, monkeypatch, models_dir):
    """A window (see ``make_window``) on the tiny models, each chosen for its role and loaded."""
    monkeypatch.setenv("GANEDITOR_MODELS", str(models_dir))
    win = make_window(qtbot, tmp_path, monkeypatch)
    for role, name in (("generator", "tiny-stylegan2"), ("translator", "tiny-cyclegan"), ("upscaler", "tiny-sr")):
        win.models.select(role, name)
    wait_window_idle(qtbot, win)
    return win


def portrait_photo(tmp_path: Path, seed: int = 3, size: int = 128):
    """A procedural portrait saved as PNG, and its 5 landmarks."""
    from ganeditor.worlds.portraits import render_portrait

    img, _attrs, lms = render_portrait(seed, size, return_landmarks=True)
    p = tmp_path / f"portrait{seed}.png"
    Image.fromarray(img).save(p)
    return p, lms


def place_points(qtbot, win, lms) -> None:
    """Click the 5 landmarks (as the view reports clicks) and wait for the aligned face."""
    win.portrait.face.points_button.setChecked(True)
    for x, y in lms:
        win.view.point_picked.emit(float(x), float(y))
    qtbot.waitUntil(lambda: win.portrait.face.face is not None, timeout=20000)
    wait_window_idle(qtbot, win)


def align_portrait(qtbot, win, tmp_path: Path):
    """Open a procedural portrait in ``win`` and align its face by its 5 points; returns its path."""
    path, lms = portrait_photo(tmp_path)
    open_and_wait(qtbot, win, path)
    place_points(qtbot, win, lms)
    return path


def fit_portrait(qtbot, win, method: str = "w", steps: int = 20):
    """Fit the aligned face in ``win``'s Portrait panel by ``method`` and wait for the fit; returns the panel."""
    p = win.portrait
    p.method_box.setCurrentIndex(p.method_box.findData(method))
    p.steps_box.setValue(steps)
    p.invert()
    qtbot.waitUntil(lambda: p.inverted, timeout=60000)
    return p


def fill_train_form(t, tmp_path: Path, steps: int, batch: int = 2) -> None:
    """A tiny two-folder CycleGAN run in the Train panel ``t``."""
    for d, seed in (("A", 0), ("B", 10)):
        (tmp_path / d).mkdir()
        for i in range(3):
            write_photo(tmp_path / d / f"{i}.png", (34, 30), seed + i)
    t.folder_a.edit.setText(str(tmp_path / "A"))
    t.folder_b.edit.setText(str(tmp_path / "B"))
    t.out.edit.setText(str(tmp_path / "run"))
    t.steps.setValue(steps)
    t.batch.setValue(batch)
    t.options.setText(TINY_CYCLEGAN_OPTIONS)
