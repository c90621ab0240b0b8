"""The main window: image view, panels (Models, Portrait, Scene, Train, History), menus, toolbar,
status bar; closing asks before work is lost and joins every worker thread."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from PySide6.QtCore import QElapsedTimer, Qt
from PySide6.QtWidgets import (QApplication, QDockWidget, QLabel, QMainWindow, QMessageBox, QScrollArea, QUndoView,
                               QWidget)
from shiboken6 import isValid

from ganeditor import __version__
from ganeditor.core.device import describe_device, pick_device
from ganeditor.core.errors import GanEditorError
from ganeditor.pipelines.portrait import WeightPaths, warm_up
from ganeditor.qt.autosave import Autosaver, autosave_dir
from ganeditor.qt.document import Document
from ganeditor.qt.image_view import ImageView
from ganeditor.qt.job_bar import JobBar
from ganeditor.qt.jobs import Job, Lane
from ganeditor.qt.models_panel import ModelsPanel
from ganeditor.qt.generate_panel import GeneratePanel
from ganeditor.qt.portrait_panel import PortraitPanel
from ganeditor.qt.prefs_dialog import PreferencesDialog
from ganeditor.qt.restore_panel import RestorePanel
from ganeditor.qt.scene_panel import ScenePanel
from ganeditor.qt.settings import Key, Settings
from ganeditor.qt.train_panel import TrainPanel
from ganeditor.qt.window_actions import WindowActions, icon
from ganeditor.qt.window_files import FileActions
from ganeditor.qt.window_models import ROLE_KEYS, ModelActions
from ganeditor.qt.welcome import install_welcome

QUIET_JOBS = ("preview", "warmup", "describe", "autosave", "scan")  # jobs that are not the user's work
DEFAULT_SIZE = (1360, 860)


class MainWindow(FileActions, ModelActions, WindowActions, QMainWindow):
    """Top-level window of GAN Editor."""

    def __init__(self, settings: Settings | None = None, autosave_folder: Path | None = None,
                 autosave_interval_s: float = 60.0) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self._discard = False  # closing without asking (screenshots, tests)
        self.headless = False  # nobody is there (--screenshot): no dialog opens; errors and questions go to stderr
        self._closed = False
        self.setWindowTitle("GAN Editor")
        self.setWindowIcon(icon("ganeditor"))
        self.setAcceptDrops(True)
        self.device_lane = Lane("device", self)  # models: one job at a time
        self.train_lane = Lane("train", self)
        self.io_lane = Lane("io", self)  # decoding, encoding, saving, scanning
        self.doc = Document(self)
        self.doc.memory_limit = self.settings.get(Key.UNDO_MEMORY_MB) << 20
        self.view = ImageView()
        self.setCentralWidget(self.view)
        self.models = ModelsPanel(self.device_lane)
        self.portrait = PortraitPanel(self.device_lane, self.doc, self.view, self._device, self._weight_paths)
        self.scene = ScenePanel(self.device_lane, self.doc, self._scene_options)
        self.train = TrainPanel(self.train_lane, lambda: str(self._device()))
        self.train.set_form_json(self.settings.get(Key.TRAIN_FORM))
        self.restore = RestorePanel(self.device_lane, self.doc, self.view, self._scene_options)
        self.generate = GeneratePanel(self.device_lane, self.portrait)
        self.history = QUndoView(self.doc.undo_stack)
        self.history.setEmptyLabel("Opened photo")
        self.docks: dict[str, QDockWidget] = {}
        self._dock("Models", self.models, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("History", self.history, Qt.DockWidgetArea.LeftDockWidgetArea)
        for title, panel in (("Portrait", self.portrait), ("Generate", self.generate), ("Scene", self.scene),
                             ("Restore", self.restore), ("Train", self.train)):
            # the Portrait panel scrolls inside itself, under its fixed action bar
            self._dock(title, panel, Qt.DockWidgetArea.RightDockWidgetArea, scroll=title != "Portrait")
        self.tabifyDockWidget(self.docks["Models"], self.docks["History"])
        self.tabifyDockWidget(self.docks["Portrait"], self.docks["Generate"])
        self.tabifyDockWidget(self.docks["Generate"], self.docks["Scene"])
        self.tabifyDockWidget(self.docks["Scene"], self.docks["Restore"])
        self.tabifyDockWidget(self.docks["Restore"], self.docks["Train"])
        self.docks["Models"].raise_()
        self.docks["Portrait"].raise_()
        self.resizeDocks([self.docks["Models"], self.docks["Portrait"]], [280, 420], Qt.Orientation.Horizontal)
        self.job_bar = JobBar(self.device_lane)
        self.device_label = QLabel()
        self.train_status = QLabel()
        self.zoom_label = QLabel("")
        self.size_label = QLabel("")
        self.autosaver = Autosaver(autosave_folder or autosave_dir(), self.io_lane, self._autosave_data, autosave_interval_s, self)
        self.autosaver.failed.connect(lambda m: self.statusBar().showMessage(f"Autosave failed: {m}", 15000))
        self._build_actions()
        self._build_status()
        self._connect()
        self._fit_screen()
        self.statusBar().showMessage("Open a photo to start (File ▸ Open…), or try one of File ▸ Open sample")
        self.scan_models(prefer={r: self.settings.get(k) for r, k in ROLE_KEYS.items()})
        self.device_lane.submit(Job(lambda task: warm_up(task), key="warmup", label="Preparing engines", grad=True,
                                    cancellable=False))
        self.welcome = install_welcome(self)

    def _connect(self) -> None:
        self.doc.image_changed.connect(self._show_document)
        self.doc.opened.connect(self._history_start)
        self.doc.modified_changed.connect(lambda _m: self._update_title())
        self.doc.undo_stack.indexChanged.connect(lambda _i: self.autosaver.edited())
        # QUndoStack moves its index only after a command's redo/undo has changed the image: count again then
        # (not while the stack itself is being destroyed with the window).
        stack, label = self.doc.undo_stack, self.size_label
        stack.indexChanged.connect(lambda _i: self._update_size_label() if isValid(stack) and isValid(label) else None)
        self.models.selection_changed.connect(self._model_chosen)
        for p in (self.portrait, self.scene, self.restore, self.train, self.generate):
            p.error.connect(self.show_error)
        self.generate.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.generate.edit_face.connect(self._edit_generated)
        self.restore.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.portrait.generator_failed.connect(self._generator_failed)
        self.portrait.wants_generator.connect(lambda e: self.models.select("generator", e.name))
        self.portrait.inverted_changed.connect(self.doc.mark_modified)
        self.portrait.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.train.finished.connect(self._training_finished)
        self.view.zoom_changed.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f} %"))
        self.device_lane.job_finished.connect(self._job_finished)
        self.train_lane.job_started.connect(lambda j: self.train_status.setText("Training…"))
        self.train_lane.job_finished.connect(lambda j: self.train_status.setText(""))
        self.train_lane.job_progress.connect(lambda j, ev: self.train_status.setText(
            f"Training {ev.done:.0f}/{ev.total:.0f}" if ev.total else "Training…"))  # fmt: skip

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

    def _fit_screen(self) -> None:
        """Open within the available screen (e.g. 1280×800 less the panels of the desktop)."""
        geo, state = self.settings.get(Key.WINDOW_GEOMETRY), self.settings.get(Key.WINDOW_STATE)
        if geo:
            self.restoreGeometry(geo)
        if state:
            self.restoreState(state)
        screen = self.screen().availableGeometry() if self.screen() else None
        w, h = (self.width(), self.height()) if geo else DEFAULT_SIZE
        if screen is not None:
            w, h = min(w, screen.width()), min(h, screen.height())
        self.resize(w, h)
        if screen is not None and not screen.contains(self.frameGeometry().topLeft()):
            self.move(screen.topLeft())

    def _build_status(self) -> None:
        sb = self.statusBar()
        sb.addPermanentWidget(self.job_bar)
        sb.addPermanentWidget(self.train_status)
        sb.addPermanentWidget(self.size_label)
        sb.addPermanentWidget(self.zoom_label)
        sb.addPermanentWidget(self.device_label)
        self._update_device_label()

    def _update_device_label(self) -> None:
        name = self._device_name()
        try:
            text = describe_device(pick_device(name))
        except GanEditorError:
            text = f"{name}: not available (see Preferences)"
        self.device_label.setText(text)
        self.device_label.setToolTip(f"Compute device (Preferences: {name})")

    # ---------------------------------------------------------------------------- start-up
    def start_up(self, path: str | None = None) -> None:
        """After show(): offer to recover a crashed session's work, else open ``path`` if given."""
        if not self.offer_recovery() and path:
            self.open_path(path)

    def _edit_generated(self, ws, image, name: str, made_by: dict) -> None:
        """'Edit this face' in the Generate panel: the face becomes the photo, its latent goes to the sliders
        (after offering to apply or save what the current photo holds, as opening a file does)."""
        if not self.confirm_discard("edit the generated face"):
            return
        self.doc.open_pixels(image, f"{name}.png", made_by)
        self.portrait.edit_latent(ws, image)
        self.show_panel("portrait")

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
        """No job runs or waits on the device and I/O lanes (training may run)."""
        return all(not ln.busy() and ln.current is None for ln in (self.device_lane, self.io_lane))

    def wait_for(self, condition, timeout_ms: int = 120000) -> bool:
        """Process events until ``condition()`` (a modal wait for a save before quitting)."""
        t = QElapsedTimer()
        t.start()
        while not condition() and t.elapsed() < timeout_ms:
            QApplication.processEvents()
            QApplication.instance().thread().msleep(5)  # type: ignore[union-attr]
        return bool(condition())

    def discard_and_close(self) -> None:
        """Close without asking about unsaved work (offscreen screenshots, tests)."""
        self._discard = True
        self.close()

    # --------------------------------------------------------------------------- document
    def _show_document(self) -> None:
        d = self.doc
        same = d.current is d.original
        self.view.set_images(d.current, None if same else d.original)
        self._update_size_label()
        self._update_doc_actions()

    def _update_size_label(self) -> None:
        d = self.doc
        if d.current is not None:
            h, w = d.current.shape[:2]
            edits = d.undo_stack.index()
            self.size_label.setText(f"{w}×{h}" + (f" · {edits} edit{'s' if edits != 1 else ''}" if edits else ""))

    def _history_start(self, _path: str) -> None:
        d = self.doc
        if d.project_path is not None:
            self.history.setEmptyLabel(f"Opened {d.project_path.name}")
        else:
            self.history.setEmptyLabel(f"Opened {d.path.name}" if d.path else "Recovered work")

    def _update_title(self) -> None:
        d = self.doc
        name = d.project_path.name if d.project_path else (d.path.name if d.path else "")
        self.setWindowTitle((f"{name}{'*' if d.is_modified else ''} — " if name else "") + "GAN Editor")

    def _autosave_data(self):
        """(revision, project) to autosave, or None when nothing needs it."""
        if not self.doc.is_modified:
            return None
        return self.doc.revision, self.gather_project()

    def _job_finished(self, job: Job) -> None:
        if not any(job.key.startswith(k) for k in QUIET_JOBS):
            self.autosaver.save_now()

    def _device_name(self) -> str:
        return self.settings.get(Key.DEVICE)

    def _weight_paths(self) -> WeightPaths:
        return WeightPaths(vgg16=self.settings.get(Key.VGG16_PATH), mtcnn_dir=self.settings.get(Key.MTCNN_DIR))

    def _device(self) -> torch.device:
        """The compute device for a job about to start (resolved once per job; the CPU when the chosen one is gone)."""
        try:
            return pick_device(self._device_name())
        except GanEditorError as e:
            self.statusBar().showMessage(f"{e}: using the CPU", 10000)
            return torch.device("cpu")

    def _scene_options(self) -> dict:
        tile = self.settings.get(Key.TILE_SIZE)
        return {"device": self._device(), "tile": tile or None, "fast": self.settings.get(Key.FAST_MODE)}

    def _preferences(self) -> None:
        if PreferencesDialog(self.settings, self).exec():
            self.doc.memory_limit = self.settings.get(Key.UNDO_MEMORY_MB) << 20
            self.doc.trim_history()
            self._update_device_label()

    # ------------------------------------------------------------------------------- misc
    def show_error(self, title: str, message: str) -> None:
        """One-line error for the user (also in the status bar)."""
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        if self.headless:
            print(f"{title}: {message}", file=sys.stderr, flush=True)
        elif not self._discard:
            QMessageBox.warning(self, title, message)

    def _about(self) -> None:
        QMessageBox.about(self, "About GAN Editor", f"GAN Editor {__version__}\nEdit photos with generative adversarial networks.")

    # ------------------------------------------------------------------------------ closing
    def running_jobs(self) -> list[str]:
        """Labels of the user's jobs that run or wait (previews and housekeeping left out)."""
        out = []
        for lane in (self.device_lane, self.train_lane, self.io_lane):
            for j in [*lane._queue, *([lane.current] if lane.current else [])]:
                if not j.stale and not any(j.key.startswith(k) for k in QUIET_JOBS):
                    out.append(j.label or j.key)
        return out

    def closeEvent(self, event) -> None:  # noqa: N802
        """Ask before stopping work or losing edits; then cancel and join every worker and save the layout."""
        if self._closed:
            event.accept()
            return
        running = self.running_jobs()
        if running and not self._discard:
            training = " Training stops within a second and keeps its last whole step in a checkpoint, so it can resume." \
                if self.train_lane.busy("train") else ""  # fmt: skip
            a = self.ask("Quit GAN Editor", f"Still running: {', '.join(running)}. Stop and quit?{training}",
                         QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)  # fmt: skip
            if a != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        if not self.confirm_discard("quit"):
            event.ignore()
            return
        self.settings.set(Key.WINDOW_GEOMETRY, bytes(self.saveGeometry().data()))
        self.settings.set(Key.TRAIN_FORM, self.train.form_json())
        self.settings.set(Key.WINDOW_STATE, bytes(self.saveState().data()))
        self.settings.sync()
        self.hide()
        self.shutdown()
        self.autosaver.discard()  # a clean exit: nothing to recover
        self._closed = True
        super().closeEvent(event)

    def shutdown(self, timeout_ms: int | None = None) -> bool:
        """Cancel all jobs and join the worker threads (training writes its checkpoint); True when all
        stopped.  By default it waits for every thread: a QThread must never be destroyed while it runs,
        and every job either checks its cancel token or is short (warm-up, scans)."""
        self.autosaver.timer.stop()
        ok = [lane.shutdown(timeout_ms) for lane in (self.device_lane, self.train_lane, self.io_lane)]
        return all(ok)
