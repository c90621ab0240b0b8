"""Errors that reach the user as one line (CLI: exit status 2; GUI: a message box)."""

from __future__ import annotations

from pathlib import Path


class GanEditorError(Exception):
    """An error caused by the user's input; its message is one self-explanatory line."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


class CheckpointError(GanEditorError):
    """A checkpoint is missing, damaged, of an unknown kind, or not what the command expects."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint asked for code that the safe loader refuses to run or import."""


class ImageError(GanEditorError):
    """An image cannot be read or written."""


class ProvenanceError(GanEditorError):
    """Provenance cannot be written as configured (e.g. a signing certificate that does not load)."""


class Cancelled(Exception):
    """Raised inside long work when the user cancelled it."""
