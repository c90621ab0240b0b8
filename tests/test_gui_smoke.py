"""The main window opens, shows a photo, and reports unreadable files; run_app/create_app work."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, QStandardPaths

from ganeditor.qt.main_window import MainWindow
from ganeditor.qt.settings import Key, Settings


@pytest.fixture
def settings(tmp_path):
    return Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))


def test_window_opens_and_shows_image(qtbot, tmp_path, settings):
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    assert not win.export_act.isEnabled()
    p = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(p)
    assert win.open_image(str(p))
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
    assert win.export(str(out))
    assert Image.open(out).size == (60, 40)
    win.close()


def test_sample_photos_open_from_the_file_menu(qtbot, settings):
    win = MainWindow(settings)
    qtbot.addWidget(win)
    labels = [a.text() for a in win.sample_menu.actions()]
    assert labels == ["Cat small", "Old photo grace hopper", "Portrait grace hopper", "Street day"]
    win.sample_menu.actions()[2].trigger()
    assert win.doc.is_open and win.view.after.width() == 512 and win.view.after.height() == 600
    assert settings.get(Key.RECENT_FILES) == []  # samples are not the user's files
    win.close()


def test_unreadable_image_warns(qtbot, tmp_path, monkeypatch, settings):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: shown.append(a[2]))
    win = MainWindow(settings)
    qtbot.addWidget(win)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert not win.open_image(str(bad))
    assert shown and "bad.png" in shown[0] and "not an image" in shown[0]
    win.close()


def test_default_settings_and_window_layout_round_trip(qtbot, tmp_path):
    QStandardPaths.setTestModeEnabled(True)  # the default QSettings go to a test location
    try:
        win = MainWindow()
        qtbot.addWidget(win)
        win.show()
        win.docks["Train"].raise_()
        assert set(win.docks) == {"Models", "Portrait", "Scene", "Restore", "Train"}
        win.close()
        again = MainWindow()
        qtbot.addWidget(again)
        assert again.settings.get(Key.WINDOW_STATE)
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
        assert len(set(im.convert("L").getdata())) > 20  # a drawn window, not a blank image
    r = subprocess.run([sys.executable, "-m", "ganeditor", "gui", "--screenshot", str(out), "--panel", "nope"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no panel 'nope'" in r.stderr
