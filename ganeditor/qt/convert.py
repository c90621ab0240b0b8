"""numpy pixels -> QImage (a copy that owns its memory), for the GUI thread."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from ganeditor.core.imageio import to_8bit


def to_display_uint8(pixels: np.ndarray) -> np.ndarray:
    """[H, W, C] or [H, W] uint8/uint16 -> contiguous uint8 [H, W, 3] (or [H, W] gray) for display."""
    a = pixels
    if a.dtype == np.uint16:
        a = to_8bit(a)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def qimage_from_array(pixels: np.ndarray) -> QImage:
    """A QImage that owns a copy of ``pixels`` (QImage over a numpy buffer would not)."""
    a = to_display_uint8(pixels)
    h, w = a.shape[:2]
    if a.ndim == 2:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8)
    else:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888)
    return img.copy()
