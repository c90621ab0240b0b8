"""The portrait panel's action bar (Reset, Apply and what the edit is doing, always visible under the
scrolling sliders) and the record of what Apply put into the document, so the panel can tell its own
results (and their undo/redo) from the photo changing under the fit."""

from __future__ import annotations

import weakref

import numpy as np
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class ApplyBar(QFrame):
    """Reset and Apply with a one-line state; ``show_state`` enables them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, objectName="actionbar")
        self.label = QLabel("")
        self.label.setObjectName("hint")
        self.reset_button = QPushButton("Reset", toolTip="Put every slider back to 0 (undoable)")
        self.apply_button = QPushButton("Apply", toolTip="Put the edit into the photo (one undo step)")
        self.apply_button.setObjectName("primary")
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 8, 6)
        row.addWidget(self.label, 1)
        row.addWidget(self.reset_button)
        row.addWidget(self.apply_button)

    def show_state(self, fitted: bool, edited: bool, full: bool) -> None:
        """``fitted``: sliders usable; ``edited``: a slider is off 0; ``full``: the full-resolution frame is in."""
        self.apply_button.setEnabled(fitted and edited and full)
        self.reset_button.setEnabled(edited)
        self.label.setText("" if not fitted else "No edit yet: move a slider." if not edited else
                           "Full resolution: ready to apply." if full else "Preview on the photo…")  # fmt: skip


class AppliedResults:
    """What Apply put into the document, and the photo each was pasted into (weakly held: the undo
    history owns the images)."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[weakref.ref, int]] = {}  # id(result) -> (result, id(its base))

    def remember(self, result: np.ndarray, base: np.ndarray | None) -> None:
        self._items = {k: v for k, v in self._items.items() if v[0]() is not None}
        self._items[id(result)] = (weakref.ref(result), id(base))

    def made_from(self, current: np.ndarray, base: np.ndarray | None) -> bool:
        """``current`` is ``base`` itself or one of our results pasted into it."""
        if current is base:
            return True
        ref, base_id = self._items.get(id(current), (None, 0))
        return ref is not None and ref() is current and base_id == id(base)
