"""Portrait panel: find and align the face, fit it, then edit it with sliders — the edit shows on the
photo itself while a slider moves (a reduced paste-back, latest frame wins; the full-resolution one
when the slider is released), and Apply, in a bar that is always visible, puts it in the document as
one undo step.  Before/after (the toolbar's compare) shows the original photo.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSlider,
                               QSpinBox, QVBoxLayout, QWidget)
from shiboken6 import isValid

from ganeditor.core.device import pick_device
from ganeditor.core.provenance import record, step_record
from ganeditor.pipelines.align import AlignedFace
from ganeditor.pipelines.catalog import ModelEntry, directions_for
from ganeditor.pipelines.invert import METHOD_LABELS, METHOD_TIPS
from ganeditor.pipelines.paste_back import FEATHER, PasteTarget, paste_target
from ganeditor.pipelines.portrait import (PASTE_BACK_OP, EditFrame, GeneratorInfo, InversionPreview, InversionSummary,
                                          LatentState, PortraitSession, WeightPaths, detector_available)
from ganeditor.pipelines.project import PortraitState
from ganeditor.qt.document import Document, EditState
from ganeditor.qt.image_view import ImageView
from ganeditor.qt.jobs import Job, Lane
from ganeditor.qt.portrait_apply import AppliedResults, ApplyBar, PendingEdit
from ganeditor.qt.portrait_face import FaceStep
from ganeditor.qt.portrait_project import PortraitProject
from ganeditor.qt.preview import PreviewScheduler
from ganeditor.qt.sliders import DirectionSliders
from ganeditor.qt.widgets import Thumb, hint, section

METHOD_ORDER = ("encoder", "wplus", "progressive", "w", "pti")  # the three named for people first
FULL_RENDER_AFTER_MS = 300  # a pause this long (or a released slider) renders the full-resolution paste


class PortraitPanel(PortraitProject, PendingEdit, QWidget):
    """The portrait workflow over a ``PortraitSession`` run on the device lane.

    The panel owns the GUI-side state (the aligned face, the photo it came from, the paste target,
    the frames) and hands it to the session's methods as arguments; the session is only touched by jobs.
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
        self.base: np.ndarray | None = None  # the photo the face was aligned from: edits are pasted into it
        self.target: PasteTarget | None = None
        self.reconstruction: np.ndarray | None = None
        self.frame: EditFrame | None = None  # the newest rendered edit
        self.latent: LatentState | None = None  # the current fit, as numpy (for project files)
        self._pending: PortraitState | None = None  # project work waiting for its generator to load
        self._applied = AppliedResults()
        self.inverted = False
        self.detector_ok, self.detector_reason = True, ""
        self.face = FaceStep(lane, doc, view, self.session, weight_paths, self)
        self.scheduler = PreviewScheduler(lane, lambda p, task: self.session.edit_frame(*p), parent=self)
        self.scheduler.frame.connect(self._frame)
        self.scheduler.failed.connect(lambda e: self.error.emit("Preview failed", str(e)))
        self.full_timer = QTimer(self, singleShot=True, interval=FULL_RENDER_AFTER_MS)
        self.full_timer.timeout.connect(lambda: self._request(full=True))
        self._build()
        self.face.aligned.connect(self._aligned)
        self.face.cleared.connect(lambda: self._aligned(None, None))
        self.face.message.connect(self.message)
        self.face.error.connect(self.error)
        self.edits.changed.connect(lambda *_: self._edits_changed())
        self.sliders.released.connect(lambda _n: self._request(full=True))
        doc.opened.connect(lambda _p: self._photo_changed())
        doc.image_changed.connect(self._document_changed)
        # Apply, undo, redo: the bar follows (not while the window is destroyed: the stack empties itself then)
        doc.undo_stack.indexChanged.connect(lambda _i: self._update_state() if isValid(doc.undo_stack) else None)
        lane.job_started.connect(lambda job: self._update_state() if job.key.startswith("portrait") else None)
        self._update_state()

    # ------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.model_label = hint()
        self.method_box = QComboBox(toolTip="How closely to fit the generator to the face")
        for m in METHOD_ORDER:
            self.method_box.addItem(METHOD_LABELS[m], m)
            self.method_box.setItemData(self.method_box.count() - 1, METHOD_TIPS[m], Qt.ItemDataRole.ToolTipRole)
        self.method_box.setCurrentIndex(self.method_box.findData("wplus"))
        self.method_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.method_box.setMinimumContentsLength(12)
        self.method_box.currentIndexChanged.connect(lambda _i: self.method_box.setToolTip(METHOD_TIPS[self.method_box.currentData()]))
        self.steps_box = QSpinBox(minimum=10, maximum=5000, value=200, singleStep=50, suffix=" steps")
        self.steps_box.setToolTip("Optimisation steps (tuning the generator adds as many)")
        self.invert_button = QPushButton("Fit face", toolTip="Find this face in the generator (GAN inversion)")
        self.invert_button.setObjectName("primary")
        inv = QHBoxLayout()
        inv.addWidget(self.method_box, 1)
        inv.addWidget(self.steps_box)
        inv.addWidget(self.invert_button)
        self.invert_hint = hint()
        self.recon_thumb = Thumb("Fitted face", size=88, empty="not fitted")
        self.sliders = DirectionSliders(self.edits, self.doc.undo_stack)
        self.teach_button = QPushButton("Teach a slider…", toolTip="Name a new attribute and mark faces that show "
                                        "more or less of it: a new slider is made from your marks")  # fmt: skip
        self.feather = QSlider(Qt.Orientation.Horizontal, minimum=3, maximum=20, value=round(FEATHER * 100))
        self.feather.setToolTip("How softly the edited face blends into the photo (width of the blend edge)")
        frow = QHBoxLayout()
        frow.addWidget(QLabel("Blend edge"))
        frow.addWidget(self.feather, 1)
        self.edit_hint = hint()
        content = QWidget()
        lay = QVBoxLayout(content)
        for w in (self.model_label, section("1 · Face"), self.face.widget, section("2 · Fit the face")):
            lay.addWidget(w)
        lay.addLayout(inv)
        lay.addWidget(self.invert_hint)
        lay.addWidget(self.recon_thumb)
        lay.addWidget(section("3 · Edit"))
        lay.addWidget(self.edit_hint)
        lay.addWidget(self.sliders)
        lay.addWidget(self.teach_button)
        lay.addLayout(frow)
        lay.addStretch(1)
        self.scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.scroll, 1)
        self.bar = ApplyBar()
        outer.addWidget(self.bar)
        self.bar.reset_button.clicked.connect(self.sliders.reset_all.click)
        self.bar.apply_button.clicked.connect(self.apply)
        self.invert_button.clicked.connect(self.invert)
        self.teach_button.clicked.connect(self.teach)
        self.feather.valueChanged.connect(lambda _v: self._retarget())

    # -------------------------------------------------------------------------- generator
    def set_generator(self, entry: ModelEntry | None, entries: list[ModelEntry]) -> None:
        """Load the chosen generator (and its direction libraries / encoder) on the device lane.

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
            self._clear_fit()
            self.sliders.set_specs(list(info.sliders))
            named = sum(s.verified for s in info.sliders)
            what = (f"{named} named sliders (each checked to do what its name says) and {len(info.sliders) - named} more"
                    if named else f"{len(info.sliders)} sliders")  # fmt: skip
            self.model_label.setText(f"Generator <b>{entry.name}</b>: {info.resolution} px; {what} from {info.source}"
                                     + ("; encoder found" if info.encoder else ""))  # fmt: skip
            if info.encoder and self._pending is None:  # a project's own method choice wins
                self.method_box.setCurrentIndex(self.method_box.findData("progressive"))
            if self._pending is not None and self._pending.latent.fingerprint == info.fingerprint:
                self._restore_latent()
            elif self.face.picked:
                self.face.realign()
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
        self._pending = None
        self.face.reset()
        self.edits.set_names(list(self.edits.values))  # new photo: sliders back to 0 (undo history was cleared)
        self._update_state()

    def _aligned(self, face: AlignedFace | None, photo: np.ndarray | None) -> None:
        self.base = photo
        self._clear_fit()
        self._update_state()

    def _document_changed(self) -> None:
        """Apply (and its undo/redo) keeps the fit; any other change of the photo (translate, restore, an
        undo past the fit) leaves a fit of a face that is not the photo's any more: the face is aligned
        again from the new photo (found again if the photo changed size) and waits for a new fit."""
        cur, base = self.doc.current, self.base
        if cur is None or base is None or self._applied.made_from(cur, base):
            return
        if cur.shape[:2] != base.shape[:2] or self.face.face is None:
            self.face.reset()
            self.message.emit("The photo changed: find the face again to edit it.")
        else:
            self.face.realign()
            self.message.emit("The photo changed: the face was aligned again; fit it to edit it.")

    def _clear_fit(self) -> None:
        self.inverted, self.reconstruction, self.target, self.frame, self.latent = False, None, None, None, None
        self.scheduler.reset()
        self.recon_thumb.set_image(None)
        self.invert_hint.setText("")
        self.view.set_preview(None)

    # --------------------------------------------------------------------------- inversion
    def invert(self) -> None:
        """Fit the aligned face with the chosen method; stage previews arrive as it runs."""
        face = self.face.face
        if face is None:
            return
        method, steps = self.method_box.currentData(), self.steps_box.value()
        target, paths = face.image, self.weight_paths()
        self._clear_fit()

        def preview(p: InversionPreview) -> None:
            self.recon_thumb.set_image(p.image, f"{METHOD_LABELS.get(p.stage, p.stage)} {p.step}/{p.steps}")
            self.invert_hint.setText(f"Fitting: step {p.step} of {p.steps} of this stage ({p.progress * 100:.0f} % "
                                     "overall). Cancel in the status bar keeps the best so far.")  # fmt: skip

        def done(r: InversionSummary) -> None:
            self.reconstruction, self.latent = r.image, r.latent
            self.recon_thumb.set_image(r.image, "Fitted face")
            note = " (cancelled: best so far)" if r.cancelled else ""
            self.invert_hint.setText(f"Fitted in {r.seconds:.1f} s: {r.stages[-1].psnr:.1f} dB{note}. "
                                     f"Stages: " + ", ".join(f"{s.method} {s.psnr:.1f} dB" for s in r.stages))
            self._fitted(face)
            self.inverted_changed.emit()

        self.invert_hint.setText("Fitting…")
        self.lane.submit(Job(lambda task: self.session.invert(target, method, steps, steps, task, paths),
                             key="portrait-invert", label=f"Fitting the face ({METHOD_LABELS[method]})", grad=True,
                             on_preview=preview, on_result=done,
                             on_error=lambda e: (self.error.emit("Fitting the face", str(e)), self._update_state()),
                             on_cancelled=self._update_state))  # fmt: skip

    def _fitted(self, face: AlignedFace | None) -> None:
        """The latent is ready: make the paste target, then show the current sliders' edit."""
        photo, recon, feather = self.base, self.reconstruction, self.feather.value() / 100

        def ready(target: PasteTarget) -> None:
            self.target, self.inverted = target, True
            self.face.show_points = False  # the edit shows on the photo now, unobstructed
            self.face.show_overlay()
            self._update_state()
            self._edits_changed()

        self.lane.submit(Job(lambda task: paste_target(photo, face, recon, feather), key="portrait-target",
                             label="Preparing the preview", on_result=ready,
                             on_error=lambda e: self.error.emit("Preview", str(e))))  # fmt: skip

    def _retarget(self) -> None:
        if self.inverted and self.base is not None:
            self._fitted(self.target.aligned if self.target else self.face.face)

    def edit_latent(self, ws: np.ndarray, image: np.ndarray) -> None:
        """Edit a generated face directly (no inversion): ``image`` is already the open document."""
        self.face.reset()
        self.base = image

        def done(r: tuple[np.ndarray, LatentState]) -> None:
            self.reconstruction, self.latent = r
            self.recon_thumb.set_image(self.reconstruction, "Generated face")
            self.invert_hint.setText("A generated face: the sliders edit its latent directly.")
            self._fitted(None)

        self.lane.submit(Job(lambda task: (self.session.use_latent(ws), self.session.latent_state()),
                             key="portrait-invert", label="Using the face",
                             on_result=done, on_error=lambda e: self.error.emit("Generated face", str(e))))

    # ----------------------------------------------------------------------------- editing
    def _edits_changed(self) -> None:
        self.frame = None if self.frame is None or self.frame.alphas != self.edits.active() else self.frame
        self._request(full=False)
        self.full_timer.start()
        self._update_state()

    def _request(self, full: bool) -> None:
        if not self.inverted or self.target is None:
            return
        active = self.edits.active()
        if not active:
            self.scheduler.reset()
            self.frame = None
            self.view.set_preview(None)
            self._update_state()
            return
        self.scheduler.request((active, self.target, full))

    def _frame(self, frame: EditFrame, stamp: int) -> None:
        if frame.alphas != self.edits.active():  # the sliders moved on; a newer frame is coming
            return
        self.frame = frame
        self.view.set_preview(frame.photo, self.doc.original)
        self._update_state()

    def apply(self) -> Job | None:
        """Put the full-resolution edit into the document as one undoable step (with its provenance:
        the generator's name and SHA-256, worked out on the lane); returns the job (None: nothing to apply)."""
        if self.frame is None or not self.frame.full or self.doc.current is None or self.generator is None:
            return None
        frame, alpha, model = self.frame, self.doc.current_alpha, self.generator.path
        label = self.describe_edit(frame.alphas)
        settings = {"directions": [f"{k}={v:g}" for k, v in frame.alphas.items()]}
        face = self.target.aligned if self.target is not None else None
        op = {"op": PASTE_BACK_OP, "model_path": str(model), "directions": dict(frame.alphas),
              "landmarks": [] if face is None else [list(map(float, p)) for p in face.landmarks]}  # fmt: skip

        def done(step: dict) -> None:
            self._applied.remember(frame.photo, self.base)
            self.doc.apply_result(frame.photo, alpha, f"Portrait: {label}", {**op, "provenance": [step]})
            self.view.set_preview(None)
            self.message.emit(f"Applied: {label}")

        return self.lane.submit(Job(lambda task: step_record(record(PASTE_BACK_OP, model, settings)), key="portrait-apply",
                                    label="Applying the edit", on_result=done,
                                    on_error=lambda e: self.error.emit("Apply", str(e))))  # fmt: skip

    def teach(self) -> None:
        """Open the teach-a-slider dialog."""
        from ganeditor.qt.teach_dialog import TeachDialog  # deferred: only built when asked for

        TeachDialog(self.lane, self.session, self.face.face is not None and self.inverted, self._taught, self).open()

    def _taught(self, spec) -> None:
        self.sliders.add_spec(spec)
        self.message.emit(f"New slider '{spec.label}' is under My sliders (saved for this generator)")

    # ------------------------------------------------------------------------------- state
    def _update_state(self) -> None:
        has_photo = self.doc.is_open
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
        self.face.update_state(ready, self.detector_ok, self.detector_reason, why)
        aligned = self.face.face is not None or self.inverted
        inverting = self.lane.busy("portrait-invert")
        self.invert_button.setEnabled(ready and self.face.face is not None and not inverting)
        self.invert_button.setToolTip("Running: cancel it in the status bar" if inverting else
                                      "Find this face in the generator (GAN inversion)")  # fmt: skip
        if not aligned:
            self.invert_hint.setText("Find the face first." if ready else "")
        elif not self.inverted and not inverting and not self.invert_hint.text():
            self.invert_hint.setText("Quick takes a second; Best also tunes the generator to the face (slowest).")
        for w in (self.sliders, self.feather, self.teach_button):
            w.setEnabled(self.inverted)
        self.teach_button.setEnabled(self.loaded)
        self.edit_hint.setText("" if self.inverted else "The sliders unlock once the face is fitted.")
        active = self.edits.active()
        full = self.frame is not None and self.frame.full
        self.bar.show_state(self.inverted, bool(active), full, applied=bool(active) and not self.unapplied_edit())
