"""Application start-up: QApplication, main window, event loop; offscreen screenshots of the window."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from ganeditor import __version__
from ganeditor.core.errors import GanEditorError
from ganeditor.core.resources import resource
from ganeditor.qt.settings import Settings


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (reused if one exists, e.g. under pytest-qt)."""
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("GAN Editor")
    app.setOrganizationName("ganeditor")
    app.setApplicationVersion(__version__)
    if not app.property("ganeditor_styled"):
        app.setStyle("Fusion")
        try:
            app.setStyleSheet(resource("style.qss").read_text(encoding="utf-8"))
            app.setWindowIcon(QIcon(str(resource("icons/ganeditor.svg"))))
        except FileNotFoundError:  # a build without resources still runs
            pass
        app.setProperty("ganeditor_styled", True)
    return app


def run_app(path: str | None = None) -> int:
    """Open the main window (and the photo or project at ``path``) and run the event loop."""
    from ganeditor.qt.main_window import MainWindow  # deferred: the window pulls in torch and every panel

    app = create_app()
    win = MainWindow()
    win.show()
    win.start_up(path)
    return leave(win, app.exec())


def leave(win, status: int) -> int:
    """End the process after the window closed: it has joined every worker thread, synced the settings
    and removed its autosave, so the interpreter's teardown of torch and Qt (seconds on a loaded
    machine) is skipped and quitting stays well under 2 s.  Returns only if work is somehow left."""
    sys.stdout.flush()
    sys.stderr.flush()
    if all(lane.current is None for lane in (win.device_lane, win.train_lane, win.io_lane)):
        os._exit(status)
    return status


def screenshot(out: str, path: str | None = None, panel: str | None = None, size: tuple[int, int] = (1280, 800),
               timeout_s: float = 300.0) -> int:
    """Render the real window offscreen (fresh settings, models loaded, ``panel`` in front) to a PNG."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ganeditor.qt.main_window import MainWindow  # deferred: see run_app

    app = create_app()
    with tempfile.TemporaryDirectory(prefix="ganeditor-shot-") as tmp:
        settings = Settings(QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat))
        win = MainWindow(settings, Path(tmp) / "autosave")
        win._discard = True  # never ask anything: nobody is there to answer
        win.resize(*size)
        win.show()
        if panel and not win.show_panel(panel):
            win.discard_and_close()
            raise GanEditorError(f"--panel: no panel {panel!r} (panels: {', '.join(win.panel_names())})")
        if path:
            win.open_path(path, remember=False)
        deadline = time.monotonic() + timeout_s
        settle = 0
        while settle < 5 and time.monotonic() < deadline:  # idle for a few consecutive checks
            app.processEvents()
            settle = settle + 1 if win.idle() else 0
            time.sleep(0.05)
        if path and not win.doc.is_open:
            message = win.statusBar().currentMessage() or "cannot open this file"
            win.discard_and_close()
            raise GanEditorError(message)
        if panel:
            win.show_panel(panel)
        for _ in range(5):
            app.processEvents()
        image = win.grab()
        ok = image.save(str(out), "PNG")
        win.discard_and_close()
    if not ok:
        raise GanEditorError("cannot write the screenshot", out)
    print(f"wrote {out} ({image.width()}×{image.height()})")
    return 0
