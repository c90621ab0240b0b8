"""First run: the welcome on the demo models, a broken install still opens, the layout is remembered,
and running the app never writes into the installation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

from ganeditor.qt.main_window import MainWindow
from ganeditor.qt.settings import Key, Settings
from gui_support import wait_idle

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(tmp_path):
    return Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))


def _window(qtbot, settings) -> MainWindow:
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    wait_idle(qtbot, win.device_lane)  # start-up work done: closing never races it
    return win


def test_welcome_opens_a_sample_and_its_panel_then_can_be_dismissed_for_good(qtbot, settings):
    win = _window(qtbot, settings)
    card = win.welcome
    assert card.isVisible() and not card.warning.isVisible()  # this checkout has every demo model
    assert set(card.buttons) == {"portrait", "old", "street"}
    qtbot.mouseClick(card.buttons["street"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.doc.is_open, timeout=30000)
    assert win.doc.path.name.startswith("street") and not card.isVisible()
    assert not win.docks["Scene"].visibleRegion().isEmpty()  # the panel for it is in front
    win.discard_and_close()
    win2 = _window(qtbot, settings)
    assert win2.welcome.isVisible()  # closing with ✕ alone hides it for this session only
    win2.welcome.never.setChecked(True)
    win2.welcome.dismissed.emit(True)
    assert not win2.welcome.isVisible() and settings.get(Key.SHOW_WELCOME) is False
    win2.discard_and_close()
    win3 = _window(qtbot, settings)
    assert not win3.welcome.isVisible()
    next(a for a in win3.menuBar().actions() if a.text() == "&Help").menu().actions()[0].trigger()  # Help ▸ Welcome
    assert win3.welcome.isVisible()
    win3.discard_and_close()


def test_a_missing_demo_model_is_named_and_the_window_still_works(qtbot, settings, tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    (models / "daynight-cyclegan.md").write_text("# card of a model whose weights were lost\n")
    shutil.copy(ROOT / "models" / "srgan-x4.md", models)
    os.symlink(ROOT / "models" / "srgan-x4.safetensors", models / "srgan-x4.safetensors")
    monkeypatch.setattr("ganeditor.core.model_store.bundled_models_dir", lambda: models)
    settings.set(Key.SHOW_WELCOME, False)  # even when dismissed before, a broken install shows why
    win = _window(qtbot, settings)
    text = win.welcome.warning.text()
    assert win.welcome.isVisible() and win.welcome.warning.isVisible()
    assert "'daynight-cyclegan' is missing" in text and "srgan-x4" not in text
    assert "daynight-cyclegan" in win.statusBar().currentMessage()
    assert win.open_path(str(ROOT / "resources" / "samples" / "street-day.png"), remember=False)
    win.discard_and_close()


def test_window_layout_is_remembered(qtbot, settings):
    win = _window(qtbot, settings)
    win.resize(win.minimumSizeHint().width(), 520)  # the offscreen screen is 800x600: stay within it
    win.docks["Models"].hide()
    qtbot.wait(50)
    win.discard_and_close()
    win2 = _window(qtbot, settings)
    qtbot.wait(50)
    assert win2.height() == 520 and not win2.docks["Models"].isVisible()
    win2.discard_and_close()


@pytest.mark.slow
def test_the_app_never_writes_into_its_installation(tmp_path):
    """A copy of the installation (package, resources, models linked), run as a user would: the window
    with a photo and a generative command; afterwards not one file there is new or changed."""
    install = tmp_path / "install"
    shutil.copytree(ROOT / "ganeditor", install / "ganeditor", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "resources", install / "resources")
    (install / "models").mkdir()
    for p in (ROOT / "models").iterdir():
        if p.suffix in (".safetensors", ".md"):
            os.symlink(p, install / "models" / p.name)
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in install.rglob("*")}
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GANEDITOR_", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=str(install), PYTHONDONTWRITEBYTECODE="1", QT_QPA_PLATFORM="offscreen",
               OMP_NUM_THREADS="1")  # fmt: skip
    photo = install / "resources" / "samples" / "cat-small.jpg"
    for cmd in (["gui", str(photo), "--screenshot", str(tmp_path / "shot.png"), "--size", "900x600"],
                ["generate", "--network", "portrait-stylegan2", "--seeds", "0", "--outdir", str(tmp_path)]):  # fmt: skip
        r = subprocess.run([sys.executable, "-m", "ganeditor", *cmd], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600)  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
    after = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in install.rglob("*")}
    assert after == before
    assert (tmp_path / "shot.png").is_file() and (tmp_path / "seed0000.png").is_file()
