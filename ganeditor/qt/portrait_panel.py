"""Portrait panel: find and align the face, invert it, move direction sliders, paste back."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QSpinBox, QVBoxLayout, QWidget

from ganeditor.core.device import pick_device
from ganeditor.core.provenance import record, step_record
from ganeditor.pipelines.align import AlignedFace
from ganeditor.pipelines.catalog import ModelEntry, directions_for
from ganeditor.pipelines.directions import pretty_name
from ganeditor.pipelines.face_detect import Face
from ganeditor.pipelines.portrait import (LANDMARK_NAMES, METHOD_LABELS, GeneratorInfo, InversionPreview,
                                          InversionSummary, LatentState, PortraitSession, WeightPaths,
                                          detector_available)
from ganeditor.pipelines.project import PortraitState
from ganeditor.qt.document import Document, EditState
from ganeditor.qt.image_view import ImageView
from ganeditor.qt.jobs import Job, Lane
from ganeditor.qt.preview import PreviewScheduler
from ganeditor.qt.sliders import DirectionSliders
from ganeditor.qt.widgets import Thumb, hint, section

SHORT_NAMES = ("L eye", "R eye", "nose", "L mouth", "R mouth")


class PortraitPanel(QWidget):
    """The portrait workflow over a ``PortraitSession`` run on the device lane.

    The panel owns the GUI-side state (faces, points, the aligned face, the reconstruction, the edited
    face) and hands it to the session's methods as arguments; the session is only touched by jobs.
    """

    message = Signal(str)  # for the status bar
    error = Signal(str, str)  # title, one-line message
    generator_loaded = Signal(object)  # ModelEntry
    generator_failed = Signal(object, str)  # ModelEntry, one-line message
    inverted_changed = Signal()  # an inversion finished (or was restored)
    wants_generator = Signal(object)  # ModelEntry a project needs

    def __init__(self, lane: Lane, doc: Document, view: ImageView,
                 device: Callable[[], torch.device] = lambda: pick_device("auto"),
                 weight_paths: Callable[[], WeightPaths] = WeightPaths, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lane, self.doc, self.view, self.device = lane, doc, view, device
        self.weight_paths = weight_paths
        self.session = PortraitSession()  # used only inside jobs on the lane's worker thread
        self.edits = EditState(self)
        self.generator: ModelEntry | None = None
        self.info: GeneratorInfo | None = None  # the loaded generator (None while loading or failed)
        self.catalog_entries: list[ModelEntry] = []
        self.loaded = False
        self.faces: list[Face] = []
        self.picked: list[tuple[float, float]] = []
        self.aligned: AlignedFace | None = None
        self.reconstruction: np.ndarray | None = None
        self.latent: LatentState | None = None  # the current inversion, as numpy (for project files)
        self._pending: PortraitState | None = None  # project work waiting for its generator to load
        self.edited: np.ndarray | None = None
        self.inverted = False
        self.detector_ok, self.detector_reason = True, ""
        self.scheduler = PreviewScheduler(lane, lambda alphas, task: self.session.render(alphas), parent=self)
        self.scheduler.frame.connect(self._frame)
        self.scheduler.failed.connect(lambda e: self.error.emit("Preview failed", str(e)))
        self._build()
        self.edits.changed.connect(lambda *_: self._request_preview())
        doc.opened.connect(lambda _p: self._photo_changed())
        view.point_picked.connect(self._point)
        lane.job_started.connect(lambda job: self._update_state() if job.key.startswith("portrait") else None)
        self._update_state()

    # ------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.model_label = hint()
        self.detect_button = QPushButton("Detect face")
        self.points_button = QPushButton("Place 5 points…")
        self.points_button.setCheckable(True)
        self.points_button.setToolTip("Click the " + ", ".join(LANDMARK_NAMES) + " on the photo, in this order")
        self.face_box = QComboBox(toolTip="Which detected face (largest first)")
        self.face_box.currentIndexChanged.connect(self._face_chosen)
        row = QHBoxLayout()
        for w in (self.detect_button, self.points_button, self.face_box):
            row.addWidget(w)
        self.face_hint = hint()
        self.target_thumb = Thumb("Aligned", size=104, empty="no face yet")
        self.recon_thumb = Thumb("Reconstruction", size=104, empty="not inverted")
        self.edit_thumb = Thumb("Edited", size=150, empty="invert, then move a slider")
        thumbs = QHBoxLayout()
        thumbs.addWidget(self.target_thumb, 0, Qt.AlignmentFlag.AlignBottom)
        thumbs.addWidget(self.recon_thumb, 0, Qt.AlignmentFlag.AlignBottom)
        thumbs.addWidget(self.edit_thumb, 0, Qt.AlignmentFlag.AlignBottom)
        self.method_box = QComboBox()
        for m, label in METHOD_LABELS.items():
            self.method_box.addItem(label, m)
        self.method_box.setCurrentIndex(self.method_box.findData("wplus"))
        self.method_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.method_box.setMinimumContentsLength(14)  # long method names elide rather than widen the panel
        self.steps_box = QSpinBox(minimum=10, maximum=5000, value=200, singleStep=50, suffix=" steps")
        self.steps_box.setToolTip("Optimisation steps (PTI adds as many tuning steps)")
        self.invert_button = QPushButton("Invert")
        self.invert_button.setObjectName("primary")
        inv = QHBoxLayout()
        inv.addWidget(self.method_box, 1)
        inv.addWidget(self.steps_box)
        inv.addWidget(self.invert_button)
        self.invert_hint = hint()
        self.sliders = DirectionSliders(self.edits, self.doc.undo_stack)
        self.paste_button = QPushButton("Paste into photo")
        self.paste_button.setObjectName("primary")
        self.paste_button.setToolTip("Blend the edited face into the full-resolution photo (undoable)")
        self.edit_hint = hint()
        lay = QVBoxLayout(self)
        lay.addWidget(self.model_label)
        lay.addWidget(section("1 · Face"))
        lay.addLayout(row)
        lay.addWidget(self.face_hint)
        lay.addLayout(thumbs)
        lay.addWidget(section("2 · Invert"))
        lay.addLayout(inv)
        lay.addWidget(self.invert_hint)
        lay.addWidget(section("3 · Edit"))
        lay.addWidget(self.sliders, 1)
        lay.addWidget(self.paste_button)
        lay.addWidget(self.edit_hint)
        self.detect_button.clicked.connect(self.detect)
        self.points_button.toggled.connect(self._pick_toggled)
        self.invert_button.clicked.connect(self.invert)
        self.paste_button.clicked.connect(self.paste)

    # -------------------------------------------------------------------------- generator
    def set_generator(self, entry: ModelEntry | None, entries: list[ModelEntry]) -> None:
        """Load the chosen generator (and its direction library / encoder) on the device lane.

        Until it has loaded, the current generator, inversion and edits stay as they are; if it
        fails, they are kept and ``generator_failed(entry, message)`` is emitted."""
        self.catalog_entries = entries
        if entry is None:
            self.generator, self.info, self.loaded, self.inverted = None, None, False, False
            self.scheduler.reset()
            self.model_label.setText("Choose a generator in the Models panel to edit portraits.")
            self._update_state()
            return
        lib = directions_for(entries, entry)
        encoders = [e.path for e in entries if e.kind == "encoder"]
        device = self.device()  # the session keeps it for every job on this generator
        previous = self.model_label.text()
        self.model_label.setText(f"Loading {entry.name}…")

        def loaded(info: GeneratorInfo) -> None:
            self.generator, self.info, self.loaded = entry, info, True
            self.inverted, self.reconstruction, self.edited, self.latent = False, None, None, None
            self.scheduler.reset()
            self.sliders.set_directions(list(info.directions), list(info.groups))
            self.model_label.setText(
                f"Generator <b>{entry.name}</b>: {info.resolution} px, {info.num_ws}×{info.w_dim} W+; "
                f"{len(info.directions)} directions from {info.source}" + ("; encoder found" if info.encoder else ""))
            if info.encoder and self._pending is None:  # a project's own method choice wins
                self.method_box.setCurrentIndex(self.method_box.findData("progressive"))
            for t in (self.recon_thumb, self.edit_thumb):
                t.set_image(None)
            if self._pending is not None and self._pending.latent.fingerprint == info.fingerprint:
                self._restore_latent()
            elif self.aligned is not None or self.picked:
                self._realign()
            self._update_state()
            self.generator_loaded.emit(entry)

        def failed(exc: BaseException | None) -> None:  # None: the load was cancelled
            self.model_label.setText(previous if self.loaded else f"Cannot use {entry.name}.")
            self._update_state()
            self.generator_failed.emit(entry, "" if exc is None else str(exc))

        paths = self.weight_paths()
        self.lane.submit(Job(lambda task: self.session.load_generator(entry.path, device, lib.path if lib else None,
                                                                      encoders, task),
                             key="portrait-load", label=f"Loading {entry.name}", grad=True,
                             on_result=loaded, on_error=failed, on_cancelled=lambda: failed(None)))  # fmt: skip
        self.detector_ok, self.detector_reason = detector_available(paths)
        self._update_state()

    # ------------------------------------------------------------------------------- faces
    def _photo_changed(self) -> None:
        self.faces, self.picked, self.inverted, self.edited = [], [], False, None
        self.aligned = self.reconstruction = self.latent = self._pending = None
        self.face_box.clear()
        self.scheduler.reset()
        self.edits.set_names(list(self.edits.values))  # new photo: sliders back to 0 (undo history was cleared)
        for t, caption in ((self.target_thumb, "Aligned"), (self.recon_thumb, "Reconstruction"), (self.edit_thumb, "Edited")):
            t.set_image(None, caption)
        self.invert_hint.setText("")
        self.view.set_overlay()
        self._update_state()

    def detect(self) -> None:
        """Find faces in the current photo (MTCNN), then align the largest."""
        photo, paths = self.doc.current, self.weight_paths()

        def found(faces: list[Face]) -> None:
            self.faces = faces
            self.face_box.blockSignals(True)
            self.face_box.clear()
            for i, f in enumerate(faces):
                x1, y1, x2, y2 = f.box
                self.face_box.addItem(f"Face {i + 1} ({x2 - x1:.0f}px, p={f.score:.2f})")
            self.face_box.blockSignals(False)
            if not faces:
                self.face_hint.setText("No face found. Place the 5 points by hand.")
                self.view.set_overlay()
            else:
                self._face_chosen(0)
            self._update_state()

        self.lane.submit(Job(lambda task: self.session.detect(photo, paths), key="portrait-detect", label="Detecting faces",
                             on_result=found, on_error=lambda e: self.error.emit("Face detection", str(e))))

    def _face_chosen(self, index: int) -> None:
        if not 0 <= index < len(self.faces):
            return
        self.picked = [tuple(float(v) for v in p) for p in self.faces[index].landmarks]
        self._show_overlay(index)
        self._realign()

    def _show_overlay(self, index: int | None = None) -> None:
        boxes = [f.box for f in self.faces]
        if index is not None and boxes:
            boxes = [boxes[index]] + [b for i, b in enumerate(boxes) if i != index]
        self.view.set_overlay(boxes, [(x, y, SHORT_NAMES[i]) for i, (x, y) in enumerate(self.picked)])

    def _pick_toggled(self, on: bool) -> None:
        self.view.set_pick_mode(on)
        if on:
            self.picked = []
            self.faces = []
            self.face_box.clear()
            self._show_overlay()
            self._ask_point(0)

    def _point(self, x: float, y: float) -> None:
        if not self.points_button.isChecked():
            return
        self.picked.append((x, y))
        self._show_overlay()
        n = len(self.picked)
        if n < 5:
            self._ask_point(n)
            return
        self.points_button.setChecked(False)
        self.message.emit("5 points placed: aligning")
        self._realign()

    def _ask_point(self, n: int) -> None:
        text = f"Click the {LANDMARK_NAMES[n]} on the photo ({n + 1} of 5)."
        self.face_hint.setText(text)
        self.message.emit(text)

    def _realign(self) -> None:
        if not self.loaded or len(self.picked) < 4 or self.doc.current is None:
            self._update_state()
            return
        photo, pts = self.doc.current, np.array(self.picked, float)

        def aligned(face: AlignedFace) -> None:
            self.aligned, self.reconstruction, self.latent = face, None, None
            self.inverted, self.edited = False, None
            self.target_thumb.set_image(face.image)
            self.recon_thumb.set_image(None)
            self.edit_thumb.set_image(None)
            self.face_hint.setText(" ".join(face.notes) or "Face aligned. Next: invert it.")
            self._update_state()

        self.lane.submit(Job(lambda task: self.session.align(photo, pts), key="portrait-align", label="Aligning face",
                             on_result=aligned, on_error=lambda e: self.error.emit("Alignment", str(e))))

    # --------------------------------------------------------------------------- inversion
    def invert(self) -> None:
        """Invert the aligned face with the chosen method; stage previews arrive as it runs."""
        if self.aligned is None:
            return
        method, steps = self.method_box.currentData(), self.steps_box.value()
        target, paths = self.aligned.image, self.weight_paths()
        self.inverted = False
        self._update_state()

        def preview(p: InversionPreview) -> None:
            self.recon_thumb.set_image(p.image, f"{p.stage} {p.step}/{p.steps}")
            self.invert_hint.setText(f"Inverting: {METHOD_LABELS.get(p.stage, p.stage)}, step {p.step} of "
                                     f"{p.steps} ({p.progress * 100:.0f} % overall). Cancel keeps the best.")

        def done(r: InversionSummary) -> None:
            self.inverted, self.reconstruction, self.latent = True, r.image, r.latent
            self.recon_thumb.set_image(r.image, "Reconstruction")
            stages = ", ".join(f"{s.method} {s.psnr:.1f} dB" for s in r.stages)
            note = " (cancelled: best so far)" if r.cancelled else ""
            self.invert_hint.setText(f"PSNR {stages}; {r.stages[-1].seconds:.1f} s; loss {r.loss}{note}")
            self._request_preview()
            self._update_state()
            self.inverted_changed.emit()

        self.invert_hint.setText("Inverting…")
        self.lane.submit(Job(lambda task: self.session.invert(target, method, steps, steps, task, paths),
                             key="portrait-invert",
                             label=f"Inverting ({method})", grad=True, on_preview=preview, on_result=done,
                             on_error=lambda e: (self.error.emit("Inversion", str(e)), self._update_state()),
                             on_cancelled=self._update_state))  # fmt: skip

    # ----------------------------------------------------------------------------- editing
    def _request_preview(self) -> None:
        if self.inverted:
            self.scheduler.request(dict(self.edits.values))

    def _frame(self, image: np.ndarray, stamp: int) -> None:
        self.edited = image
        active = self.edits.active()
        self.edit_thumb.set_image(image, "Edited: " + (", ".join(f"{pretty_name(k)} {v:+.1f}" for k, v in list(active.items())[:2])
                                                       if active else "no change"))  # fmt: skip
        self._update_state()

    def paste(self) -> None:
        """Blend the edited face into the photo as one undoable step."""
        if self.edited is None or self.doc.current is None:
            return
        photo, edited, alpha = self.doc.current, self.edited, self.doc.current_alpha
        aligned, recon = self.aligned, self.reconstruction
        op = {"op": "paste-back", "model_path": str(self.generator.path) if self.generator else "",
              "directions": dict(self.edits.active()), "landmarks": [list(p) for p in self.picked]}  # fmt: skip
        label = ", ".join(f"{pretty_name(k)} {v:+.1f}" for k, v in self.edits.active().items()) or "reconstruction"
        model, settings = op["model_path"], {"directions": [f"{k}={v:g}" for k, v in op["directions"].items()]}

        def work(task) -> tuple[np.ndarray, dict]:  # the model is hashed here, off the GUI thread
            return self.session.paste(photo, edited, aligned, recon), step_record(record("paste-back", model, settings))

        def done(r: tuple[np.ndarray, dict]) -> None:
            self.doc.apply_result(r[0], alpha, f"Paste face ({label})", {**op, "provenance": [r[1]]})
            self.view.set_overlay()

        self.lane.submit(Job(work, key="portrait-paste", label="Pasting the face back", on_result=done,
                             on_error=lambda e: self.error.emit("Paste-back", str(e))))  # fmt: skip

    # ------------------------------------------------------------------------------ project
    def project_state(self) -> PortraitState | None:
        """The portrait work to keep in a project file (None when there is none)."""
        if self.aligned is None and self.latent is None:
            return None
        g = self.generator
        gen = {"name": g.name if g else "", "path": str(g.path) if g else "",
               "fingerprint": self.info.fingerprint if self.info else ""}  # fmt: skip
        inv = {"method": self.method_box.currentData(), "steps": self.steps_box.value()}
        latent = self.latent if self.inverted else None
        return PortraitState(gen, self.aligned, dict(self.edits.active()), inv, latent)

    def restore(self, state: PortraitState) -> str:
        """Bring back saved portrait work (after the photo was set); returns a problem to tell, or ''."""
        self.aligned = state.aligned
        if state.aligned is not None:
            self.picked = [tuple(float(v) for v in p) for p in state.aligned.landmarks]
            self.target_thumb.set_image(state.aligned.image, "Aligned")
            self._show_overlay()
        if state.inversion.get("method"):
            self.method_box.setCurrentIndex(max(0, self.method_box.findData(state.inversion["method"])))
            self.steps_box.setValue(int(state.inversion.get("steps", self.steps_box.value())))
        self._pending = state if state.latent is not None else None
        problem = ""
        if self._pending is not None and not (self.info and self.info.fingerprint == state.latent.fingerprint):
            name = state.generator.get("name") or state.generator.get("path", "?")
            wanted = next((e for e in self.catalog_entries if e.name == name or str(e.path) == state.generator.get("path")), None)
            if wanted is None:
                self._pending = None
                problem = f"the project's generator '{name}' is not in the model library: its inversion was not restored"
            else:
                self.wants_generator.emit(wanted)  # restored once it has loaded
        if self._pending is not None and self.info and self.info.fingerprint == state.latent.fingerprint:
            self._restore_latent()
        self._update_state()
        return problem

    def _restore_latent(self) -> None:
        state, self._pending = self._pending, None
        if state is None or state.latent is None:
            return
        latent, sliders = state.latent, state.sliders

        def done(recon: np.ndarray) -> None:
            self.inverted, self.reconstruction, self.latent = True, recon, latent
            self.recon_thumb.set_image(recon, "Reconstruction")
            self.edits.set_all(sliders)
            self.invert_hint.setText("Inversion restored from the project.")
            self._request_preview()
            self._update_state()

        self.lane.submit(Job(lambda task: self.session.restore_latent(latent), key="portrait-invert",
                             label="Restoring the inversion", on_result=done,
                             on_error=lambda e: self.error.emit("Project", f"the inversion was not restored: {e}")))  # fmt: skip

    # ------------------------------------------------------------------------------- state
    def _update_state(self) -> None:
        has_photo = self.doc.is_open
        aligned = self.aligned is not None
        if not has_photo:
            why = "Open a photo first (File ▸ Open…)."
        elif self.generator is None:
            why = "Choose a generator in the Models panel."
        elif not self.loaded:
            why = "Loading the generator…"
        elif not self.detector_ok:
            why = "Automatic detection is off (MTCNN weights not found): use Place 5 points."
        else:
            why = ""
        ready = has_photo and self.loaded
        self.detect_button.setEnabled(ready and self.detector_ok)
        self.detect_button.setToolTip(self.detector_reason or "Find faces with MTCNN and align the largest")
        self.points_button.setEnabled(ready)
        self.face_box.setVisible(len(self.faces) > 1)
        if why or not aligned:
            self.face_hint.setText(why or "Detect the face, or place its 5 points by hand.")
        inverting = self.lane.busy("portrait-invert")
        self.invert_button.setEnabled(ready and aligned and not inverting)
        self.invert_button.setToolTip("Running: cancel it in the status bar" if inverting else "")
        if not aligned:
            self.invert_hint.setText("Align a face first." if ready else "")
        elif not self.inverted and not inverting:
            self.invert_hint.setText("Ready. W+ fits closer than W; PTI also tunes the generator (slowest, best).")
        self.sliders.setEnabled(self.inverted)
        self.paste_button.setEnabled(self.inverted and self.edited is not None)
        self.edit_hint.setText("" if self.inverted else "Sliders unlock once the face is inverted.")
