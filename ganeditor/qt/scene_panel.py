"""Scene panel: translate the photo (e.g. day <-> night) and upscale it, tiled, with progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

import torch

from ganeditor.core.imageio import LoadedImage
from ganeditor.core.provenance import record, step_record
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.pipelines.catalog import ModelEntry, translation_directions
from ganeditor.pipelines.image2image import Image2ImageOptions, translate, upscale
from ganeditor.qt.document import Document
from ganeditor.qt.jobs import Job, JobTask, Lane
from ganeditor.qt.widgets import hint, section


class CheckpointCache:
    """Loaded checkpoints by (path, device); used only on the device lane's worker thread."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._items: dict[tuple[str, str], Checkpoint] = {}

    def get(self, path: Path, device: torch.device) -> Checkpoint:
        key = (str(path), str(device))
        if key not in self._items:
            while len(self._items) >= self.size:
                self._items.pop(next(iter(self._items)))
            self._items[key] = load_checkpoint(path, device)
        return self._items[key]


class ScenePanel(QWidget):
    """Translate and upscale the current result; each run is one undoable step."""

    error = Signal(str, str)

    def __init__(self, lane: Lane, doc: Document, options: Callable[[], dict[str, Any]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lane, self.doc, self.options = lane, doc, options
        self.cache = CheckpointCache()
        self.translator: ModelEntry | None = None
        self.upscaler: ModelEntry | None = None
        self.direction_box = QComboBox(toolTip="Which generator of the translation model to use")
        self.translate_button = QPushButton("Translate")
        self.translate_button.setObjectName("primary")
        self.translate_hint = hint()
        self.scale_box = QComboBox(toolTip="Output scale (the network's own scale, or resized with Lanczos)")
        self.scale_box.addItem("×4", 4)
        self.scale_box.addItem("×2", 2)
        self.upscale_button = QPushButton("Upscale")
        self.upscale_button.setObjectName("primary")
        self.upscale_hint = hint()
        row1 = QHBoxLayout()
        row1.addWidget(self.direction_box, 1)
        row1.addWidget(self.translate_button)
        row2 = QHBoxLayout()
        row2.addWidget(self.scale_box, 1)
        row2.addWidget(self.upscale_button)
        lay = QVBoxLayout(self)
        lay.addWidget(section("Translate"))
        lay.addLayout(row1)
        lay.addWidget(self.translate_hint)
        lay.addWidget(section("Upscale"))
        lay.addLayout(row2)
        lay.addWidget(self.upscale_hint)
        lay.addWidget(hint("Both run at full resolution in tiles, with exact seams; the status bar shows "
                           "progress and Cancel. Tile size and fast mode are in Settings."))
        lay.addStretch(1)
        self.translate_button.clicked.connect(self.run_translate)
        self.upscale_button.clicked.connect(self.run_upscale)
        doc.image_changed.connect(self.update_state)
        lane.job_finished.connect(lambda _j: self.update_state())
        lane.job_started.connect(lambda _j: self.update_state())
        self.update_state()

    def set_model(self, role: str, entry: ModelEntry | None) -> None:
        """The Models panel chose a translator or an upscaler."""
        if role == "translator":
            self.translator = entry
            self.direction_box.clear()
            if entry is not None:
                for r, label in translation_directions(entry.meta, entry.roles or ["G_A"]):
                    self.direction_box.addItem(f"{label}  ({r})", r)
        elif role == "upscaler":
            self.upscaler = entry
            scale = int((entry.meta.get("scale") if entry else None) or 4)
            self.scale_box.setItemText(0, f"×{scale} (native)")
            self.scale_box.setItemData(0, scale)
        self.update_state()

    def update_state(self) -> None:
        busy = self.lane.busy("scene")
        has = self.doc.is_open
        for entry, button, label, what in ((self.translator, self.translate_button, self.translate_hint, "translator"),
                                           (self.upscaler, self.upscale_button, self.upscale_hint, "upscaler")):
            ok = has and entry is not None and not busy
            button.setEnabled(ok)
            if not has:
                label.setText("Open a photo first.")
            elif entry is None:
                label.setText(f"No {what} chosen: pick one in the Models panel.")
            elif busy:
                label.setText("Running… (Cancel in the status bar)")
            else:
                h, w = self.doc.current.shape[:2]
                label.setText(f"{entry.name} on the {w}×{h} image")
        self.direction_box.setEnabled(self.translator is not None)

    def _submit(self, label: str, fn: Callable[[Checkpoint, LoadedImage, JobTask], LoadedImage], entry: ModelEntry,
                role: str | None = None, **settings: Any) -> None:
        opts = self.options()
        op = {"op": label.split(" ")[0].lower(), "model": entry.name, "model_path": str(entry.path),
              "tile": opts.get("tile"), "fast": bool(opts.get("fast")), **settings}  # what a project records
        image = self.doc.as_loaded()
        cache, device = self.cache, opts["device"]  # resolved once, when the job is submitted

        def work(task: JobTask) -> dict[str, Any]:
            task.report(0, None, "loading model")
            ckpt = cache.get(entry.path, device)
            if role is not None and role in ckpt.nets:
                ckpt = Checkpoint(ckpt.format_id, ckpt.format_name, {role: ckpt.nets[role]}, ckpt.meta, ckpt.path)
            out = fn(ckpt, image, task)
            step = record(op["op"], entry.path, {"network": ckpt.primary_role, **settings, "tile": op["tile"],
                                                 "fast": op["fast"]})  # fmt: skip
            return {"pixels": out.pixels, "alpha": out.alpha, "notes": out.notes, "step": step_record(step),
                    "network": ckpt.primary_role}  # fmt: skip

        def done(r: dict[str, Any]) -> None:
            self.doc.apply_result(r["pixels"], r["alpha"], label, {**op, "network": r["network"], "provenance": [r["step"]]})

        self.lane.submit(Job(work, key="scene", label=label, on_result=done,
                             on_error=lambda e: self.error.emit(label, str(e))))  # fmt: skip
        self.update_state()

    def run_translate(self) -> None:
        if self.translator is None or not self.doc.is_open:
            return
        opts = self.options()
        role = self.direction_box.currentData()
        label = f"Translate {self.direction_box.currentText().split('  (')[0]}"
        options = Image2ImageOptions(tile=opts.get("tile"), fast=opts.get("fast", False))
        self._submit(label, lambda ck, img, t: translate(ck, img, options, task=t), self.translator, role)

    def run_upscale(self) -> None:
        if self.upscaler is None or not self.doc.is_open:
            return
        opts = self.options()
        scale = self.scale_box.currentData()
        options = Image2ImageOptions(tile=opts.get("tile"), outscale=float(scale), fast=opts.get("fast", False))
        self._submit(f"Upscale ×{scale}", lambda ck, img, t: upscale(ck, img, options, task=t), self.upscaler,
                     outscale=float(scale))
