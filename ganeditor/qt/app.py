"""Application start-up: QApplication, main window, event loop."""

from __future__ import annotations

import sys

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from ganeditor import __version__
from ganeditor.core.resources import resource


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


def run_app(image: str | None = None) -> int:
    """Open the main window (and ``image`` if given) and run the event loop."""
    from ganeditor.qt.main_window import MainWindow

    app = create_app()
    win = MainWindow()
    win.show()
    if image:
        win.open_image(image)
    return app.exec()
