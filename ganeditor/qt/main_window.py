"""The main window: an image view, a model list, menus and a status bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QScrollArea,
)

from ganeditor import __version__
from ganeditor.core.model_store import list_models

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp);;All files (*)"


class MainWindow(QMainWindow):
    """Top-level window of GAN Editor."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("GAN Editor")
        self.resize(1100, 720)
        self.image_label = QLabel("Open a photo to start (File ▸ Open…)")
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image_label.setStyleSheet("color: #777; font-size: 15px;")
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll.setWidget(self.image_label)
        self.setCentralWidget(scroll)
        self._build_models_dock()
        self._build_menus()
        self.statusBar().showMessage("Ready")

    def _build_models_dock(self) -> None:
        self.models_list = QListWidget()
        models = list_models()
        for name, path in models.items():
            self.models_list.addItem(f"{name}  —  {path.suffix[1:]}")
        if not models:
            self.models_list.addItem("(no models found)")
        dock = QDockWidget("Models", self)
        dock.setObjectName("models_dock")
        dock.setWidget(self.models_list)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_act = QAction("&Open…", self, shortcut=QKeySequence.StandardKey.Open, triggered=self._open_dialog)
        quit_act = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)
        file_menu.addAction(open_act)
        file_menu.addSeparator()
        file_menu.addAction(quit_act)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(QAction("&About GAN Editor", self, triggered=self._about))

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open photo", "", IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_image(self, path: str) -> bool:
        """Show the photo at ``path``; on failure, say why in a message box."""
        img = QImage(path)
        if img.isNull():
            QMessageBox.warning(self, "Cannot open", f"{path}: not a readable image")
            return False
        self.image_label.setStyleSheet("")
        self.image_label.setPixmap(QPixmap.fromImage(img))
        self.statusBar().showMessage(f"{Path(path).name} — {img.width()}×{img.height()}")
        return True

    def _about(self) -> None:
        QMessageBox.about(self, "About GAN Editor", f"GAN Editor {__version__}\nEdit photos with generative adversarial networks.")
