"""The open photo: the decoded original, the current result, the undo history, and the slider edits.

The history keeps at most ``memory_limit`` bytes of image data (default 1 GiB): when a new step goes
over it, the oldest steps are dropped (never the newest).  ``is_modified`` says whether there is work
a project file does not hold yet; ``revision`` grows with every change (autosave compares it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from ganeditor.core.errors import ImageError
from ganeditor.core.imageio import LoadedImage, read_image, write_image
from ganeditor.core.provenance import ProvenanceOptions, from_operations
from ganeditor.pipelines.project import file_sha256
from ganeditor.qt.commands import HistoryCommand, SetImageCommand

DEFAULT_UNDO_MEMORY = 1 << 30  # bytes of image data the history may hold
GENERATE_OP = "generate"  # the operation of a picture made in the Generate panel (always the first one)


class Document(QObject):
    """A photo being edited. ``current`` starts as the original pixels; results replace it (undoably)."""

    image_changed = Signal()
    opened = Signal(str)
    modified_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None  # the photo
        self.project_path: Path | None = None  # the .ganedit file it was saved to / opened from
        self.source: LoadedImage | None = None
        self.sha256 = ""  # of the photo file
        self.current: np.ndarray | None = None
        self.current_alpha: np.ndarray | None = None
        self.undo_stack = QUndoStack(self)
        self.memory_limit = DEFAULT_UNDO_MEMORY
        self.revision = 0
        self._dirty = False  # work outside the undo history (an inversion) not saved yet
        self.base_operations: list[dict[str, Any]] = []  # operations already in the starting result
        self._rebuilding = False
        self.undo_stack.indexChanged.connect(self._changed)
        self.undo_stack.cleanChanged.connect(self._clean_changed)

    @property
    def is_open(self) -> bool:
        return self.source is not None

    @property
    def original(self) -> np.ndarray | None:
        return None if self.source is None else self.source.pixels

    @property
    def is_modified(self) -> bool:
        """True when there is work no project file holds yet."""
        return self.is_open and (self._dirty or not self.undo_stack.isClean())

    def open(self, path: str | Path) -> LoadedImage:
        """Decode ``path`` (EXIF orientation, 16-bit, CMYK... see core.imageio); ImageError if it cannot."""
        img = read_image(path)
        self.set_source(img, path, sha256=file_sha256(path))
        return img

    def set_source(self, img: LoadedImage, path: str | Path | None, current: LoadedImage | None = None,
                   project_path: str | Path | None = None, sha256: str = "",
                   operations: list[dict[str, Any]] = (), name: str = "") -> None:
        """Start on a decoded photo (``current``: a result to start from, e.g. from a project, made by
        ``operations``: they stay in the document's operations, so exports still say what made it;
        ``name``: what the window calls a picture with no file)."""
        self.path, self.source, self.sha256 = (Path(path) if path else None), img, sha256
        self.base_operations = [dict(o) for o in operations]
        self.project_path = Path(project_path) if project_path else None
        cur = current or img
        self.current, self.current_alpha = cur.pixels, cur.alpha
        self.undo_stack.clear()
        self._dirty = False
        self.undo_stack.setClean()
        self._changed()
        self.opened.emit(str(path or project_path or name))
        self.image_changed.emit()

    def open_pixels(self, pixels: np.ndarray, name: str, made_by: dict[str, Any]) -> LoadedImage:
        """Start editing a picture a generator made in the app (``made_by``: its provenance step record);
        no file behind it yet: its first operation is the generation, so exports say it is AI-generated."""
        img = LoadedImage(pixels)
        self.set_source(img, None, operations=[{"label": "Generate", "op": GENERATE_OP, "provenance": [made_by]}],
                        name=name)
        return img

    def set_original(self, img: LoadedImage, path: str | Path) -> None:
        """The original photo was found later (a project whose photo had moved); history is kept."""
        self.path, self.source = Path(path), img
        self.image_changed.emit()

    def as_loaded(self) -> LoadedImage:
        """The current result with the original's metadata (input of translate/upscale)."""
        assert self.source is not None and self.current is not None
        s = self.source
        return LoadedImage(self.current, self.current_alpha, s.bit_depth, s.icc_profile, s.exif, [], s.xmp)

    def apply_result(self, pixels: np.ndarray, alpha: np.ndarray | None, text: str,
                     op: dict[str, Any] | None = None) -> None:
        """Make ``pixels`` the current result, as one undoable step named ``text`` (``op``: its settings)."""
        self.push(SetImageCommand(self, pixels, alpha, text, op or {"op": text.split(" ")[0].lower()}))

    def push(self, command: HistoryCommand) -> None:
        """Push an undo step, then drop the oldest steps while the history holds too much image data."""
        self.undo_stack.push(command)
        self.trim_history()

    def set_current(self, pixels: np.ndarray, alpha: np.ndarray | None) -> None:
        """Replace the current result (called by undo commands)."""
        self.current, self.current_alpha = pixels, alpha
        self.image_changed.emit()

    def export(self, path: str | Path, quality: int = 95, options: ProvenanceOptions | None = None) -> list[str]:
        """Write the current result atomically, keeping ICC profile, EXIF, XMP and bit depth, with the
        provenance of the applied operations (``options``: history, C2PA signing); returns notes."""
        return export_image(self.as_loaded(), path, quality, self.operations(), self.path, options)

    # ------------------------------------------------------------------------- modification
    def mark_modified(self) -> None:
        """Work the undo history does not show (e.g. a finished inversion) changed the document."""
        if self.is_open:
            self._dirty = True
            self._changed()
            self.modified_changed.emit(True)

    def mark_saved(self, project_path: str | Path) -> None:
        self.project_path = Path(project_path)
        self._dirty = False
        self.undo_stack.setClean()
        self.modified_changed.emit(self.is_modified)

    def _clean_changed(self, _clean: bool) -> None:
        self.modified_changed.emit(self.is_modified)

    def _changed(self, *_: Any) -> None:
        if not self._rebuilding:
            self.revision += 1

    def operations(self) -> list[dict[str, Any]]:
        """The applied operations up to the current step, oldest first (for project files and the
        provenance of exports), including those of the starting result and of trimmed steps."""
        out = list(self.base_operations)
        for i in range(self.undo_stack.index()):
            c = self.undo_stack.command(i)
            if isinstance(c, HistoryCommand) and c.op is not None:
                out.append({"label": c.text(), **c.op})
        return out

    # ---------------------------------------------------------------------------- history
    def history_bytes(self) -> int:
        """Bytes of image data held only by the history (the original and the current result excluded)."""
        return self._bytes_from(0)

    def trim_history(self) -> int:
        """Drop the oldest steps until the history fits ``memory_limit``; returns how many were dropped."""
        stack, drop = self.undo_stack, 0
        while stack.index() - drop > 1 and self._bytes_from(drop) > self.memory_limit:
            drop += 1
        if drop:
            self._rebuild(drop)
        return drop

    def _bytes_from(self, first: int) -> int:
        keep = {id(a) for a in (self.original, self.current, self.current_alpha) if a is not None}
        seen: dict[int, int] = {}
        for i in range(first, self.undo_stack.count()):
            c = self.undo_stack.command(i)
            for a in c.images() if isinstance(c, HistoryCommand) else []:
                if id(a) not in keep:
                    seen[id(a)] = a.nbytes
        return sum(seen.values())

    def _rebuild(self, drop: int) -> None:
        """Rebuild the stack without its ``drop`` oldest steps (models untouched, position kept)."""
        stack = self.undo_stack
        index, clean = stack.index(), stack.isClean()
        cmds = [stack.command(i).clone() for i in range(drop, stack.count())]
        gone = (stack.command(i) for i in range(drop))  # all applied (drop < index): their ops stay
        self.base_operations += [{"label": c.text(), **c.op} for c in gone if isinstance(c, HistoryCommand) and c.op]
        self._rebuilding, HistoryCommand.muted = True, True
        try:
            stack.clear()
            for c in cmds:
                stack.push(c)
            for _ in range(stack.count() - (index - drop)):
                stack.undo()
        finally:
            self._rebuilding, HistoryCommand.muted = False, False
        if not clean:
            self._dirty = True  # the clean state may have been among the dropped steps


