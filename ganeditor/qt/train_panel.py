"""Train panel: pick a recipe, folders and steps; run, pause, cancel and resume in the background."""

from __future__ import annotations

import json
from typing import Any, Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from ganeditor.pipelines.train.engine import RECIPES, TrainConfig, TrainEvent, past_events, train
from ganeditor.pipelines.train.run_dir import RunDir
from ganeditor.qt.jobs import Job, JobTask, Lane
from ganeditor.qt.loss_plot import LossPlot
from ganeditor.qt.train_health import HealthView
from ganeditor.qt.widgets import Thumb, hint, section

def _fmt_eta(s: float | None) -> str:
    if s is None:
        return "—"
    s = int(s)
    if s < 60:
        return f"{s} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min" if s >= 3600 else f"{s // 60} min {s % 60:02d} s"


class FolderField(QWidget):
    """A line edit with a Browse… button for a folder."""

    def __init__(self, placeholder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(placeholderText=placeholder)
        browse = QPushButton("Browse…")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit, 1)
        lay.addWidget(browse)
        browse.clicked.connect(self._browse)

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Choose a folder", self.edit.text())
        if d:
            self.edit.setText(d)

    def text(self) -> str:
        return self.edit.text().strip()


_SPINS = ("steps", "batch", "sample_every", "checkpoint_every", "eval_every", "eval_count")


