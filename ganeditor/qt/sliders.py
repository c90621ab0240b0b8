"""Direction sliders bound two-way to an ``EditState`` through undo commands, grouped by what they do
("Expression", "Age", "Hair", ..., "Discovered"), with a filter box and layer ranges on request.

Sliders react to the mouse wheel only once focused (clicked or tabbed to): scrolling the panel over
them scrolls the panel and never changes a value.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSlider, QToolButton,
                               QVBoxLayout, QWidget)

from ganeditor.pipelines.sliders import GROUPS, SLIDER_RANGE, SliderSpec
from ganeditor.qt.commands import ResetSlidersCommand, SliderCommand
from ganeditor.qt.compat import emit
from ganeditor.qt.document import EditState

SCALE = 100  # slider ticks per unit of α
COLLAPSED = ("Discovered",)  # groups shown folded until opened
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
        self.label.setMinimumWidth(120)
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
        self.slider.sliderPressed.connect(self._new_drag)
        self.slider.sliderReleased.connect(lambda: emit(self.released, self.name))
        self.slider.valueChanged.connect(self._changed)
        self.reset.clicked.connect(lambda: self.slider.setValue(0))

    def _new_drag(self) -> None:
        self._drag = next(_drags)

    def _changed(self, ticks: int) -> None:
        if not self.slider.isSliderDown():
            self._new_drag()  # keyboard, focused wheel, reset: one undo step each
        self.value_label.setText(f"{ticks / SCALE:+.1f}" if ticks else "0.0")
        emit(self.moved, self.name, ticks / SCALE, self._drag)

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
        self.rows: dict[str, SliderRow] = {}
        self.headers: dict[str, GroupHeader] = {}
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
        """Rebuild the rows (all at 0), grouped in GROUPS order."""
        for w in [*self.rows.values(), *self.headers.values()]:
            w.deleteLater()
        self.rows, self.headers = {}, {}
        for group in GROUPS:
            members = [s for s in specs if s.group == group]
            if members:
                self._add_group(group, members)
        self.edits.set_names([s.name for s in specs])
        self._refresh()

    def add_spec(self, spec: SliderSpec) -> None:
        """One more slider (a taught one), keeping the others' values."""
        values = dict(self.edits.values)
        specs = [r.spec for r in self.rows.values() if r.name != spec.name] + [spec]
        self.set_specs(specs)
        self.edits.set_all(values)

    def _add_group(self, group: str, members: list[SliderSpec]) -> None:
        header = GroupHeader(group, len(members), group not in COLLAPSED, self.rows_widget)
        header.toggled.connect(lambda _on: self._refresh())
        self.rows_layout.addWidget(header)
        self.headers[group] = header
        for spec in members:
            row = SliderRow(spec, self.rows_widget)
            row.layers.setVisible(self.show_layers.isChecked())
            row.moved.connect(self._moved)
            row.released.connect(lambda name: emit(self.released, name))
            self.rows_layout.addWidget(row)
            self.rows[spec.name] = row

    def label(self, name: str) -> str:
        """The human name of a direction ('' if unknown)."""
        row = self.rows.get(name)
        return row.spec.label if row else ""

    def _refresh(self) -> None:
        words = self.filter.text().strip().lower().split()
        shown = 0
        for group, header in self.headers.items():
            hits = [r for r in self.rows.values() if r.spec.group == group and all(
                w in f"{r.spec.label} {r.spec.group}".lower() for w in words)]  # fmt: skip
            header.setVisible(bool(hits))
            for r in self.rows.values():
                if r.spec.group == group:
                    r.setVisible(r in hits and (header.isChecked() or bool(words)))
            shown += len(hits)
        self.empty.setVisible(bool(self.rows) and shown == 0)

    def _moved(self, name: str, value: float, drag_id: int) -> None:
        self.undo.push(SliderCommand(self.edits, name, value, drag_id, self.label(name)))

    def _reset(self) -> None:
        if self.edits.active():
            self.undo.push(ResetSlidersCommand(self.edits))

    def _sync(self, name: str, value: float) -> None:
        items = self.edits.values.items() if not name else [(name, value)]
        for n, v in items:
            if n in self.rows:
                self.rows[n].show_value(v)
