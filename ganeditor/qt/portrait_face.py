"""The portrait panel's first step: find the face and align it.

Detect (MTCNN) or place the five points by hand; with several faces, a click on a face box on the
photo (or the list) picks one; the landmarks stay on the photo and can be dragged — dropping one
re-aligns.  Dragging a point never pans the image.  Emits ``aligned(face, photo)`` with the photo
the face was aligned from (the paste-back target) and ``cleared()`` when there is no face any more.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from ganeditor.pipelines.align import AlignedFace
from ganeditor.pipelines.face_detect import Face
from ganeditor.pipelines.portrait import LANDMARK_NAMES, PortraitSession, WeightPaths
from ganeditor.qt.document import Document
from ganeditor.qt.image_view import ImageView
from ganeditor.qt.jobs import Job, Lane
from ganeditor.qt.widgets import Thumb, hint

SHORT_NAMES = ("L eye", "R eye", "nose", "L mouth", "R mouth")
SMALL_FACE = 48  # px: faces smaller than this across give a soft edit (said so)


class FaceStep(QObject):
    """Widgets and state of the face step (see the module docstring); ``widget`` goes in the panel."""

    aligned = Signal(object, object)  # AlignedFace, the photo it came from (numpy)
    cleared = Signal()
    message = Signal(str)
    error = Signal(str, str)

    def __init__(self, lane: Lane, doc: Document, view: ImageView, session: PortraitSession,
                 weight_paths: Callable[[], WeightPaths], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.lane, self.doc, self.view, self.session, self.weight_paths = lane, doc, view, session, weight_paths
        self.faces: list[Face] = []
        self.selected = 0
        self.picked: list[tuple[float, float]] = []
        self.face: AlignedFace | None = None
        self.ready = False  # a generator is loaded and a photo open
        self.show_points = True  # landmarks on the photo (hidden while the edit is previewed)
        self._why_shown = False  # the hint says what is missing (no photo, no generator...)
        self._build()
        view.point_picked.connect(self._point)
        view.point_dropped.connect(self._point_moved)
        view.box_clicked.connect(self.choose)

    def _build(self) -> None:
        self.widget = QWidget()
        self.detect_button = QPushButton("Detect face", toolTip="Find the faces with MTCNN and align the largest")
        self.points_button = QPushButton("Place 5 points…", checkable=True)
        self.points_button.setToolTip("Click the " + ", ".join(LANDMARK_NAMES) + " on the photo, in this order")
        self.face_box = QComboBox(toolTip="Which face to edit (or click its box on the photo)")
        self.face_box.currentIndexChanged.connect(self.choose)
        row = QHBoxLayout()
        for w in (self.detect_button, self.points_button, self.face_box):
            row.addWidget(w)
        self.hint = hint()
        self.thumb = Thumb("Aligned face", size=88, empty="no face yet")
        lay = QVBoxLayout(self.widget)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.hint)
        lay.addWidget(self.thumb)
        self.detect_button.clicked.connect(self.detect)
        self.points_button.toggled.connect(self._pick_toggled)

    # --------------------------------------------------------------------------------- state
    def reset(self) -> None:
        """A new photo (or generator): forget the faces."""
        self.faces, self.picked, self.face, self.selected = [], [], None, 0
        self.face_box.blockSignals(True)
        self.face_box.clear()
        self.face_box.blockSignals(False)
        self.thumb.set_image(None)
        self.show_overlay()
        self.cleared.emit()

    def restore(self, face: AlignedFace, photo: np.ndarray | None) -> None:
        """A face saved in a project: shown with its landmarks, no detection or alignment run."""
        self.faces, self.selected = [], 0
        self.picked = [tuple(float(v) for v in p) for p in face.landmarks]
        self.face, self.show_points = face, True
        self.thumb.set_image(face.image)
        self.hint.setText(self._face_hint(face))
        self.show_overlay()
        self.aligned.emit(face, photo)

    def update_state(self, ready: bool, detector_ok: bool, detector_reason: str, why: str) -> None:
        """Enable the controls; ``why`` explains what is missing first."""
        self.ready = ready
        self.detect_button.setEnabled(ready and detector_ok)
        self.detect_button.setToolTip(detector_reason or "Find the faces with MTCNN and align the largest")
        self.points_button.setEnabled(ready)
        self.face_box.setVisible(len(self.faces) > 1)
        if why:
            self.hint.setText(why)
        elif self._why_shown or not self.hint.text():  # what was missing is there now: say what to do
            self.hint.setText(self._face_hint(self.face) if self.face is not None else
                              "Detect the face, or place its 5 points by hand.")  # fmt: skip
        self._why_shown = bool(why)

    def show_overlay(self) -> None:
        """Face boxes and (draggable) landmarks on the photo."""
        placing = self.points_button.isChecked()  # while placing by hand the points are named; then unlabelled
        points = [(x, y, SHORT_NAMES[i] if placing else "") for i, (x, y) in enumerate(self.picked)] if self.show_points else []
        boxes = [f.box for f in self.faces] if self.show_points or len(self.faces) > 1 else []
        editable = self.face is not None and not self.points_button.isChecked() and self.show_points
        self.view.set_overlay(boxes, points, self.selected, editable)

    # ------------------------------------------------------------------------------ detection
    def detect(self) -> None:
        """Find faces in the current photo, then align the largest."""
        photo, paths = self.doc.current, self.weight_paths()
        if photo is None:
            return
        self.hint.setText("Looking for faces…")
        self.lane.submit(Job(lambda task: self.session.detect(photo, paths), key="portrait-detect",
                             label="Detecting faces", on_result=self._found,
                             on_error=lambda e: self.error.emit("Face detection", str(e))))  # fmt: skip

    def _found(self, faces: list[Face]) -> None:
        self.faces = faces
        self.face_box.blockSignals(True)
        self.face_box.clear()
        for i, f in enumerate(faces):
            self.face_box.addItem(f"Face {i + 1} ({f.size:.0f} px, p={f.score:.2f})")
        self.face_box.blockSignals(False)
        if not faces:
            self.picked = []
            self.show_overlay()
            self.hint.setText("No face found (too small, turned away or covered?). Place the 5 points by hand: "
                              "Place 5 points…, then click the eyes, nose and mouth corners.")  # fmt: skip
            return
        self.choose(0)

    def choose(self, index: int) -> None:
        """Edit face ``index`` (0 = largest)."""
        if not 0 <= index < len(self.faces):
            return
        self.selected = index
        self.face_box.blockSignals(True)
        self.face_box.setCurrentIndex(index)
        self.face_box.blockSignals(False)
        self.picked = [tuple(float(v) for v in p) for p in self.faces[index].landmarks]
        self.realign()

    # ------------------------------------------------------------------------------- points
    def _pick_toggled(self, on: bool) -> None:
        self.view.set_pick_mode(on)
        if on:
            self.picked, self.faces = [], []
            self.face_box.clear()
            self.show_overlay()
            self._ask_point(0)

    def _point(self, x: float, y: float) -> None:
        if not self.points_button.isChecked():
            return
        self.picked.append((x, y))
        self.show_overlay()
        if len(self.picked) < 5:
            self._ask_point(len(self.picked))
            return
        self.points_button.setChecked(False)
        self.message.emit("5 points placed: aligning")
        self.realign()

    def _point_moved(self, i: int, x: float, y: float) -> None:
        if 0 <= i < len(self.picked):
            self.picked[i] = (x, y)
            self.message.emit(f"{LANDMARK_NAMES[i]} moved: re-aligning")
            self.realign()

    def _ask_point(self, n: int) -> None:
        text = f"Click the {LANDMARK_NAMES[n]} on the photo ({n + 1} of 5)."
        self.hint.setText(text)
        self.message.emit(text)

    # ------------------------------------------------------------------------------ alignment
    def realign(self) -> None:
        """Align the face the points give (on the device lane)."""
        if not self.ready or len(self.picked) < 4 or self.doc.current is None:
            self.show_overlay()
            return
        photo, pts = self.doc.current, np.array(self.picked, float)

        def done(face: AlignedFace) -> None:
            self.face, self.show_points = face, True
            self.thumb.set_image(face.image)
            self.hint.setText(self._face_hint(face))
            self.show_overlay()
            self.aligned.emit(face, photo)

        self.lane.submit(Job(lambda task: self.session.align(photo, pts), key="portrait-align", label="Aligning face",
                             on_result=done, on_error=lambda e: self.error.emit("Alignment", str(e))))

    def _face_hint(self, face: AlignedFace) -> str:
        return self._notes(face) + "Drag a point on the photo to adjust it."

    def _notes(self, face: AlignedFace) -> str:
        notes = list(face.notes)
        if len(self.faces) > 1:
            notes = [n for n in notes if "faces found" not in n]
            notes.append(f"{len(self.faces)} faces: click a box on the photo to edit another (blue = this one).")
        size = np.hypot(*(face.landmarks[1] - face.landmarks[0])) * 2.2  # eye distance -> face width
        if size < SMALL_FACE:
            notes.append(f"This face is only about {size:.0f} px across: the edit will look soft.")
        return " ".join(n[:1].upper() + n[1:] + ("" if n.endswith(".") else ".") for n in notes) + (" " if notes else "")