class TrainPanel(QWidget):
    """Controls, live loss plot, latest sample grid, images/s and ETA of a run on the train lane."""

    error = Signal(str, str)
    finished = Signal(str)  # 'done' | 'cancelled' | 'error'

    def __init__(self, lane: Lane, device_name: Callable[[], str] = lambda: "auto",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lane, self.device_name = lane, device_name
        self.job: Job | None = None
        self.last_event: TrainEvent | None = None
        self.recipe_box = QComboBox()
        for k, info in RECIPES.items():
            self.recipe_box.addItem(info.label, k)
        self.recipe_hint = hint()
        self.folder_a, self.folder_b = FolderField("folder of images"), FolderField("folder of images")
        self.out = FolderField("run folder (checkpoints, samples, model.safetensors)")
        self.steps = QSpinBox(minimum=1, maximum=10_000_000, value=1000, singleStep=100)
        self.batch = QSpinBox(minimum=1, maximum=256, value=4)
        self.sample_every = QSpinBox(minimum=0, maximum=100000, value=50, toolTip="0: no samples")
        self.checkpoint_every = QSpinBox(minimum=1, maximum=1_000_000, value=200)
        self.eval_every = QSpinBox(minimum=0, maximum=1_000_000, value=500, singleStep=100,
                                   toolTip="FID/KID, precision/recall, coverage and the mode-collapse alarm; 0: never")
        self.eval_count = QSpinBox(minimum=16, maximum=50_000, value=512, singleStep=128,
                                   toolTip="generated and real images per health measurement (more: steadier figures, "
                                           "slower measurements)")
        self.options = QLineEdit(placeholderText='recipe options as JSON, e.g. {"ngf": 32, "crop_size": 128}')
        self.resume = QCheckBox("Continue the run in this folder (resume exactly)")
        self.form = self._build_form()
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("primary")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setToolTip("Stop now; the last whole step is kept in a checkpoint so the run can resume")
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.cancel_button):
            buttons.addWidget(b)
        self.stats = hint("Not running.")
        self.plot = LossPlot()
        self.health = HealthView()
        self.sample = Thumb("Latest samples", size=(400, 220), empty="Samples appear every few steps")
        lay = QVBoxLayout(self)
        lay.addWidget(section("Run"))
        lay.addLayout(self.form)
        lay.addLayout(buttons)
        lay.addWidget(self.stats)
        lay.addWidget(self.health.alarm)
        lay.addWidget(section("Progress"))
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.health)
        lay.addWidget(self.sample)
        self.recipe_box.currentIndexChanged.connect(self._recipe_changed)
        self.start_button.clicked.connect(self.start)
        self.pause_button.toggled.connect(self._pause)
        self.cancel_button.clicked.connect(self.stop)
        for f in (self.folder_a, self.folder_b, self.out):
            f.edit.textChanged.connect(self._update_state)
        self._recipe_changed()


    def _build_form(self) -> QFormLayout:
        """The run's settings, one row each."""
        form = QFormLayout()
        form.addRow("Recipe:", self.recipe_box)
        form.addRow(self.recipe_hint)
        form.addRow("Folder A:", self.folder_a)
        form.addRow("Folder B:", self.folder_b)
        form.addRow("Run folder:", self.out)
        self.steps.setSuffix(" steps")
        self.batch.setSuffix(" images")
        self.sample_every.setSuffix(" steps")
        self.sample_every.setSpecialValueText("never")
        self.checkpoint_every.setSuffix(" steps")
        self.eval_every.setSuffix(" steps")
        self.eval_every.setSpecialValueText("never")
        form.addRow("Length:", self.steps)
        form.addRow("Batch:", self.batch)
        form.addRow("Samples every:", self.sample_every)
        form.addRow("Checkpoint every:", self.checkpoint_every)
        self.eval_count.setPrefix("on ")
        self.eval_count.setSuffix(" images")
        health = QHBoxLayout()
        health.addWidget(self.eval_every, 1)
        health.addWidget(self.eval_count, 1)
        form.addRow("Health every:", health)
        form.addRow("Options:", self.options)
        form.addRow(self.resume)
        return form

    # ------------------------------------------------------------------------------ config
    def form_json(self) -> str:
        """What the form holds, as JSON, to be remembered between sessions (``set_form_json``)."""
        return json.dumps({"recipe": self.recipe_box.currentData(), "a": self.folder_a.text(), "b": self.folder_b.text(),
                           "out": self.out.text(), "options": self.options.text(), "resume": self.resume.isChecked(),
                           **{k: getattr(self, k).value() for k in _SPINS}})

    def set_form_json(self, text: str) -> None:
        """Fill the form from ``form_json``'s text (a damaged text, unknown or mistyped entries are ignored)."""
        try:
            state = json.loads(text or "{}")
        except ValueError:
            return
        if not isinstance(state, dict):
            return
        i = self.recipe_box.findData(state.get("recipe"))
        if i >= 0:
            self.recipe_box.setCurrentIndex(i)
        for key, field in (("a", self.folder_a), ("b", self.folder_b), ("out", self.out), ("options", self.options)):
            if isinstance(state.get(key), str):
                (field.edit if isinstance(field, FolderField) else field).setText(state[key])
        for k in _SPINS:
            if isinstance(state.get(k), int):
                getattr(self, k).setValue(state[k])
        self.resume.setChecked(bool(state.get("resume", False)))
        self._update_state()

    def config(self) -> TrainConfig:
        """The TrainConfig the form describes (ValueError with a readable message when invalid)."""
        recipe = self.recipe_box.currentData()
        data = [f.text() for f in (self.folder_a, self.folder_b)[: len(RECIPES[recipe].folders)] if f.text()]
        try:
            options = json.loads(self.options.text() or "{}")
        except ValueError as e:
            raise ValueError(f"Options must be JSON, e.g. {{\"ngf\": 32}} ({e})") from None
        if not isinstance(options, dict):
            raise ValueError("Options must be a JSON object, e.g. {\"ngf\": 32}")
        return TrainConfig(recipe=recipe, out=self.out.text(), data=data, steps=self.steps.value(),
                           batch=self.batch.value(), device=self.device_name(), sample_every=self.sample_every.value(),
                           checkpoint_every=self.checkpoint_every.value(), eval_every=self.eval_every.value(),
                           eval_count=self.eval_count.value(), log_every=1, options=options)  # fmt: skip

    def _recipe_changed(self) -> None:
        recipe = self.recipe_box.currentData()
        info = RECIPES[recipe]
        self.recipe_hint.setText(info.summary)
        self.form.labelForField(self.folder_a).setText(info.folders[0] + ":")
        self.folder_b.setVisible(len(info.folders) == 2)
        self.form.labelForField(self.folder_b).setVisible(len(info.folders) == 2)
        self._update_state()

    def _update_state(self) -> None:
        running = self.job is not None
        recipe = self.recipe_box.currentData()
        info = RECIPES[recipe]
        missing = [c for f, c in zip((self.folder_a, self.folder_b), info.folders[: info.required]) if not f.text()]
        ready = not missing and bool(self.out.text())
        self.start_button.setEnabled(not running and ready)
        self.start_button.setToolTip("" if ready else "Fill in: " + ", ".join(missing + ([] if self.out.text() else ["run folder"])))
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        for w in (self.recipe_box, self.folder_a, self.folder_b, self.out, self.steps, self.batch, self.options,
                  self.resume, self.sample_every, self.checkpoint_every, self.eval_every, self.eval_count):
            w.setEnabled(not running)
        if not running and self.last_event is None:
            if not ready:
                self.stats.setText("To start, fill in: " + ", ".join(missing + ([] if self.out.text() else ["run folder"])))
            elif self.stats.text().startswith("To start"):
                self.stats.setText("Ready to start.")

    # -------------------------------------------------------------------------------- run
    def start(self) -> Job | None:
        """Start (or resume) the run on the train lane."""
        try:
            cfg = self.config()
        except ValueError as e:
            self.error.emit("Training options", str(e))
            return None
        resume = self.resume.isChecked()
        self.plot.clear()
        self.health.clear()
        self.last_event = None
        self.stats.setText("Starting…")

        def work(task: JobTask):
            def events():
                if resume:  # the curves so far (read here, off the GUI thread)
                    yield past_events(cfg.out)
                yield from train(cfg, task, resume=resume)
            return events()

        self.job = self.lane.submit(Job(work, key="train", label=f"Training {RECIPES[cfg.recipe].label.split(' (')[0]}", grad=True,
                                        on_preview=self._event, on_result=lambda _r: self._end("done"),
                                        on_cancelled=lambda: self._end("cancelled"),
                                        on_error=self._failed))  # fmt: skip
        self._update_state()
        return self.job

    def _event(self, ev: TrainEvent | list[TrainEvent]) -> None:
        if isinstance(ev, list):  # a resumed run's earlier steps
            for e in ev:
                self.plot.add(e.step, e.losses)
                self.health.add(e)
            return
        self.last_event = ev
        self.plot.add(ev.step, ev.losses)
        self.health.add(ev)
        if ev.sample is not None:
            self.sample.set_image(ev.sample, f"Samples at step {ev.step}")
        paused = " · paused" if self.pause_button.isChecked() else ""
        self.stats.setText(f"Step {ev.step}/{ev.steps} · {ev.images_per_s:.2f} images/s · ETA {_fmt_eta(ev.eta_s)}"
                           + (f" · checkpoint at {ev.step}" if ev.checkpoint else "") + paused)  # fmt: skip

    def _pause(self, on: bool) -> None:
        if self.job is not None:
            self.job.token.set_paused(on)
            self.pause_button.setText("Resume" if on else "Pause")
            if self.last_event is not None:
                self._event(self.last_event)

    def stop(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.stats.setText(self.stats.text() + " · stopping…")

    def _failed(self, exc: BaseException) -> None:
        self.error.emit("Training", str(exc))
        self._end("error")

    def _end(self, how: str) -> None:
        self.job = None
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(False)
        self.pause_button.setText("Pause")
        self.pause_button.blockSignals(False)
        ev = self.last_event
        saved = RunDir(self.out.text()).latest_step() if self.out.text() else None
        where = f" Model: {self.out.text()}/model.safetensors" if saved is not None else ""
        text = {"done": "Finished.", "cancelled": f"Stopped; checkpoint at step {saved} ('Continue the run' is ticked: "
                "Start resumes from it)." if saved is not None else "Stopped before the first checkpoint.",
                "error": "Failed."}[how]  # fmt: skip
        self.stats.setText((f"Step {ev.step}/{ev.steps}. " if ev else "") + text + where)
        if how == "cancelled":
            self.resume.setChecked(saved is not None)
        self._update_state()
        self.finished.emit(how)

    def state(self) -> dict[str, Any]:
        return {"running": self.job is not None, "step": self.last_event.step if self.last_event else 0}
