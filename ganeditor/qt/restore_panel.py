"""Restore panel: old-photo restoration of the current image -- the stages as toggles with a strength
and a model each, the face fidelity, the upscale factor, and the damage mask shown over the photo,
which the user can detect, then paint on (add or erase) before the restoration fills it.

The work runs on the device lane (``pipelines.restore``); this widget only holds choices and the
mask being edited, and passes copies of them to each job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageDraw
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel,
                               QPushButton, QRadioButton, QSlider, QVBoxLayout, QWidget)

from ganeditor.core.provenance import step_record
from ganeditor.pipelines.catalog import catalog
from ganeditor.pipelines.restore import DEFAULT_MODELS, DEFAULT_STAGES, STAGE_ORDER, RestoreModels, RestoreOptions, restore
from ganeditor.pipelines.restore_damage import detect_damage
from ganeditor.qt.document import Document
from ganeditor.qt.image_view import ImageView
from ganeditor.qt.jobs import Job, JobTask, Lane
from ganeditor.qt.widgets import hint, section

LABELS = {"scratches": "Dust && scratches", "global": "Noise, blur, fading", "colour": "Colourise",
          "upscale": "Upscale", "faces": "Faces"}  # fmt: skip
TIPS = {
    "scratches": "Find dust and scratches (or use the mask you painted) and fill them. Strength: how sure the "
                 "detector must be (100 %: p ≥ 0.5).",
    "global": "Remove noise, blur, JPEG blocks, fading and colour casts. Strength: how much of the change to keep.",
    "colour": "Colourise a black-and-white or sepia photo (chroma predicted from luma). Strength: saturation.",
    "upscale": "Enlarge with a super-resolution network. Strength: blend with a plain (Lanczos) enlargement.",
    "faces": "Restore each face with a face model (GFPGAN, RestoreFormer) or the StyleGAN prior, pasted back "
             "seamlessly. Strength: how much of the restored face to paste.",
}
ARCHS = {"scratches": ("scratch-detector",), "inpaint": ("inpaint-unet",), "global": ("restore-unet",),
         "colour": ("colorize-unet",)}  # fmt: skip
OTHER = "Other file…"


def model_choices(slot: str) -> list[str]:
    """Model names in the library that fit ``slot`` (the default first)."""
    names = [DEFAULT_MODELS[slot]]
    for e in catalog():
        fits = e.arch in ARCHS.get(slot, ()) or (slot == "upscale" and e.kind == "upscaler") or \
            (slot == "faces" and e.kind == "generator")
        if fits and e.name not in names:
            names.append(e.name)
    return names


class StageRow(QWidget):
    """A stage's toggle, strength slider and model choice."""

    changed = Signal()

    def __init__(self, stage: str, on: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stage = stage
        self.toggle = QCheckBox(LABELS[stage], checked=on, toolTip=TIPS[stage])
        self.strength = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=100,
                                toolTip=f"{LABELS[stage].replace('&&', '&')} strength")
        self.value = QLabel("100 %", minimumWidth=42)
        self.model = QComboBox(toolTip="Model used by this stage (any checkpoint spandrel knows works too)")
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model.setMinimumContentsLength(12)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 2, 0, 2)
        grid.addWidget(self.toggle, 0, 0)
        grid.addWidget(self.strength, 0, 1)
        grid.addWidget(self.value, 0, 2)
        grid.addWidget(self.model, 1, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        self.strength.valueChanged.connect(lambda v: self.value.setText(f"{v} %"))
        self.toggle.toggled.connect(self._sync)
        self.model.activated.connect(self._pick_other)
        self.fill_models()
        self._sync()

    def fill_models(self) -> None:
        current = self.model.currentText()
        self.model.blockSignals(True)
        self.model.clear()
        for name in model_choices(self.stage):
            self.model.addItem(name)
        self.model.addItem(OTHER)
        idx = self.model.findText(current)
        self.model.setCurrentIndex(max(0, idx if current != OTHER else 0))
        self.model.blockSignals(False)

    def _pick_other(self, index: int) -> None:
        if self.model.itemText(index) != OTHER:
            return
        path, _ = QFileDialog.getOpenFileName(self, f"Model for {LABELS[self.stage].replace('&&', '&')}", "",
                                              "Models (*.safetensors *.pth *.pt *.ckpt *.pkl);;All files (*)")
        if path:
            self.model.insertItem(self.model.count() - 1, path)
            self.model.setCurrentIndex(self.model.count() - 2)
        else:
            self.model.setCurrentIndex(0)

    def _sync(self) -> None:
        on = self.toggle.isChecked()
        for w in (self.strength, self.value, self.model):
            w.setEnabled(on)
        self.changed.emit()


@dataclass(frozen=True)
class _Plan:
    """Everything a restore job needs, copied off the widgets on the GUI thread."""

    options: RestoreOptions
    models: dict[str, str]
    device: str
    label: str


class RestorePanel(QWidget):
    """Stages, fidelity, upscale factor, the damage mask and its brush; runs restorations on the lane."""

    error = Signal(str, str)
    message = Signal(str)

    def __init__(self, lane: Lane, doc: Document, view: ImageView, options: Callable[[], dict[str, Any]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lane, self.doc, self.view, self.options = lane, doc, view, options
        self.mask: np.ndarray | None = None  # the damage mask of the current image, once detected or painted
        self._models: tuple[tuple, RestoreModels] | None = None  # worker thread only
        self.rows = {s: StageRow(s, s in DEFAULT_STAGES) for s in STAGE_ORDER}
        self.fidelity = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=70,
                                toolTip="Share of the photo's own face: 100 % keeps it, 0 % takes the face model's")
        self.fidelity_value = QLabel("0.70", minimumWidth=42)
        self.factor = QComboBox(toolTip="Enlargement factor")
        for f in (2, 4):
            self.factor.addItem(f"×{f}", f)
        self.factor.setCurrentIndex(1)
        self.detect_button = QPushButton("Find damage", toolTip="Detect dust and scratches and show them in red")
        self.show_mask = QCheckBox("Show mask", checked=True)
        self.add_mode, self.erase_mode = QRadioButton("Paint"), QRadioButton("Erase")
        self.off_mode = QRadioButton("Pan", checked=True)
        group = QButtonGroup(self)
        for b in (self.off_mode, self.add_mode, self.erase_mode):
            group.addButton(b)
        self.brush_size = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=40, value=6, toolTip="Brush radius (px)")
        self.clear_button = QPushButton("Clear", toolTip="Forget the mask (the restoration detects again)")
        self.mask_hint = hint()
        self.run_button = QPushButton("Restore")
        self.run_button.setObjectName("primary")
        self.run_hint = hint()
        self._layout()
        self._connect()
        self.update_state()

    # ------------------------------------------------------------------------------ layout
    def _layout(self) -> None:
        lay = QVBoxLayout(self)
        lay.addWidget(section("Stages (in this order)"))
        for row in self.rows.values():
            lay.addWidget(row)
        fid = QHBoxLayout()
        fid.addWidget(QLabel("Face fidelity"))
        fid.addWidget(self.fidelity, 1)
        fid.addWidget(self.fidelity_value)
        lay.addLayout(fid)
        up = QHBoxLayout()
        up.addWidget(QLabel("Upscale by"))
        up.addWidget(self.factor, 1)
        lay.addLayout(up)
        lay.addWidget(section("Damage mask"))
        r1 = QHBoxLayout()
        r1.addWidget(self.detect_button)
        r1.addWidget(self.show_mask)
        r1.addWidget(self.clear_button)
        lay.addLayout(r1)
        r2 = QHBoxLayout()
        for b in (self.off_mode, self.add_mode, self.erase_mode):
            r2.addWidget(b)
        r2.addWidget(self.brush_size, 1)
        lay.addLayout(r2)
        lay.addWidget(self.mask_hint)
        lay.addWidget(self.run_button)
        lay.addWidget(self.run_hint)
        lay.addWidget(hint("Compare with the original: View ▸ Split before/after (Ctrl+B) or hold \\. "
                           "Cancel in the status bar."))
        lay.addStretch(1)

    def _connect(self) -> None:
        self.fidelity.valueChanged.connect(lambda v: self.fidelity_value.setText(f"{v / 100:.2f}"))
        for row in self.rows.values():
            row.changed.connect(self.update_state)
        self.detect_button.clicked.connect(self.detect)
        self.run_button.clicked.connect(self.run)
        self.clear_button.clicked.connect(lambda: self.set_mask(None))
        self.show_mask.toggled.connect(lambda _on: self._show_mask())
        for b in (self.off_mode, self.add_mode, self.erase_mode):
            b.toggled.connect(lambda _on: self._brush_mode())
        self.brush_size.valueChanged.connect(lambda _v: self._brush_mode())
        self.view.mask_stroke.connect(self._stroke)
        self.doc.image_changed.connect(self._image_changed)
        self.lane.job_started.connect(lambda _j: self.update_state())
        self.lane.job_finished.connect(lambda _j: self.update_state())

    # ------------------------------------------------------------------------------- state
    def update_state(self) -> None:
        busy, has = self.lane.busy("restore"), self.doc.is_open
        stages = [s for s, r in self.rows.items() if r.toggle.isChecked()]
        self.run_button.setEnabled(has and not busy and bool(stages))
        self.detect_button.setEnabled(has and not busy)
        for w in (self.add_mode, self.erase_mode, self.brush_size, self.clear_button, self.show_mask):
            w.setEnabled(has)
        self.fidelity.setEnabled(self.rows["faces"].toggle.isChecked())
        self.factor.setEnabled(self.rows["upscale"].toggle.isChecked())
        if not has:
            self.run_hint.setText("Open a photo first.")
        elif busy:
            self.run_hint.setText("Running… (Cancel in the status bar)")
        elif not stages:
            self.run_hint.setText("Turn on at least one stage.")
        else:
            h, w = self.doc.current.shape[:2]
            self.run_hint.setText(f"{' → '.join(LABELS[s].replace('&&', '&') for s in stages)} on the {w}×{h} image")
        n = 0 if self.mask is None else int(self.mask.sum())
        self.mask_hint.setText("No mask yet: the restoration finds the damage itself, or press Find damage and "
                               "correct it with the brush." if self.mask is None else
                               f"{n:,} pixels ({n / self.mask.size * 100:.2f} %) will be filled. "
                               "Paint or erase with the brush; the middle button pans.")

    def _image_changed(self) -> None:
        if self.mask is not None and (self.doc.current is None or self.mask.shape != self.doc.current.shape[:2]):
            self.set_mask(None)
        self.update_state()

    def set_mask(self, mask: np.ndarray | None) -> None:
        """The mask the next restoration fills (None: let it detect)."""
        self.mask = mask
        self._show_mask()
        self.update_state()

    def _show_mask(self) -> None:
        self.view.set_mask(self.mask if self.show_mask.isChecked() else None)

    def _brush_mode(self) -> None:
        on = self.add_mode.isChecked() or self.erase_mode.isChecked()
        self.view.set_brush(float(self.brush_size.value()) if on and self.doc.is_open else None)
        if on and self.mask is None and self.doc.is_open:
            self.set_mask(np.zeros(self.doc.current.shape[:2], bool))

    def _stroke(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Paint (or erase) a round brush segment into the mask; refresh only that part of the view."""
        if self.mask is None or self.view.brush is None:
            return
        r = self.view.brush
        h, w = self.mask.shape
        bx0, by0 = max(0, int(min(x0, x1) - r - 1)), max(0, int(min(y0, y1) - r - 1))
        bx1, by1 = min(w, int(max(x0, x1) + r + 2)), min(h, int(max(y0, y1) + r + 2))
        if bx1 <= bx0 or by1 <= by0:
            return
        stamp = Image.new("1", (bx1 - bx0, by1 - by0), 0)
        d = ImageDraw.Draw(stamp)
        a, b = (x0 - bx0 - 0.5, y0 - by0 - 0.5), (x1 - bx0 - 0.5, y1 - by0 - 0.5)
        d.line([a, b], fill=1, width=max(1, round(2 * r)))
        for cx, cy in (a, b):
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
        hit = np.asarray(stamp, bool)
        region = self.mask[by0:by1, bx0:bx1]
        region[hit] = self.add_mode.isChecked()
        self.view.update_mask(self.mask, bx0, by0, bx1, by1)
        self.update_state()

    # -------------------------------------------------------------------------------- jobs
    def _plan(self, stages: tuple[str, ...], label: str) -> _Plan:
        models = {s: r.model.currentText() for s, r in self.rows.items() if r.toggle.isChecked() or s == "scratches"}
        strength = {s: r.strength.value() / 100 for s, r in self.rows.items()}
        opts = self.options()
        options = RestoreOptions(stages=stages, strength=strength, upscale=float(self.factor.currentData()),
                                 fidelity=self.fidelity.value() / 100, tile=opts.get("tile"), fast=opts.get("fast", False),
                                 mask=None if self.mask is None else self.mask.copy())
        return _Plan(options, models, opts.get("device", "auto"), label)

    def _loaded(self, plan: _Plan, stages: tuple[str, ...]) -> RestoreModels:
        """The models of ``stages`` (cached across runs while the choices stay the same)."""
        key = (stages, tuple(sorted(plan.models.items())), plan.device)
        if self._models is None or self._models[0] != key:
            self._models = (key, RestoreModels.load(stages, plan.models, plan.device))
        return self._models[1]

    def detect(self) -> None:
        if not self.doc.is_open:
            return
        plan = self._plan(("scratches",), "Find damage")
        pixels = self.doc.current
        s = plan.options.strength_of("scratches")

        def work(task: JobTask) -> np.ndarray:
            task.report(0, None, "loading the detector")
            models = self._loaded(plan, ("scratches",))
            return detect_damage(models.nets["scratches"], pixels, strength=s, options=plan.options.image_options(),
                                 task=task)

        self.lane.submit(Job(work, key="restore", label="Finding dust and scratches", on_result=self.set_mask,
                             on_error=lambda e: self.error.emit("Find damage", str(e))))  # fmt: skip
        self.update_state()

    def run(self) -> None:
        stages = tuple(s for s, r in self.rows.items() if r.toggle.isChecked())
        if not self.doc.is_open or not stages:
            return
        plan = self._plan(stages, "Restore (" + ", ".join(stages) + ")")
        image = self.doc.as_loaded()

        def work(task: JobTask) -> dict[str, Any]:
            task.report(0, None, "loading models")
            models = self._loaded(plan, stages)
            res = restore(image, models, plan.options, task=task)
            steps = [step_record(s) for s in models.provenance(plan.options)]
            return {"pixels": res.image.pixels, "alpha": res.image.alpha, "notes": res.notes, "steps": steps}

        def done(r: dict[str, Any]) -> None:
            self.set_mask(None)  # the damage is filled: a new image, a new mask
            self.doc.apply_result(r["pixels"], r["alpha"], plan.label,
                                  {"op": "restore", "stages": list(stages), "provenance": r["steps"]})
            self.message.emit("; ".join(n for n in r["notes"] if n) or "Restored")

        self.lane.submit(Job(work, key="restore", label="Restoring", on_result=done,
                             on_error=lambda e: self.error.emit("Restore", str(e))))  # fmt: skip
        self.update_state()

    def refresh_models(self) -> None:
        """Re-read the model library into the stages' choices."""
        for row in self.rows.values():
            row.fill_models()
