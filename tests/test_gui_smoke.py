"""The main window opens, shows a photo, and reports unreadable files."""

import numpy as np
from PIL import Image

from ganeditor.qt.main_window import MainWindow


def test_window_opens_and_shows_image(qtbot, tmp_path, monkeypatch):
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    p = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(p)
    assert win.open_image(str(p))
    assert win.image_label.pixmap().width() == 60
    assert "60×40" in win.statusBar().currentMessage()


def test_unreadable_image_warns(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: shown.append(a[2]))
    win = MainWindow()
    qtbot.addWidget(win)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert not win.open_image(str(bad))
    assert shown and "bad.png" in shown[0]
