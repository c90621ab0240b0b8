"""Direction sliders bound two-way to an ``EditState`` through undo commands."""

from __future__ import annotations

import itertools
import time

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QToolButton,
                               QVBoxLayout, QWidget)

from ganeditor.pipelines.directions import pretty_name
from ganeditor.qt.commands import ResetSlidersCommand, SliderCommand
from ganeditor.qt.document import EditState

SCALE = 100  # slider ticks per unit of α
RANGE = 3.0  # α from -RANGE to +RANGE (σ units for most directions)
WHEEL_MERGE_S = 0.8  # wheel notches closer than this merge into one undo step
_drags = itertools.count(1)


class SliderRow(QWidget):
    """One direction: name, slider, value, reset; emits ``moved(name, value, drag_id)``."""

    moved = Signal(str, float, int)

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._drag = 0
        self.label = QLabel(pretty_name(name))
        self.label.setMinimumWidth(110)
        self.label.setToolTip(name)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(-RANGE * SCALE), int(RANGE * SCALE))
        self.slider.setPageStep(SCALE // 2)
        self.slider.setSingleStep(SCALE // 10)
        self.value_label = QLabel("0.00")
        self.value_label.setMinimumWidth(40)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.reset = QToolButton(text="↺", toolTip=f"Reset {pretty_name(name)} to 0", autoRaise=True)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.label, self.slider, self.value_label, self.reset):
            lay.addWidget(w)
        lay.setStretch(1, 1)
        self._wheel_until = 0.0  # wheel notches before this time (monotonic s) continue one undo step
        self._in_wheel = False
        self.slider.installEventFilter(self)
        self.slider.sliderPressed.connect(self._new_drag)
        self.slider.valueChanged.connect(self._changed)
        self.reset.clicked.connect(lambda: self.slider.setValue(0))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        """Wheel notches in quick succession (< WHEEL_MERGE_S apart) are one undo step, like a drag."""
        if obj is self.slider and event.type() == QEvent.Type.Wheel:
            now = time.monotonic()
            if now > self._wheel_until:
                self._new_drag()
            self._wheel_until = now + WHEEL_MERGE_S
            self._in_wheel = True
            try:
                self.slider.wheelEvent(event)  # handled here so the value change knows it came from the wheel
            finally:
                self._in_wheel = False
            return True
        return super().eventFilter(obj, event)

    def _new_drag(self) -> None:
        self._drag = next(_drags)

    def _changed(self, ticks: int) -> None:
        if not self.slider.isSliderDown() and not self._in_wheel:
            self._new_drag()  # keyboard, reset: one undo step each
        self.value_label.setText(f"{ticks / SCALE:+.2f}" if ticks else "0.00")
        self.moved.emit(self.name, ticks / SCALE, self._drag)

    def show_value(self, value: float) -> None:
        """Programmatic update (undo/redo): no feedback loop."""
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * SCALE))
        self.slider.blockSignals(False)
        self.value_label.setText(f"{value:+.2f}" if value else "0.00")


class DirectionSliders(QWidget):
    """A group filter plus one SliderRow per direction of the chosen group, and Reset all."""

    def __init__(self, edits: EditState, undo: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edits, self.undo = edits, undo
        self.rows: dict[str, SliderRow] = {}
        self.groups: dict[str, list[str]] = {}
        self._pending: list[str] = []  # rows of the shown group still to build
        self.group_box = QComboBox(toolTip="Which family of directions to show")
        self.group_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.group_box.setMinimumContentsLength(12)
        self.reset_all = QPushButton("Reset all")
        top = QHBoxLayout()
        top.addWidget(QLabel("Directions:"))
        top.addWidget(self.group_box, 1)
        top.addWidget(self.reset_all)
        self.rows_widget = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_widget)
        self.rows_layout.setContentsMargins(0, 0, 4, 0)
        self.rows_layout.setSpacing(2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.rows_widget, 1)
        self.group_box.currentTextChanged.connect(self._show_group)
        self.reset_all.clicked.connect(self._reset)
        edits.changed.connect(self._sync)

    def set_directions(self, names: list[str], groups: list[str]) -> None:
        """Rebuild the rows (all at 0).  Rows are built when their group is first shown, so a library
        of a hundred directions does not stall the GUI thread."""
        for row in self.rows.values():
            row.deleteLater()
        self.rows.clear()
        self.groups = {}
        for n, g in zip(names, groups):
            self.groups.setdefault(_group_label(g), []).append(n)
        self.edits.set_names(names)
        self.group_box.blockSignals(True)
        self.group_box.clear()
        self.group_box.addItems(list(self.groups))
        self.group_box.blockSignals(False)
        self._show_group(self.group_box.currentText())

    def _show_group(self, group: str) -> None:
        members = self.groups.get(group, [])
        for n, row in self.rows.items():
            row.setVisible(n in members)
        self._pending = [n for n in members if n not in self.rows]
        self._build_some()

    def _build_some(self) -> None:
        """Build pending rows for at most ~30 ms, then let the event loop run and continue (styled
        widgets cost milliseconds each; a hundred of them at once would freeze the window)."""
        t0 = time.monotonic()
        while self._pending and time.monotonic() - t0 < 0.03:
            n = self._pending.pop(0)
            if n in self.rows:
                continue
            row = SliderRow(n, self.rows_widget)
            row.moved.connect(self._moved)
            row.show_value(self.edits.value(n))
            self.rows_layout.addWidget(row)
            self.rows[n] = row
        if self._pending:
            QTimer.singleShot(0, self._build_some)

    def _moved(self, name: str, value: float, drag_id: int) -> None:
        self.undo.push(SliderCommand(self.edits, name, value, drag_id))

    def _reset(self) -> None:
        if self.edits.active():
            self.undo.push(ResetSlidersCommand(self.edits))

    def _sync(self, name: str, value: float) -> None:
        items = self.edits.values.items() if not name else [(name, value)]
        for n, v in items:
            if n in self.rows:
                self.rows[n].show_value(v)


def _group_label(source: str) -> str:
    return {"interfacegan": "Attributes (InterFaceGAN)", "sefa": "SeFa (unsupervised)",
            "ganspace": "GANSpace (PCA)", "user": "User"}.get(source, source or "Directions")  # fmt: skip
