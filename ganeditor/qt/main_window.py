"""The main window: image view, panels (Models, Portrait, Scene, Train), menus, toolbar, status bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QScrollArea, QToolButton,
                               QWidget)

from ganeditor import __version__
from ganeditor.core.errors import GanEditorError
from ganeditor.core.resources import resource, sample_photos
from ganeditor.qt.document import Document
from ganeditor.qt.image_view import ImageView
from ganeditor.qt.job_bar import JobBar
from ganeditor.qt.jobs import Job, Lane
from ganeditor.qt.models_panel import ModelsPanel
from ganeditor.qt.portrait_panel import PortraitPanel
from ganeditor.pipelines.portrait import WeightPaths, warm_up
from ganeditor.qt.prefs_dialog import PreferencesDialog
from ganeditor.qt.restore_panel import RestorePanel
from ganeditor.qt.scene_panel import ScenePanel
from ganeditor.qt.settings import Key, Settings
from ganeditor.qt.train_panel import TrainPanel
from ganeditor.qt.welcome import install_welcome

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.bmp *.gif);;All files (*)"
EXPORT_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;TIFF (*.tif *.tiff);;WebP (*.webp)"
MODEL_FILTER = "Models (*.safetensors *.pkl *.pt *.pth *.param);;All files (*)"


def icon(name: str) -> QIcon:
    """An icon from resources/icons (empty icon if missing)."""
    try:
        return QIcon(str(resource(f"icons/{name}.svg")))
    except FileNotFoundError:
        return QIcon()


class MainWindow(QMainWindow):
    """Top-level window of GAN Editor."""

    def __init__(self, settings: Settings | None = None, autosave_dir: Path | None = None) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.autosave_dir = autosave_dir
        self._discard = False  # closing without asking (screenshots, tests)
        self.setWindowTitle("GAN Editor")
        self.setWindowIcon(icon("ganeditor"))
        self.resize(1360, 860)
        self.setAcceptDrops(True)
        self.device_lane = Lane("device", self)
        self.train_lane = Lane("train", self)
        self.doc = Document(self)
        self.view = ImageView()
        self.setCentralWidget(self.view)
        self.models = ModelsPanel(self.device_lane)
        self.portrait = PortraitPanel(self.device_lane, self.doc, self.view, self._device_name, self._weight_paths)
        self.scene = ScenePanel(self.device_lane, self.doc, self._scene_options)
        self.train = TrainPanel(self.train_lane, self._device_name)
        self.restore = RestorePanel(self.device_lane, self.doc, self.view, self._scene_options)
        self.docks: dict[str, QDockWidget] = {}
        self._dock("Models", self.models, Qt.DockWidgetArea.LeftDockWidgetArea)
        for title, panel in (("Portrait", self.portrait), ("Scene", self.scene), ("Restore", self.restore),
                             ("Train", self.train)):
            self._dock(title, panel, Qt.DockWidgetArea.RightDockWidgetArea, scroll=True)
        self.tabifyDockWidget(self.docks["Portrait"], self.docks["Scene"])
        self.tabifyDockWidget(self.docks["Scene"], self.docks["Restore"])
        self.tabifyDockWidget(self.docks["Restore"], self.docks["Train"])
        self.docks["Portrait"].raise_()
        self.resizeDocks([self.docks["Models"], self.docks["Portrait"]], [300, 420], Qt.Orientation.Horizontal)
        self.job_bar = JobBar(self.device_lane)
        self.train_status = QLabel()
        self.zoom_label = QLabel("")
        self.size_label = QLabel("")
        self._build_actions()
        self._build_status()
        self.doc.image_changed.connect(self._show_document)
        self.models.selection_changed.connect(self._model_chosen)
        for p in (self.portrait, self.scene, self.restore, self.train):
            p.error.connect(self.show_error)
        self.restore.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.portrait.generator_failed.connect(self._generator_failed)
        self.portrait.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.view.zoom_changed.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f} %"))
        self.train_lane.job_started.connect(lambda j: self.train_status.setText("Training…"))
        self.train_lane.job_finished.connect(lambda j: self.train_status.setText(""))
        self.train_lane.job_progress.connect(lambda j, ev: self.train_status.setText(
            f"Training {ev.done:.0f}/{ev.total:.0f}" if ev.total else "Training…"))  # fmt: skip
        self.models.refresh(prefer={r: self.settings.get(k) for r, k in
                                    (("generator", Key.GENERATOR), ("translator", Key.TRANSLATOR),
                                     ("upscaler", Key.UPSCALER))})  # fmt: skip
        self._restore_layout()
        self.statusBar().showMessage("Open a photo to start (File ▸ Open…), or try one of File ▸ Open sample")
        self.device_lane.submit(Job(lambda task: warm_up(task), key="warmup", label="Preparing engines", grad=True))
        self.welcome = install_welcome(self)

    # ------------------------------------------------------------------------------ layout
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, scroll: bool = False) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}_dock")
        if scroll:
            sa = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
            sa.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            sa.setWidget(widget)
            widget = sa
            dock.setMinimumWidth(widget.widget().minimumSizeHint().width() + 24)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)  # fmt: skip
        self.addDockWidget(area, dock)
        self.docks[title] = dock

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
        S = QKeySequence.StandardKey
        self.open_act = self._act("&Open…", self._open_dialog, S.Open, "open", "Open a photo")
        self.export_act = self._act("&Export…", self._export_dialog, S.Save, "export", "Export the result (keeps ICC and bit depth)")
        self.undo_act = self.doc.undo_stack.createUndoAction(self, "&Undo")
        self.undo_act.setShortcut(QKeySequence(S.Undo))
        self.undo_act.setIcon(icon("undo"))
        self.redo_act = self.doc.undo_stack.createRedoAction(self, "&Redo")
        self.redo_act.setShortcut(QKeySequence(S.Redo))
        self.redo_act.setIcon(icon("redo"))
        self.fit_act = self._act("&Fit to window", self.view.fit, "Ctrl+0", "fit")
        self.actual_act = self._act("&Actual size (100 %)", self.view.actual_size, "Ctrl+1", "zoom100")
        self.zoom_in_act = self._act("Zoom &in", lambda: self.view.zoom_by(1.25), S.ZoomIn)
        self.zoom_out_act = self._act("Zoom &out", lambda: self.view.zoom_by(0.8), S.ZoomOut)
        self.split_act = self._act("&Split before/after", lambda on: self.view.set_compare("split" if on else "off"),
                                   "Ctrl+B", "compare", "Compare: original on the left, result on the right")
        self.split_act.setCheckable(True)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.open_act)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.sample_menu = file_menu.addMenu("Open &sample")
        for path in sample_photos():
            label = path.stem.replace("-", " ").capitalize()
            self.sample_menu.addAction(self._act(label, lambda _=False, p=path: self.open_image(str(p), remember=False)))
        self.sample_menu.setEnabled(bool(self.sample_menu.actions()))
        file_menu.addAction(self.export_act)
        file_menu.addSeparator()
        file_menu.addAction(self._act("Open &model file…", self._open_model_dialog))
        file_menu.addAction(self._act("Re&scan models", lambda: self.models.refresh()))
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
        self._update_recent()
        self._update_doc_actions()

    def _build_status(self) -> None:
        sb = self.statusBar()
        sb.addPermanentWidget(self.job_bar)
        sb.addPermanentWidget(self.train_status)
        sb.addPermanentWidget(self.size_label)
        sb.addPermanentWidget(self.zoom_label)

    # ---------------------------------------------------------------------------- start-up
    def start_up(self, path: str | None = None) -> None:
        """After show(): open ``path`` (a photo or a project) if given."""
        if path:
            self.open_path(path)

    def open_path(self, path: str, remember: bool = True) -> bool:
        """Open a photo or a project file."""
        return self.open_image(path, remember)

    def panel_names(self) -> list[str]:
        return [t.lower() for t in self.docks]

    def show_panel(self, name: str) -> bool:
        """Bring the dock titled ``name`` (any case) to the front; False if there is none."""
        dock = next((d for t, d in self.docks.items() if t.lower() == name.lower()), None)
        if dock is None:
            return False
        dock.show()
        dock.raise_()
        return True

    def idle(self) -> bool:
        """No job runs or waits on any lane."""
        return not self.device_lane.busy() and self.device_lane.current is None and not self.train_lane.busy()

    def discard_and_close(self) -> None:
        """Close without asking about unsaved work (offscreen screenshots, tests)."""
        self._discard = True
        self.close()

    # --------------------------------------------------------------------------- document
    def open_image(self, path: str, remember: bool = True) -> bool:
        """Open the photo at ``path`` (``remember``: in the recent files and as the last folder);
        on failure, say why in a message box and return False."""
        try:
            img = self.doc.open(path)
        except GanEditorError as e:
            QMessageBox.warning(self, "Cannot open", str(e))
            return False
        if remember:
            self.settings.add_recent(str(Path(path).resolve()))
            self.settings.set(Key.LAST_DIR, str(Path(path).resolve().parent))
            self._update_recent()
        w, h = img.size
        extra = f", {img.bit_depth}-bit" if img.bit_depth != 8 else ""
        notes = f" — {'; '.join(img.notes)}" if img.notes else ""
        self.statusBar().showMessage(f"{Path(path).name} — {w}×{h}{extra}{notes}")
        self.setWindowTitle(f"{Path(path).name} — GAN Editor")
        return True

    def _show_document(self) -> None:
        d = self.doc
        same = d.current is d.original
        self.view.set_images(d.current, None if same else d.original)
        if d.current is not None:
            h, w = d.current.shape[:2]
            edits = d.undo_stack.index()
            self.size_label.setText(f"{w}×{h}" + (f" · {edits} edit{'s' if edits != 1 else ''}" if edits else ""))
        self._update_doc_actions()

    def _update_doc_actions(self) -> None:
        has = self.doc.is_open
        for a in (self.export_act, self.fit_act, self.actual_act, self.split_act):
            a.setEnabled(has)
        self.hold_button.setEnabled(has)

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open photo", self.settings.get(Key.LAST_DIR), IMAGE_FILTER)
        if path:
            self.open_image(path)

    def _export_dialog(self) -> None:
        if not self.doc.is_open:
            return
        start = str(self.doc.path.with_name(self.doc.path.stem + "-edited.png")) if self.doc.path else ""
        path, _ = QFileDialog.getSaveFileName(self, "Export result", start, EXPORT_FILTER)
        if path:
            self.export(path)

    def export(self, path: str) -> bool:
        """Write the current result atomically (ICC, EXIF and bit depth kept where the format can)."""
        try:
            notes = self.doc.export(path, options=self.settings.provenance_options())
        except GanEditorError as e:
            self.show_error("Cannot export", str(e))
            return False
        self.statusBar().showMessage(f"Exported {Path(path).name}" + (f" ({'; '.join(notes)})" if notes else ""), 8000)
        return True

    def _update_recent(self) -> None:
        self.recent_menu.clear()
        items = self.settings.get(Key.RECENT_FILES)
        for p in items:
            self.recent_menu.addAction(Path(p).name, lambda p=p: self.open_image(p)).setToolTip(p)
        self.recent_menu.setEnabled(bool(items))

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            self.open_image(urls[0].toLocalFile())

    # ------------------------------------------------------------------------------ models
    def _model_chosen(self, role: str, entry) -> None:
        key = {"generator": Key.GENERATOR, "translator": Key.TRANSLATOR, "upscaler": Key.UPSCALER}[role]
        self.settings.set(key, entry.name if entry else "")
        if role == "generator":
            if entry is None or self.portrait.generator is None or entry.path != self.portrait.generator.path:
                self.portrait.set_generator(entry, self.models.entries)
        else:
            self.scene.set_model(role, entry)

    def _open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", MODEL_FILTER)
        if path:
            self.models.add_file(path)

    def _generator_failed(self, entry, message: str) -> None:
        """A generator did not load: the one in use (if any) stays chosen, with its inversion and edits."""
        current = self.portrait.generator
        self.models.select("generator", current.name if current else "", quiet=True)
        if message:
            self.show_error(f"Cannot use {entry.name}", message)

    def _device_name(self) -> str:
        return self.settings.get(Key.DEVICE)

    def _weight_paths(self) -> WeightPaths:
        return WeightPaths(vgg16=self.settings.get(Key.VGG16_PATH), mtcnn_dir=self.settings.get(Key.MTCNN_DIR))

    def _scene_options(self) -> dict:
        tile = self.settings.get(Key.TILE_SIZE)
        return {"device": self._device_name(), "tile": tile or None, "fast": self.settings.get(Key.FAST_MODE)}

    def _preferences(self) -> None:
        PreferencesDialog(self.settings, self).exec()

    # ------------------------------------------------------------------------------- misc
    def show_error(self, title: str, message: str) -> None:
        """One-line error for the user (also in the status bar)."""
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        QMessageBox.warning(self, title, message)

    def _about(self) -> None:
        QMessageBox.about(self, "About GAN Editor", f"GAN Editor {__version__}\nEdit photos with generative adversarial networks.")

    def _restore_layout(self) -> None:
        geo, state = self.settings.get(Key.WINDOW_GEOMETRY), self.settings.get(Key.WINDOW_STATE)
        if geo:
            self.restoreGeometry(geo)
        if state:
            self.restoreState(state)

    def closeEvent(self, event) -> None:  # noqa: N802
        """Cancel and join every worker, then save the layout."""
        self.settings.set(Key.WINDOW_GEOMETRY, bytes(self.saveGeometry().data()))
        self.settings.set(Key.WINDOW_STATE, bytes(self.saveState().data()))
        self.settings.sync()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> bool:
        """Supersede all jobs and wait for the worker threads; True when all stopped in time."""
        ok = self.train_lane.shutdown()
        return self.device_lane.shutdown() and ok
