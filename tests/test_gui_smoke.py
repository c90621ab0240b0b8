"""The main window opens, shows a photo, and reports unreadable files; run_app/create_app work."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, QStandardPaths

from ganeditor.qt.main_window import MainWindow
from ganeditor.qt.settings import Key, Settings
from gui_support import make_window, open_and_wait, wait_window_idle


@pytest.fixture
def settings(tmp_path):
    return Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))


def test_window_opens_and_shows_image(qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch)
    settings = win.settings
    assert not win.export_act.isEnabled()
    p = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(p)
    open_and_wait(qtbot, win, p)
    assert win.view.after.width() == 60 and win.view.after.height() == 40
    assert "60×40" in win.statusBar().currentMessage()
    assert win.export_act.isEnabled()
    assert settings.get(Key.RECENT_FILES) == [str(p.resolve())]
    assert win.recent_menu.actions()[0].text() == "photo.png"
    win.view.actual_size()
    assert win.view.scale == 1.0
    win.view.zoom_by(2.0)
    assert win.view.scale == 2.0 and win.zoom_label.text() == "200 %"
    win.view.fit()
    assert win.view.auto_fit
    out = tmp_path / "out.jpg"
    job = win.export(str(out))
    qtbot.waitUntil(lambda: job.state == "done", timeout=20000)
    assert Image.open(out).size == (60, 40) and "Exported out.jpg" in win.statusBar().currentMessage()
    win.close()


def test_sample_photos_open_from_the_file_menu(qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch)
    settings = win.settings
    labels = [a.text() for a in win.sample_menu.actions()]
    assert labels == ["Cat small", "Old photo grace hopper", "Portrait grace hopper", "Street day"]
    win.sample_menu.actions()[2].trigger()
    wait_window_idle(qtbot, win)
    assert win.doc.is_open and win.view.after.width() == 512 and win.view.after.height() == 600
    assert settings.get(Key.RECENT_FILES) == []  # samples are not the user's files
    win.close()


def test_unreadable_image_warns(qtbot, tmp_path, monkeypatch):
    win = make_window(qtbot, tmp_path, monkeypatch)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    open_and_wait(qtbot, win, bad)
    shown = [m for _t, m in win.errors]
    assert shown and "bad.png" in shown[0] and "not an image" in shown[0]
    assert not win.doc.is_open
    win.close()


def test_default_settings_and_window_layout_round_trip(qtbot, tmp_path):
    QStandardPaths.setTestModeEnabled(True)  # the default QSettings go to a test location
    try:
        win = MainWindow(autosave_folder=tmp_path / "autosave")
        qtbot.addWidget(win)
        win.show()
        wait_window_idle(qtbot, win)
        win.docks["Train"].raise_()
        assert set(win.docks) == {"Models", "History", "Portrait", "Generate", "Scene", "Restore", "Train"}
        win.close()
        again = MainWindow(autosave_folder=tmp_path / "autosave")
        qtbot.addWidget(again)
        assert again.settings.get(Key.WINDOW_STATE)
        wait_window_idle(qtbot, again)
        again.close()
    finally:
        QStandardPaths.setTestModeEnabled(False)


def test_create_app_is_reusable_and_styled(qtbot):
    from ganeditor.qt.app import create_app

    app = create_app()
    assert create_app() is app and app.applicationName() == "GAN Editor"
    assert "QLabel#hint" in app.styleSheet()


def test_gui_screenshot_renders_the_real_window_offscreen_and_exits_0(tmp_path):
    import os
    import subprocess
    import sys

    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(photo)
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-m", "ganeditor", "gui", str(photo), "--screenshot", str(out),
                        "--panel", "scene", "--size", "1200x760"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.size == (1200, 760)
        assert len(np.unique(np.asarray(im.convert("L")))) > 20  # a drawn window, not a blank image
    r = subprocess.run([sys.executable, "-m", "ganeditor", "gui", "--screenshot", str(out), "--panel", "nope"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no panel 'nope'" in r.stderr
    broken = tmp_path / "broken.ganedit"
    broken.write_bytes(b"PK\x03\x04 not really a project")
    out.unlink()
    r = subprocess.run([sys.executable, "-m", "ganeditor", "gui", str(broken), "--screenshot", str(out)],
                       env={**env, "QT_QPA_PLATFORM": "xcb", "DISPLAY": ":999"}, capture_output=True, text=True,
                       timeout=300)  # a display that does not exist: the screenshot is offscreen all the same
    assert r.returncode == 0, r.stderr
    assert "Cannot open project" in r.stderr and "broken.ganedit" in r.stderr  # the error, on stderr
    with Image.open(out) as im:
        assert im.size == (1280, 800)  # the window, rendered although the file could not be opened


def test_headless_window_never_opens_a_dialog(qtbot, tmp_path, monkeypatch, capsys):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from ganeditor.qt.app import dismiss_modals

    A = QMessageBox.StandardButton
    win = make_window(qtbot, tmp_path, monkeypatch)
    win.headless = True
    ask = MainWindow.ask  # the window's own, not the test helper's
    assert ask(win, "Recover unsaved work", "Recover?", A.Yes | A.Discard | A.Ignore, A.Yes) == A.Ignore
    assert ask(win, "Unsaved changes", "Save?", A.Save | A.Discard | A.Cancel, A.Save) == A.Cancel
    win.show_error("Cannot open", "x.png: not an image file")
    err = capsys.readouterr().err
    assert "Recover?" in err and "Save?" in err and "Cannot open: x.png: not an image file" in err and not win.errors
    guard = dismiss_modals()
    fallback = QTimer(singleShot=True, interval=20000)  # the test never hangs, even if the guard fails
    fallback.timeout.connect(lambda: QApplication.activeModalWidget() and QApplication.activeModalWidget().close())
    fallback.start()
    QMessageBox(QMessageBox.Icon.Warning, "Some panel", "an unforeseen modal box", parent=win).exec()  # blocks until closed
    closed_by_guard = fallback.isActive()
    fallback.stop()
    guard.stop()
    assert closed_by_guard and "Some panel: an unforeseen modal box (dialog closed unanswered" in capsys.readouterr().err


def test_fits_1280x800_shows_the_device_and_offers_only_existing_devices(qtbot, tmp_path, monkeypatch):
    from ganeditor.core.device import available_devices
    from ganeditor.qt.prefs_dialog import PreferencesDialog

    win = make_window(qtbot, tmp_path, monkeypatch)
    hint = win.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 800 - 40  # room for a desktop panel
    win.resize(1280, 760)
    qtbot.waitUntil(lambda: win.width() == 1280)
    for panel in ("portrait", "scene", "train"):
        win.show_panel(panel)
        button = {"portrait": win.portrait.invert_button, "scene": win.scene.upscale_button,
                  "train": win.train.start_button}[panel]
        top_left = button.mapTo(win, button.rect().topLeft())
        assert 0 <= top_left.y() < win.height() - win.statusBar().height(), panel  # the action button is on screen
    assert win.statusBar().isVisible() and win.statusBar().geometry().bottom() <= win.height()
    assert "CPU" in win.device_label.text() or "CUDA" in win.device_label.text()
    dlg = PreferencesDialog(win.settings, win)
    assert [dlg.device.itemText(i) for i in range(dlg.device.count())] == available_devices()
    win.close()


def test_the_window_process_sets_openmp_to_wait_passively(monkeypatch):
    import os
    import subprocess
    import sys

    from ganeditor import cli

    assert cli.opens_window([]) and cli.opens_window(["gui", "x.png"]) and cli.opens_window(["photo.jpg"])
    assert cli.opens_window(["--debug", "work.ganedit"]) and not cli.opens_window(["--debug", "translate", "a.png"])
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    cli.window_environment()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    cli.window_environment()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's own setting wins
    r = subprocess.run([sys.executable, "-c", "import sys, ganeditor.cli; print('torch' in sys.modules)"],
                       capture_output=True, text=True, timeout=120, check=True)
    assert r.stdout.strip() == "False"  # so main() sets it before torch loads OpenMP
