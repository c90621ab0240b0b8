"""Undo commands: tiny, they capture the old value and call model methods.

Commands know their models only through the small protocols below (no import of document.py, so
document -> commands is the only direction).  ``clone()`` makes a fresh copy of a command, which the
document uses to drop the oldest steps when the history holds too much image data; while it rebuilds
the stack, ``HistoryCommand.muted`` makes redo/undo leave the models alone.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from PySide6.QtGui import QUndoCommand

from ganeditor.pipelines.directions import pretty_name

SLIDER_COMMAND_ID = 1001


class ImageModel(Protocol):
    current: np.ndarray | None
    current_alpha: np.ndarray | None

    def set_current(self, pixels: np.ndarray, alpha: np.ndarray | None) -> None: ...


class ValuesModel(Protocol):
    values: dict[str, float]

    def value(self, name: str) -> float: ...
    def set_value(self, name: str, value: float) -> None: ...
    def set_all(self, values: dict[str, float]) -> None: ...


class HistoryCommand(QUndoCommand):
    """Base: ``muted`` (class-wide) turns redo/undo into no-ops while the history is rebuilt."""

    muted = False
    op: dict[str, Any] | None = None  # what a project file records for this step (None: not an operation)

    def images(self) -> list[np.ndarray]:
        """Image arrays this step keeps alive (for the history's memory budget)."""
        return []

    def clone(self) -> "HistoryCommand":
        raise NotImplementedError


class SetImageCommand(HistoryCommand):
    """Replace the document's current result (translate, upscale, paste-back...)."""

    def __init__(self, doc: ImageModel, pixels: np.ndarray, alpha: np.ndarray | None, text: str,
                 op: dict[str, Any] | None = None, old: tuple | None = None) -> None:
        super().__init__(text)
        self.doc, self.new, self.op = doc, (pixels, alpha), op
        self.old = old if old is not None else (doc.current, doc.current_alpha)

    def redo(self) -> None:
        if not self.muted:
            self.doc.set_current(*self.new)

    def undo(self) -> None:
        if not self.muted:
            self.doc.set_current(*self.old)

    def images(self) -> list[np.ndarray]:
        return [a for a in (*self.old, *self.new) if a is not None]

    def clone(self) -> "SetImageCommand":
        return SetImageCommand(self.doc, *self.new, self.text(), self.op, self.old)


class SliderCommand(HistoryCommand):
    """Move one direction slider; the steps of one drag (or one run of wheel notches) merge."""

    def __init__(self, edits: ValuesModel, name: str, new: float, drag_id: int, old: float | None = None,
                 label: str = "") -> None:
        super().__init__(f"Edit {label or pretty_name(name)}")
        self.label = label
        self.edits, self.name, self.drag_id = edits, name, drag_id
        self.old = edits.value(name) if old is None else old
        self.new = float(new)

    def id(self) -> int:
        return SLIDER_COMMAND_ID

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt API
        if not isinstance(other, SliderCommand) or other.name != self.name or other.drag_id != self.drag_id:
            return False
        self.new = other.new
        self.setObsolete(self.new == self.old)
        return True

    def redo(self) -> None:
        if not self.muted:
            self.edits.set_value(self.name, self.new)

    def undo(self) -> None:
        if not self.muted:
            self.edits.set_value(self.name, self.old)

    def clone(self) -> "SliderCommand":
        return SliderCommand(self.edits, self.name, self.new, -self.drag_id, self.old, self.label)  # never merges with a live drag


class ResetSlidersCommand(HistoryCommand):
    """Put every slider back to 0."""

    def __init__(self, edits: ValuesModel, old: dict[str, float] | None = None) -> None:
        super().__init__("Reset sliders")
        self.edits = edits
        self.old = dict(edits.values) if old is None else old

    def redo(self) -> None:
        if not self.muted:
            self.edits.set_all({k: 0.0 for k in self.old})

    def undo(self) -> None:
        if not self.muted:
            self.edits.set_all(self.old)

    def clone(self) -> "ResetSlidersCommand":
        return ResetSlidersCommand(self.edits, self.old)
