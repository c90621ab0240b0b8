"""Direction sliders bound two-way to an ``EditState`` through undo commands, grouped by what they do
("Expression", "Age", "Hair", ..., "Discovered"), with a filter box and layer ranges on request.

Sliders react to the mouse wheel only once focused (clicked or tabbed to): scrolling the panel over
them scrolls the panel and never changes a value; focused wheel notches in quick succession are one
undo step, like a drag.  Rows are built when their group is first shown, a few at a time, so a
library of a hundred directions never stalls the window.
"""

from __future__ import annotations

import itertools
import time

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSlider, QToolButton,
                               QVBoxLayout, QWidget)

from ganeditor.pipelines.sliders import GROUPS, SLIDER_RANGE, SliderSpec
from ganeditor.qt.commands import ResetSlidersCommand, SliderCommand
from ganeditor.qt.document import EditState

SCALE = 100  # slider ticks per unit of α
COLLAPSED = ("Discovered",)  # groups shown folded until opened
WHEEL_MERGE_S = 0.8  # focused wheel notches closer than this merge into one undo step
BUILD_SLICE_S = 0.01  # rows are built for at most this long before the event loop runs again (a 30 ms slice
# left the layout pass of its rows on top: start-up stalled 103-120 ms; with 10 ms, 69-70 ms)
_drags = itertools.count(1)


