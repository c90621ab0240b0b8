"""The open photo: the decoded original, the current result, the undo stack, and the slider edits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from ganeditor.core.imageio import LoadedImage, read_image, write_image
from ganeditor.core.provenance import ProvenanceOptions, from_operations
from ganeditor.qt.compat import emit


class Document(QObject):
    """A photo being edited. ``current`` starts as the original pixels; results replace it (undoably)."""

    image_changed = Signal()
    opened = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.source: LoadedImage | None = None
        self.current: np.ndarray | None = None
        self.current_alpha: np.ndarray | None = None
        self.undo_stack = QUndoStack(self)

    @property
    def is_open(self) -> bool:
        return self.source is not None

    @property
    def original(self) -> np.ndarray | None:
        return None if self.source is None else self.source.pixels

    def open(self, path: str | Path) -> LoadedImage:
        """Decode ``path`` (EXIF orientation, 16-bit, CMYK... see core.imageio); ImageError if it cannot."""
        img = read_image(path)
        self.path, self.source = Path(path), img
        self.current, self.current_alpha = img.pixels, img.alpha
        self.undo_stack.clear()
        emit(self.opened, str(path))
        emit(self.image_changed)
        return img

    def as_loaded(self) -> LoadedImage:
        """The current result with the original's metadata (input of translate/upscale)."""
        assert self.source is not None and self.current is not None
        s = self.source
        return LoadedImage(self.current, self.current_alpha, s.bit_depth, s.icc_profile, s.exif, [])

    def apply_result(self, pixels: np.ndarray, alpha: np.ndarray | None, text: str,
                     op: dict[str, Any] | None = None) -> None:
        """Make ``pixels`` the current result, as one undoable step named ``text`` (``op``: what was
        applied; its ``provenance`` steps go into exported files)."""
        from ganeditor.qt.commands import SetImageCommand

        self.undo_stack.push(SetImageCommand(self, pixels, alpha, text, op))

    def operations(self) -> list[dict[str, Any]]:
        """The applied operations up to the current step, oldest first."""
        ops = (getattr(self.undo_stack.command(i), "op", None) for i in range(self.undo_stack.index()))
        return [op for op in ops if op is not None]

    def set_current(self, pixels: np.ndarray, alpha: np.ndarray | None) -> None:
        """Replace the current result (called by undo commands)."""
        self.current, self.current_alpha = pixels, alpha
        emit(self.image_changed)

    def export(self, path: str | Path, quality: int = 95, options: ProvenanceOptions | None = None) -> list[str]:
        """Write the current result atomically, keeping ICC profile, EXIF, XMP and bit depth, with the
        provenance of the applied operations (``options``: history, C2PA signing); returns notes."""
        assert self.source is not None and self.current is not None
        s = self.source
        bit_depth = 16 if self.current.dtype == np.uint16 else 8
        prov = from_operations(self.operations(), self.path, options)
        return write_image(path, self.current, self.current_alpha, bit_depth, s.icc_profile, s.exif, quality,
                           xmp=s.xmp, provenance=prov)  # fmt: skip


class EditState(QObject):
    """Slider values of the portrait edit (direction name -> α); undo commands change them."""

    changed = Signal(str, float)  # name, value ('' = several changed)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.values: dict[str, float] = {}

    def set_names(self, names: list[str]) -> None:
        """A new set of directions, all at 0."""
        self.values = {n: 0.0 for n in names}
        emit(self.changed, "", 0.0)

    def value(self, name: str) -> float:
        return self.values.get(name, 0.0)

    def set_value(self, name: str, value: float) -> None:
        if name in self.values and self.values[name] != value:
            self.values[name] = float(value)
            emit(self.changed, name, float(value))

    def set_all(self, values: dict[str, float]) -> None:
        self.values.update({k: float(v) for k, v in values.items() if k in self.values})
        emit(self.changed, "", 0.0)

    def active(self) -> dict[str, float]:
        """Non-zero values only."""
        return {k: v for k, v in self.values.items() if v != 0.0}
