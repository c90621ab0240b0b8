"""Generate panel: faces from seeds with the portrait generator — seed (or random), truncation, noise,
class for conditional generators, style mixing from a second seed (coarse: pose and face shape;
middle: features and hairstyle; fine: colours and texture), a grid of neighbouring seeds to browse,
"Edit this face" (the latent goes straight to the portrait sliders, no fitting) and export.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel,
                               QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from ganeditor.core.imageio import write_image
from ganeditor.core.provenance import generated, record, step_record
from ganeditor.pipelines.generate import MIX_PARTS, FaceRequest
from ganeditor.qt.convert import qimage_from_array
from ganeditor.qt.jobs import Job, Lane
from ganeditor.qt.widgets import Thumb, hint, section

GRID = 8  # neighbouring seeds shown
NOISE_LABELS = {"const": "Fixed (reproducible)", "random": "Random each time", "none": "None (smoother)"}
MIX_TIPS = {"coarse": "Coarse: pose, face shape, hair volume", "middle": "Middle: features, hairstyle, eyes",
            "fine": "Fine: colours, skin and hair texture"}  # fmt: skip


class GeneratePanel(QWidget):
    """See the module docstring.  Uses the portrait panel's generator (its session, on the device lane)."""

    edit_face = Signal(object, object, str, object)  # ws [1, num_ws, w_dim] numpy, image, name ("seed0042"), step record
    message = Signal(str)
    error = Signal(str, str)

    def __init__(self, lane: Lane, portrait, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lane, self.portrait = lane, portrait
        self.current: tuple[np.ndarray, np.ndarray] | None = None  # (ws, image) of the face shown
        self._build()
        portrait.generator_loaded.connect(lambda _e: self._generator_changed())
        self._generator_changed()

    def _build(self) -> None:
        self.status = hint()
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0, toolTip="A seed always gives the same face")
        self.random_button = QPushButton("Random", toolTip="A random seed")
        self.psi = QDoubleSpinBox(minimum=0.0, maximum=1.5, value=0.7, singleStep=0.05, decimals=2)
        self.psi.setToolTip("Truncation: below 1 pulls faces towards the average (cleaner, less varied)")
        self.noise = QComboBox(toolTip="The generator's per-pixel noise (fine detail such as hair strands)")
        for k, v in NOISE_LABELS.items():
            self.noise.addItem(v, k)
        self.klass = QSpinBox(minimum=0, maximum=0, toolTip="Class, for generators trained on labelled images")
        self.klass_label = QLabel("Class")
        self.mix_seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=1, toolTip="The face whose styles are mixed in")
        self.mix = {p: QCheckBox(p.capitalize(), toolTip=MIX_TIPS[p]) for p in MIX_PARTS}
        self.preview = Thumb("", size=220, empty="choose a generator")
        self.grid = QGridLayout()
        self.tiles: list[QToolButton] = []
        for i in range(GRID):
            b = QToolButton(autoRaise=True, iconSize=QSize(60, 60))
            b.clicked.connect(lambda _c=False, k=i: self.seed.setValue(self._first + k))
            self.grid.addWidget(b, i // 4, i % 4)
            self.tiles.append(b)
        self.edit_button = QPushButton("Edit this face", toolTip="Open it as the photo and edit it with the sliders "
                                       "(its latent is known: no fitting needed)")  # fmt: skip
        self.edit_button.setObjectName("primary")
        self.export_button = QPushButton("Export…", toolTip="Save the face (marked as AI-generated)")
        lay = QVBoxLayout(self)
        lay.addWidget(self.status)
        lay.addWidget(section("Face"))
        lay.addLayout(_row(QLabel("Seed"), self.seed, self.random_button))
        lay.addLayout(_row(QLabel("Truncation"), self.psi, QLabel("Noise"), self.noise))
        lay.addLayout(_row(self.klass_label, self.klass))
        lay.addWidget(section("Mix styles from another seed"))
        lay.addLayout(_row(QLabel("Seed"), self.mix_seed, *self.mix.values()))
        lay.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(section("Nearby seeds"))
        lay.addLayout(self.grid)
        lay.addLayout(_row(self.export_button, self.edit_button))
        lay.addStretch(1)
        self.random_button.clicked.connect(lambda: self.seed.setValue(random.randrange(2**31)))
        for w in (self.seed, self.klass, self.mix_seed):
            w.valueChanged.connect(lambda _v: self.refresh())
        self.psi.valueChanged.connect(lambda _v: self.refresh())
        self.noise.currentIndexChanged.connect(lambda _i: self.refresh())
        for c in self.mix.values():
            c.toggled.connect(lambda _on: self.refresh())
        self.edit_button.clicked.connect(self._edit)
        self.export_button.clicked.connect(self._export)

    @property
    def _first(self) -> int:
        return self.seed.value() - self.seed.value() % GRID

    def request(self, seed: int | None = None) -> FaceRequest:
        """The face the controls describe (``seed``: another seed with the same settings, unmixed)."""
        info = self.portrait.info
        klass = self.klass.value() if info is not None and info.classes else None
        parts = tuple(p for p, c in self.mix.items() if c.isChecked()) if seed is None else ()
        return FaceRequest(self.seed.value() if seed is None else seed, self.psi.value(), self.noise.currentData(),
                           klass, self.mix_seed.value() if parts else None, parts)  # fmt: skip

    def _generator_changed(self) -> None:
        info = self.portrait.info
        ok = info is not None
        self.klass.setMaximum(max(0, (info.classes if ok else 0) - 1))
        for w in (self.klass, self.klass_label):
            w.setVisible(ok and info.classes > 0)
        self.status.setText(f"Faces from {self.portrait.generator.name} ({info.resolution} px)." if ok else
                            "Choose a generator in the Models panel.")  # fmt: skip
        self.refresh()

    def refresh(self) -> None:
        """Render the face and the grid of nearby seeds (latest request wins)."""
        ok = self.portrait.info is not None
        for w in (self.edit_button, self.export_button):
            w.setEnabled(ok and self.current is not None)
        if not ok:
            return
        reqs = [self.request()] + [self.request(self._first + k) for k in range(GRID)]
        self.lane.submit(Job(lambda task: self.portrait.session.generate(reqs), key="generate", label="Generating",
                             on_result=self._shown, on_error=lambda e: self.error.emit("Generate", str(e))))

    def _shown(self, faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.current = faces[0]
        req = self.request()
        mixed = f", styles of {req.mix_seed} ({', '.join(req.mix_parts)})" if req.mix_parts else ""
        self.preview.set_image(faces[0][1], f"seed {req.seed}{mixed}")
        for k, (tile, (_ws, img)) in enumerate(zip(self.tiles, faces[1:])):
            tile.setIcon(QIcon(QPixmap.fromImage(qimage_from_array(img))))
            tile.setToolTip(f"seed {self._first + k}")
            tile.setDown(self._first + k == req.seed)
        for w in (self.edit_button, self.export_button):
            w.setEnabled(True)

    def _edit(self) -> None:
        if self.current is None or self.portrait.generator is None:
            return
        (ws, image), name, model, settings = self.current, f"seed{self.seed.value():04d}", *self._made_by()
        self.lane.submit(Job(lambda task: step_record(record("generate", model, settings)), key="generate-edit",
                             label="Opening the face", on_result=lambda step: self.edit_face.emit(ws, image, name, step),
                             on_error=lambda e: self.error.emit("Generate", str(e))))  # fmt: skip

    def _made_by(self) -> tuple[Path, dict]:
        """The generator and the settings of the face shown (for provenance)."""
        req = self.request()
        return self.portrait.generator.path, {
            "seed": req.seed, "truncation_psi": req.truncation_psi, "noise_mode": req.noise_mode,
            "class": req.class_idx, "mix_seed": req.mix_seed, "mix": ",".join(req.mix_parts) or None}

    def _export(self) -> None:
        if self.current is None or self.portrait.generator is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export face", f"seed{self.seed.value():04d}.png",
                                              "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp)")
        if path:
            self.export(path)

    def export(self, path: str) -> None:
        """Write the face shown (with provenance: a generated picture) on the device lane."""
        image, (model, settings) = self.current[1], self._made_by()

        def write(task) -> str:
            write_image(path, image, provenance=generated(record("generate", model, settings)))
            return path

        self.lane.submit(Job(write, key="generate-export", label="Exporting",
                             on_result=lambda p: self.message.emit(f"Exported {Path(p).name}"),
                             on_error=lambda e: self.error.emit("Export", str(e))))  # fmt: skip


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    return row
