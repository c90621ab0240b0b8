"""Undo commands: tiny, they capture the old value and call model methods."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QUndoCommand

from ganeditor.qt.document import Document, EditState

SLIDER_COMMAND_ID = 1001


class SetImageCommand(QUndoCommand):
    """Replace the document's current result (translate, upscale, paste-back...)."""

    def __init__(self, doc: Document, pixels: np.ndarray, alpha: np.ndarray | None, text: str,
                 op: dict | None = None) -> None:
        super().__init__(text)
        self.doc, self.op = doc, op  # op: what was applied, with its provenance steps
        self.new = (pixels, alpha)
        self.old = (doc.current, doc.current_alpha)

    def redo(self) -> None:
        self.doc.set_current(*self.new)

    def undo(self) -> None:
        self.doc.set_current(*self.old)


class SliderCommand(QUndoCommand):
    """Move one direction slider; the steps of one drag merge into a single command."""

    def __init__(self, edits: EditState, name: str, new: float, drag_id: int) -> None:
        from ganeditor.qt.sliders import pretty

        super().__init__(f"Edit {pretty(name)}")
        self.edits, self.name, self.drag_id = edits, name, drag_id
        self.old, self.new = edits.value(name), float(new)

    def id(self) -> int:
        return SLIDER_COMMAND_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SliderCommand) or other.name != self.name or other.drag_id != self.drag_id:
            return False
        self.new = other.new
        self.setObsolete(self.new == self.old)
        return True

    def redo(self) -> None:
        self.edits.set_value(self.name, self.new)

    def undo(self) -> None:
        self.edits.set_value(self.name, self.old)


class ResetSlidersCommand(QUndoCommand):
    """Put every slider back to 0."""

    def __init__(self, edits: EditState) -> None:
        super().__init__("Reset sliders")
        self.edits = edits
        self.old = dict(edits.values)

    def redo(self) -> None:
        self.edits.set_all({k: 0.0 for k in self.old})

    def undo(self) -> None:
        self.edits.set_all(self.old)
