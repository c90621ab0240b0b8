"""Application start-up: QApplication, main window, event loop."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from ganeditor import __version__


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (reused if one exists, e.g. under pytest-qt)."""
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("GAN Editor")
    app.setOrganizationName("ganeditor")
    app.setApplicationVersion(__version__)
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