def export_image(image: LoadedImage, path: str | Path, quality: int = 95, operations: list[dict[str, Any]] = (),
                 source: str | Path | None = None, options: ProvenanceOptions | None = None) -> list[str]:
    """Write ``image`` atomically at its own bit depth with its ICC profile, EXIF and XMP; when models
    changed it, the file says so: the ``provenance`` steps each operation recorded in its worker
    (``core.provenance.from_operations``).  Never over ``source``, the photo being edited."""
    if source is not None and Path(path).resolve() == Path(source).resolve():
        raise ImageError(f"{Path(path).name} is the photo being edited: export to another file (the original "
                         "would be lost)")  # fmt: skip
    bit_depth = 16 if image.pixels.dtype == np.uint16 else 8
    made = bool(operations) and operations[0].get("op") == GENERATE_OP  # a picture a generator made, no photo
    prov = from_operations(list(operations), source, options, made_by_model=made)
    return write_image(path, image.pixels, image.alpha, bit_depth, image.icc_profile, image.exif, quality,
                       xmp=image.xmp, provenance=prov)  # fmt: skip


class EditState(QObject):
    """Slider values of the portrait edit (direction name -> α); undo commands change them."""

    changed = Signal(str, float)  # name, value ('' = several changed)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.values: dict[str, float] = {}

    def set_names(self, names: list[str]) -> None:
        """A new set of directions, all at 0."""
        self.values = {n: 0.0 for n in names}
        self.changed.emit("", 0.0)

    def value(self, name: str) -> float:
        return self.values.get(name, 0.0)

    def set_value(self, name: str, value: float) -> None:
        if name in self.values and self.values[name] != value:
            self.values[name] = float(value)
            self.changed.emit(name, float(value))

    def set_all(self, values: dict[str, float]) -> None:
        self.values.update({k: float(v) for k, v in values.items() if k in self.values})
        self.changed.emit("", 0.0)

    def active(self) -> dict[str, float]:
        """Non-zero values only."""
        return {k: v for k, v in self.values.items() if v != 0.0}
