"""The main window's actions, menus and toolbar (File, Edit, View, Help; open/export, undo/redo, zoom,
compare), built once at start-up."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QToolButton

from ganeditor.core.resources import resource, sample_photos
from ganeditor.qt.settings import Key

S = QKeySequence.StandardKey


def icon(name: str) -> QIcon:
    """An icon from resources/icons (empty icon if missing)."""
    try:
        return QIcon(str(resource(f"icons/{name}.svg")))
    except FileNotFoundError:
        return QIcon()


class WindowActions:
    """Mixed into MainWindow (uses its doc, view, docks and the File/Model actions' slots)."""

    def _act(self, text: str, slot, shortcut=None, icon_name: str | None = None, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if icon_name:
            a.setIcon(icon(icon_name))
        a.setToolTip(tip or text.replace("&", "").replace("…", ""))
        a.triggered.connect(slot)
        return a

    def _build_actions(self) -> None:
        self.open_act = self._act("&Open…", self._open_dialog, S.Open, "open", "Open a photo or a project")
        self.save_act = self._act("&Save project", lambda: self.save_project(), S.Save, None, "Save the work as a .ganedit project")
        self.save_as_act = self._act("Save project &as…", lambda: self.save_project_as(), S.SaveAs)
        self.export_act = self._act("&Export image…", self._export_dialog, "Ctrl+E", "export", "Export the result (keeps ICC and bit depth)")
        self.undo_act = self.doc.undo_stack.createUndoAction(self, "&Undo")
        self.redo_act = self.doc.undo_stack.createRedoAction(self, "&Redo")
        for a, key, name in ((self.undo_act, S.Undo, "undo"), (self.redo_act, S.Redo, "redo")):
            a.setShortcut(QKeySequence(key))
            a.setIcon(icon(name))
        self.fit_act = self._act("&Fit to window", self.view.fit, "Ctrl+0", "fit")
        self.actual_act = self._act("&Actual size (100 %)", self.view.actual_size, "Ctrl+1", "zoom100")
        self.zoom_in_act = self._act("Zoom &in", lambda: self.view.zoom_by(1.25), S.ZoomIn)
        self.zoom_out_act = self._act("Zoom &out", lambda: self.view.zoom_by(0.8), S.ZoomOut)
        self.split_act = self._act("&Split before/after", lambda on: self.view.set_compare("split" if on else "off"),
                                   "Ctrl+B", "compare", "Compare: original on the left, result on the right")
        self.split_act.setCheckable(True)
        self._build_menus()
        self._build_toolbar()
        self._update_recent()
        self._update_doc_actions()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.open_act)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.sample_menu = file_menu.addMenu("Open &sample")
        for path in sample_photos():
            label = path.stem.replace("-", " ").capitalize()
            self.sample_menu.addAction(self._act(label, lambda _=False, p=path: self.open_path(str(p), remember=False)))
        self.sample_menu.setEnabled(bool(self.sample_menu.actions()))
        file_menu.addSeparator()
        file_menu.addActions([self.save_act, self.save_as_act, self.export_act])
        file_menu.addSeparator()
        file_menu.addAction(self._act("Open &model file…", self._open_model_dialog))
        file_menu.addAction(self._act("Re&scan models", lambda: self.scan_models()))
        file_menu.addSeparator()
        file_menu.addAction(self._act("&Quit", self.close, S.Quit))
        edit_menu = self.menuBar().addMenu("&Edit")
        edit_menu.addActions([self.undo_act, self.redo_act])
        edit_menu.addSeparator()
        edit_menu.addAction(self._act("&Preferences…", self._preferences, S.Preferences))
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addActions([self.fit_act, self.actual_act, self.zoom_in_act, self.zoom_out_act, self.split_act])
        view_menu.addSeparator()
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self._act("&About GAN Editor", self._about))

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addActions([self.open_act, self.export_act])
        tb.addSeparator()
        tb.addActions([self.undo_act, self.redo_act])
        for a in (self.undo_act, self.redo_act):  # their text names the command: keep the toolbar steady
            tb.widgetForAction(a).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        tb.addSeparator()
        tb.addActions([self.fit_act, self.actual_act, self.split_act])
        self.hold_button = QToolButton(text="Hold to compare", icon=icon("hold"))
        self.hold_button.setToolTip("Show the original while pressed (or hold the \\ key over the image)")
        self.hold_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.hold_button.pressed.connect(lambda: self.view.set_holding(True))
        self.hold_button.released.connect(lambda: self.view.set_holding(False))
        tb.addWidget(self.hold_button)

    def _update_doc_actions(self) -> None:
        has = self.doc.is_open
        for a in (self.export_act, self.save_act, self.save_as_act, self.fit_act, self.actual_act, self.split_act):
            a.setEnabled(has)
        self.hold_button.setEnabled(has)

    def _update_recent(self) -> None:
        self.recent_menu.clear()
        items = self.settings.get(Key.RECENT_FILES)
        for p in items:
            self.recent_menu.addAction(Path(p).name, lambda p=p: self.open_path(p)).setToolTip(p)
        self.recent_menu.setEnabled(bool(items))
