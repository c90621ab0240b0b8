"""Small shared widgets: image thumbnails with captions, section headers, hint lines."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from ganeditor.qt.convert import qimage_from_array


class Thumb(QWidget):
    """A fixed-size image with a caption below; shows a placeholder text when empty."""

    def __init__(self, caption: str, size: int | tuple[int, int] = 112, empty: str = "—",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.w_px, self.h_px = (size, size) if isinstance(size, int) else size
        self.empty_text = empty
        self.image = QLabel(empty)
        self.image.setObjectName("thumb")
        self.image.setFixedSize(self.w_px, self.h_px)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setWordWrap(True)
        self.caption = QLabel(caption)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setObjectName("caption")
        self.caption.setWordWrap(True)  # a long caption wraps under the image instead of widening the panel
        self.setFixedWidth(self.w_px + 24)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.caption)
        self.pixels: np.ndarray | None = None

    def set_image(self, pixels: np.ndarray | None, caption: str | None = None) -> None:
        self.pixels = pixels
        if pixels is None:
            self.image.setPixmap(QPixmap())
            self.image.setText(self.empty_text)
        else:
            pm = QPixmap.fromImage(qimage_from_array(pixels))
            mode = Qt.TransformationMode.FastTransformation if pm.width() < self.w_px // 2 else \
                Qt.TransformationMode.SmoothTransformation  # fmt: skip
            self.image.setPixmap(pm.scaled(self.w_px, self.h_px, Qt.AspectRatioMode.KeepAspectRatio, mode))
        if caption is not None:
            self.caption.setText(caption)


def section(title: str) -> QLabel:
    """A bold section title with a rule under it."""
    lbl = QLabel(title)
    lbl.setObjectName("section")
    return lbl


def hint(text: str = "") -> QLabel:
    """A grey, wrapped line that explains a disabled control or an empty state."""
    lbl = QLabel(text)
    lbl.setObjectName("hint")
    lbl.setWordWrap(True)
    lbl.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return lbl


def rule() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.HLine)
    line.setObjectName("rule")
    return line