class FocusWheelSlider(QSlider):
    """A QSlider that takes wheel steps only while it has keyboard focus; otherwise the wheel goes to
    the scroll area around it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # click or Tab, not the wheel, gives focus

    def wheelEvent(self, event) -> None:  # noqa: N802
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class SliderRow(QWidget):
    """One direction: name, slider, value, reset, layer range; emits ``moved(name, value, drag_id)``
    and ``released(name)`` when a drag ends."""

    moved = Signal(str, float, int)
    released = Signal(str)

    def __init__(self, spec: SliderSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec, self.name = spec, spec.name
        self._drag = 0
        self.setToolTip(spec.tooltip)
        self.label = QLabel(spec.label)
        self.label.setMinimumWidth(150)  # the longest names ("Background brightness") keep the sliders aligned
        self.slider = FocusWheelSlider()
        self.slider.setRange(int(-SLIDER_RANGE * SCALE), int(SLIDER_RANGE * SCALE))
        self.slider.setPageStep(SCALE // 2)
        self.slider.setSingleStep(SCALE // 10)
        self.slider.setAccessibleName(spec.label)
        self.value_label = QLabel("0.0")
        self.value_label.setMinimumWidth(34)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.layers = QLabel(f"{spec.layers[0]}–{spec.layers[1]}")
        self.layers.setObjectName("caption")
        self.layers.setToolTip("Generator layers (ws rows) this slider moves: low = coarse shape, high = fine detail")
        self.layers.hide()
        self.reset = QToolButton(text="↺", toolTip=f"Reset {spec.label} to 0", autoRaise=True)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.label, self.slider, self.value_label, self.layers, self.reset):
            lay.addWidget(w)
        lay.setStretch(1, 1)
        self._wheel_until = 0.0  # focused wheel notches before this time (monotonic s) continue one undo step
        self._in_wheel = False
        self.slider.installEventFilter(self)
        self.slider.sliderPressed.connect(self._new_drag)
        self.slider.sliderReleased.connect(lambda: self.released.emit(self.name))
        self.slider.valueChanged.connect(self._changed)
        self.reset.clicked.connect(lambda: self.slider.setValue(0))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        """Focused wheel notches in quick succession (< WHEEL_MERGE_S apart) are one undo step; an
        unfocused slider lets the wheel through to the scroll area (FocusWheelSlider)."""
        if obj is self.slider and event.type() == QEvent.Type.Wheel and self.slider.hasFocus():
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
        self.value_label.setText(f"{ticks / SCALE:+.1f}" if ticks else "0.0")
        self.moved.emit(self.name, ticks / SCALE, self._drag)

    def show_value(self, value: float) -> None:
        """Programmatic update (undo/redo): no feedback loop."""
        self.slider.blockSignals(True)
        self.slider.setValue(round(value * SCALE))
        self.slider.blockSignals(False)
        self.value_label.setText(f"{value:+.1f}" if value else "0.0")


class GroupHeader(QToolButton):
    """A group's title; clicking folds or unfolds its rows."""

    def __init__(self, title: str, count: int, open_: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title, self.count = title, count
        self.setObjectName("group")
        self.setCheckable(True)
        self.setChecked(open_)
        self.setAutoRaise(True)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggled.connect(self._arrow)
        self._arrow(open_)

    def _arrow(self, on: bool) -> None:
        self.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.setText(f"{self.title.replace('&', '&&')}  ({self.count})")  # '&' would make a mnemonic


class DirectionSliders(QWidget):
    """Every direction as a SliderRow under its group's header, a filter box, Reset all and, in an
    advanced toggle, each slider's layer range."""

    released = Signal(str)  # a slider drag ended (the panel renders at full resolution then)

    def __init__(self, edits: EditState, undo: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edits, self.undo = edits, undo
        self.specs: dict[str, SliderSpec] = {}  # every direction offered, in display order
        self.rows: dict[str, SliderRow] = {}  # the rows built so far
        self.headers: dict[str, GroupHeader] = {}
        self._boxes: dict[str, QVBoxLayout] = {}  # group -> the layout its rows go into
        self._pending: list[str] = []  # rows not built yet, those on screen first
        self._shown: set[str] = set()  # rows the filter and folds show
        self.filter = QLineEdit(placeholderText="Filter sliders (e.g. hair, smile)…", clearButtonEnabled=True)
        self.reset_all = QPushButton("Reset all", toolTip="Put every slider back to 0 (undoable)")
        self.show_layers = QCheckBox("Show layer ranges", toolTip="Which generator layers each slider moves")
        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(self.reset_all)
        self.rows_widget = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_widget)
        self.rows_layout.setContentsMargins(0, 0, 4, 0)
        self.rows_layout.setSpacing(1)
        self.empty = QLabel("No slider matches the filter.")
        self.empty.setObjectName("hint")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.rows_widget, 1)
        lay.addWidget(self.empty)
        lay.addWidget(self.show_layers)
        self.filter.textChanged.connect(lambda _t: self._refresh())
        self.reset_all.clicked.connect(self._reset)
        self.show_layers.toggled.connect(lambda on: [r.layers.setVisible(on) for r in self.rows.values()])
        edits.changed.connect(self._sync)
        self.set_specs([])

    def set_specs(self, specs: list[SliderSpec]) -> None:
        """Rebuild the sliders (all at 0), grouped in GROUPS order; rows are built once shown."""
        while self.rows_layout.count():
            w = self.rows_layout.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.rows, self.headers, self._boxes, self._pending = {}, {}, {}, []
        ordered = [s for g in GROUPS for s in specs if s.group == g]
        self.specs = {s.name: s for s in ordered}
        for group in GROUPS:
            count = sum(s.group == group for s in ordered)
            if count:
                self._add_group(group, count)
        self.edits.set_names(list(self.specs))
        self._refresh()

    def add_spec(self, spec: SliderSpec) -> None:
        """One more slider (a taught one), keeping the others' values."""
        values = dict(self.edits.values)
        self.set_specs([s for s in self.specs.values() if s.name != spec.name] + [spec])
        self.edits.set_all(values)

    def _add_group(self, group: str, count: int) -> None:
        header = GroupHeader(group, count, group not in COLLAPSED, self.rows_widget)
        header.toggled.connect(lambda _on: self._refresh())
        box = QWidget(self.rows_widget)
        box_lay = QVBoxLayout(box)
        box_lay.setContentsMargins(0, 0, 0, 0)
        box_lay.setSpacing(1)
        self.rows_layout.addWidget(header)
        self.rows_layout.addWidget(box)
        self.headers[group], self._boxes[group] = header, box_lay

    def label(self, name: str) -> str:
        """The human name of a direction ('' if unknown)."""
        spec = self.specs.get(name)
        return spec.label if spec else ""

    def _wanted(self) -> tuple[set[str], set[str]]:
        """(names to show with the current filter and folds, names the filter matches); headers of
        groups with no match hide."""
        words = self.filter.text().strip().lower().split()
        hits = {n for n, s in self.specs.items() if all(w in f"{s.label} {s.group}".lower() for w in words)}
        for group, header in self.headers.items():
            header.setVisible(any(self.specs[n].group == group for n in hits))
        return {n for n in hits if words or self.headers[self.specs[n].group].isChecked()}, hits

    def _refresh(self) -> None:
        shown, hits = self._wanted()
        self._shown = shown
        for n, row in self.rows.items():
            row.setVisible(n in shown)
        unbuilt = [n for n in self.specs if n not in self.rows]
        self._pending = [n for n in unbuilt if n in shown] + [n for n in unbuilt if n not in shown]  # shown first
        self.empty.setVisible(bool(self.specs) and not hits)
        self._build_some()

    def _build_some(self) -> None:
        """Build pending rows for at most BUILD_SLICE_S, then let the event loop run and continue
        (styled widgets cost milliseconds each; a hundred at once would freeze the window)."""
        t0 = time.monotonic()
        while self._pending and time.monotonic() - t0 < BUILD_SLICE_S:
            name = self._pending.pop(0)
            if name in self.specs and name not in self.rows:
                self.row(name)
        if self._pending:
            QTimer.singleShot(0, self._build_some)

    def row(self, name: str) -> SliderRow:
        """The row of direction ``name``, built now if it was not yet."""
        if name in self.rows:
            return self.rows[name]
        spec = self.specs[name]
        row = SliderRow(spec, self.rows_widget)
        row.layers.setVisible(self.show_layers.isChecked())
        row.show_value(self.edits.value(name))
        row.moved.connect(self._moved)
        row.released.connect(self.released.emit)
        box, order = self._boxes[spec.group], list(self.specs)
        at = sum(order.index(n) < order.index(name) for n in self.rows if self.specs[n].group == spec.group)
        box.insertWidget(at, row)
        self.rows[name] = row
        row.setVisible(name in self._shown)
        return row

    def _moved(self, name: str, value: float, drag_id: int) -> None:
        self.undo.push(SliderCommand(self.edits, name, value, drag_id, label=self.label(name)))

    def _reset(self) -> None:
        if self.edits.active():
            self.undo.push(ResetSlidersCommand(self.edits))

    def _sync(self, name: str, value: float) -> None:
        items = self.edits.values.items() if not name else [(name, value)]
        for n, v in items:
            if n in self.rows:
                self.rows[n].show_value(v)
