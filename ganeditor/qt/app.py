"""Application start-up: QApplication, main window, event loop; offscreen screenshots of the window."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QLibraryInfo, QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox

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


def dismiss_modals() -> QTimer:
    """Headless safety net: every 100 ms, close whatever modal dialog is open (nobody can answer it),
    writing its title and text to stderr.  Returns the running timer."""

    def check() -> None:
        w = QApplication.activeModalWidget()
        if w is None:
            return
        what = f"{w.windowTitle()}: {w.text()}" if isinstance(w, QMessageBox) else w.windowTitle()
        print(f"{what} (dialog closed unanswered: nobody is there)", file=sys.stderr, flush=True)
        if isinstance(w, QDialog):
            w.reject()
        else:
            w.close()

    timer = QTimer(interval=100)
    timer.timeout.connect(check)
    timer.start()
    return timer


def _check_offscreen_plugin() -> None:
    """One clear line instead of Qt's abort when the offscreen platform cannot be loaded at all."""
    folder = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    if not any(folder.glob("*offscreen*")):
        raise GanEditorError(f"--screenshot: Qt's offscreen platform plugin is missing from {folder}; "
                             "reinstall PySide6")  # fmt: skip


def screenshot(out: str, path: str | None = None, panel: str | None = None, size: tuple[int, int] = (1280, 800),
               timeout_s: float = 300.0) -> int:
    """Render the real window offscreen (fresh settings, models loaded, ``panel`` in front) to a PNG.
    Nothing is ever asked: a file that cannot be opened, or any other error, goes to stderr and the
    window is still rendered (status 0); only a window that cannot be shown at all is an error."""
    if QApplication.instance() is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # never a real display, whatever the environment says
        _check_offscreen_plugin()
    from ganeditor.qt.main_window import MainWindow  # deferred: see run_app

    app = create_app()
    guard = dismiss_modals()
    with tempfile.TemporaryDirectory(prefix="ganeditor-shot-") as tmp:
        settings = Settings(QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat))
        win = MainWindow(settings, Path(tmp) / "autosave")
        win._discard = win.headless = True  # never ask anything: nobody is there to answer
        win.resize(*size)
        win.show()
        if panel and not win.show_panel(panel):
            win.discard_and_close()
            raise GanEditorError(f"--panel: no panel {panel!r} (panels: {', '.join(win.panel_names())})")
        if path:
            win.open_path(path, remember=False)
        _wait_idle(app, win, time.monotonic() + timeout_s)
        if panel:
            win.show_panel(panel)
        for _ in range(5):
            app.processEvents()
        image = win.grab()
        ok = image.save(str(out), "PNG")
        win.discard_and_close()
    guard.stop()
    if not ok:
        raise GanEditorError("cannot write the screenshot", out)
    print(f"wrote {out} ({image.width()}×{image.height()})")
    return 0


def _wait_idle(app: QApplication, win, deadline: float) -> None:
    """Process events until the window has been idle for a few consecutive checks (or the deadline)."""
    settle = 0
    while settle < 5 and time.monotonic() < deadline:
        app.processEvents()
        settle = settle + 1 if win.idle() else 0
        time.sleep(0.05)
