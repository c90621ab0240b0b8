"""Teach a slider: name an attribute, mark at least 5 faces "more" and 5 "less" among generated samples
(and the face being edited), and a new slider is fitted from the marks (``pipelines.teach``).

A click on a face cycles unmarked -> more -> less -> unmarked.  The faces and the fitting run on the
device lane; the dialog never blocks the window.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QDialog, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QToolButton, QVBoxLayout, QWidget)

from ganeditor.pipelines.portrait import PortraitSession
from ganeditor.pipelines.teach import MIN_EACH, Marks
from ganeditor.qt.convert import qimage_from_array
from ganeditor.qt.jobs import Job, Lane

COLUMNS, ROWS, TILE = 6, 4, 84
MARK_STYLE = {"": "", "more": "border: 3px solid #27ae60;", "less": "border: 3px solid #e74c3c;"}
MARK_TEXT = {"": "", "more": "more", "less": "less"}


class FaceTile(QToolButton):
    """A face to mark; ``mark`` is '', 'more' or 'less'."""

    def __init__(self, image: np.ndarray, w: np.ndarray, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.w, self.caption, self.mark = w, caption, ""
        self.setIcon(QIcon(QPixmap.fromImage(qimage_from_array(image))))
        self.setIconSize(QSize(TILE, TILE))
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        self.setToolTip("Click: mark as showing more of it, again: less, again: unmarked")
        self.clicked.connect(self.cycle)
        self._show()

    def cycle(self) -> None:
        self.mark = {"": "more", "more": "less", "less": ""}[self.mark]
        self._show()

    def _show(self) -> None:
        self.setText(f"{self.caption}\n{MARK_TEXT[self.mark] or ' '}")
        self.setStyleSheet(MARK_STYLE[self.mark])


class TeachDialog(QDialog):
    """See the module docstring; ``done_cb(spec)`` gets the new slider's SliderSpec."""

    def __init__(self, lane: Lane, session: PortraitSession, with_photo: bool, done_cb: Callable, parent=None) -> None:
        super().__init__(parent)
        self.lane, self.session, self.done_cb = lane, session, done_cb
        self.setWindowTitle("Teach a slider")
        self.tiles: list[FaceTile] = []
        self.next_seed = 1000
        self.name = QLineEdit(placeholderText="What should the slider change? e.g. Freckles, Round face")
        self.grid_widget = QWidget()
        self.grid = QGridLayout(self.grid_widget)
        self.grid.setSpacing(4)
        self.more_faces = QPushButton("More faces", toolTip="Show another set of generated faces (marks are kept)")
        self.independent = QCheckBox("Keep it independent of the named sliders", checked=False)
        self.independent.setToolTip("Removes from the new direction what the named sliders (hair colour, glasses, ...) "
                                    "do: it leaks less into them but moves its own attribute much less")  # fmt: skip
        self.count = QLabel()
        self.count.setObjectName("hint")
        self.create = QPushButton("Create slider")
        self.create.setObjectName("primary")
        cancel = QPushButton("Cancel")
        buttons = QHBoxLayout()
        buttons.addWidget(self.more_faces)
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.create)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Name the attribute, then click faces that show <b>more</b> of it (once) or <b>less</b> "
                             f"(twice). At least {MIN_EACH} of each."))
        lay.addWidget(self.name)
        lay.addWidget(self.grid_widget)
        lay.addWidget(self.independent)
        lay.addWidget(self.count)
        lay.addLayout(buttons)
        self.name.textChanged.connect(lambda _t: self._update())
        self.more_faces.clicked.connect(self._load_faces)
        self.create.clicked.connect(self._create)
        cancel.clicked.connect(self.reject)
        if with_photo:
            self.lane.submit(Job(lambda task: self.session.current_w(), key="teach-photo", label="Your face",
                                 on_result=self._add_photo))  # fmt: skip
        self._load_faces()
        self._update()

    def _add_photo(self, w: np.ndarray | None) -> None:
        if w is None:
            return
        self.lane.submit(Job(lambda task: self.session.render({}), key="teach-photo-image", label="Your face",
                             on_result=lambda img: self._add_tiles([(img, w, "your photo")], first=True)))

    def _load_faces(self) -> None:
        seeds = list(range(self.next_seed, self.next_seed + COLUMNS * ROWS))
        self.next_seed += len(seeds)
        self.more_faces.setEnabled(False)

        def shown(result: tuple[np.ndarray, np.ndarray]) -> None:
            w, images = result
            keep = [t for t in self.tiles if t.mark or t.caption == "your photo"]
            for t in self.tiles:
                if t not in keep:
                    t.deleteLater()
            self.tiles = keep
            self._add_tiles([(images[i], w[i], f"seed {s}") for i, s in enumerate(seeds)])
            self.more_faces.setEnabled(True)

        self.lane.submit(Job(lambda task: self.session.sample_faces(seeds), key="teach-faces", label="Generating faces",
                             on_result=shown, on_error=lambda e: self.count.setText(f"Cannot make faces: {e}")))

    def _add_tiles(self, faces: list, first: bool = False) -> None:
        new = [FaceTile(img, w, cap, self.grid_widget) for img, w, cap in faces]
        for t in new:
            t.clicked.connect(self._update)
        self.tiles = new + self.tiles if first else self.tiles + new
        for i, t in enumerate(self.tiles[: COLUMNS * (ROWS + 2)]):
            self.grid.addWidget(t, i // COLUMNS, i % COLUMNS)
        self._update()

    def marks(self) -> Marks:
        """The W latents of the faces marked "more" and "less"."""
        def pick(mark: str) -> np.ndarray:
            ws = [t.w for t in self.tiles if t.mark == mark]
            return np.stack(ws) if ws else np.zeros((0, 0))

        return Marks(more=pick("more"), less=pick("less"))

    def _update(self) -> None:
        m = self.marks()
        n_more, n_less = len(m.more), len(m.less)
        ok = n_more >= MIN_EACH and n_less >= MIN_EACH and bool(self.name.text().strip())
        self.create.setEnabled(ok)
        need = "" if ok else (" — name it" if n_more >= MIN_EACH and n_less >= MIN_EACH else f" (need {MIN_EACH} of each)")
        self.count.setText(f"Marked: {n_more} more, {n_less} less{need}")

    def _create(self) -> None:
        label, marks, independent = self.name.text().strip(), self.marks(), self.independent.isChecked()
        self.create.setEnabled(False)
        self.count.setText("Fitting the new slider…")

        def made(spec) -> None:
            self.done_cb(spec)
            self.accept()

        def failed(e: BaseException) -> None:
            self.count.setText(f"Could not make the slider: {e}")
            self._update()

        self.lane.submit(Job(lambda task: self.session.teach(label, marks, independent), key="teach-fit",
                             label="Teaching a slider", on_result=made, on_error=failed))
