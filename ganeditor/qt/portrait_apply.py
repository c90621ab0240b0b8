"""The portrait panel's action bar (Reset, Apply and what the edit is doing, always visible under the
scrolling sliders), the record of what Apply put into the document, so the panel can tell its own
results (and their undo/redo) from the photo changing under the fit, and the edit that is shown but
not applied yet (the window offers to apply it before the photo goes: quit, open another file)."""

from __future__ import annotations

import weakref
from typing import Callable

import numpy as np
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from ganeditor.pipelines.portrait import unapplied_edit


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

    def show_state(self, fitted: bool, edited: bool, full: bool, applied: bool = False) -> None:
        """``fitted``: sliders usable; ``edited``: a slider is off 0; ``full``: the full-resolution frame is in;
        ``applied``: the photo already holds these slider values."""
        self.apply_button.setEnabled(fitted and edited and full and not applied)
        self.reset_button.setEnabled(edited)
        self.label.setText("" if not fitted else "No edit yet: move a slider." if not edited else
                           "Applied: the photo holds this edit." if applied else
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


class PendingEdit:
    """Mixin of ``PortraitPanel``: the slider edit that is shown but not applied, and applying it at once."""

    def unapplied_edit(self) -> dict[str, float]:
        """The slider values (name -> α) that Apply would put into the photo and that the current result
        does not hold yet; ``{}`` when there are none or no fit to apply them with."""
        if not self.inverted or self.target is None or self.generator is None or not self.doc.is_open:
            return {}
        return unapplied_edit(self.edits.values, self.doc.operations())

    def describe_edit(self, alphas: dict[str, float]) -> str:
        """'Glasses +2.6, Age -1.0' (the History's name of an applied edit)."""
        return ", ".join(f"{self.sliders.label(k)} {v:+.1f}" for k, v in alphas.items())

    def apply_now(self, wait: Callable[[Callable[[], bool]], bool]) -> bool:
        """Apply the unapplied edit before the window moves on: render its full-resolution frame if it is
        not in yet, then do what the Apply button does; ``wait(condition)`` processes events until the
        condition holds (the window stays responsive).  True when the current result holds the edit."""
        alphas = self.unapplied_edit()
        if not alphas:
            return True

        def ready() -> bool:
            return self.frame is not None and self.frame.full and self.frame.alphas == alphas

        if not ready():
            self.full_timer.stop()
            self._request(full=True)
            wait(lambda: ready() or self.scheduler.idle)  # idle without the frame: the render failed
        job = self.apply() if ready() else None
        if job is None:
            return False
        wait(lambda: job.state == "done")
        return not self.unapplied_edit()
