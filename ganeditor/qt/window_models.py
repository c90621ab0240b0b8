"""The main window's model library handling: scanning on the I/O lane, adding checked files (drop,
File ▸ Open model, finished training runs), and keeping a working generator when another fails."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from ganeditor.pipelines.catalog import ROLES, check_model
from ganeditor.qt.jobs import Job
from ganeditor.qt.settings import Key

MODEL_FILTER = "Models (*.safetensors *.pkl *.pt *.pth *.param);;All files (*)"
ROLE_KEYS = {"generator": Key.GENERATOR, "translator": Key.TRANSLATOR, "upscaler": Key.UPSCALER}


class ModelActions:
    """Mixed into MainWindow (uses its models/portrait/scene/train panels, io lane and settings)."""

    def scan_models(self, prefer: dict[str, str] | None = None) -> None:
        """Re-read the model folders on the I/O lane, then refresh the Models panel."""
        extra = list(self.settings.get(Key.EXTRA_MODELS))
        self.io_lane.submit(Job(lambda task: self.models.scan(extra), key="scan", label="Scanning models",
                                on_result=lambda entries: self.models.set_entries(entries, prefer),
                                on_error=lambda e: self.show_error("Model library", str(e))))  # fmt: skip

    def add_model(self, path: str) -> None:
        """Check a model file (loaded on the I/O lane), add it to the library and choose it for its role;
        a broken or unknown file is refused with a message and changes nothing."""
        def added(entry) -> None:
            self.settings.set(Key.EXTRA_MODELS, [p for p in self.settings.get(Key.EXTRA_MODELS) if p != str(entry.path)]
                              + [str(entry.path)])  # fmt: skip
            self.models.add_entry(entry)
            role = "chosen as the " + entry.kind if entry.kind in ROLES else f"a {entry.kind}"
            self.statusBar().showMessage(f"Added {entry.name} to the model library ({role})", 8000)

        self.io_lane.submit(Job(lambda task: check_model(path), key=f"add:{path}", label=f"Checking {Path(path).name}",
                                on_result=added, on_error=lambda e: self.show_error("Cannot use this model", str(e))))  # fmt: skip

    def _training_finished(self, how: str) -> None:
        model = Path(self.train.out.text()) / "model.safetensors"
        if how == "done" and model.is_file():
            self.add_model(str(model))

    def _model_chosen(self, role: str, entry) -> None:
        self.settings.set(ROLE_KEYS[role], entry.name if entry else "")
        if role == "generator":
            current = self.portrait.generator
            if entry is None or current is None or entry.path != current.path:
                self.portrait.set_generator(entry, self.models.entries)
        else:
            self.scene.set_model(role, entry)

    def _generator_failed(self, entry, message: str) -> None:
        """A generator did not load: the one in use (if any) stays chosen, with its inversion and edits."""
        current = self.portrait.generator
        self.models.select("generator", current.name if current else "", quiet=True)
        if message:
            self.show_error(f"Cannot use {entry.name}", message)

    def _open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", MODEL_FILTER)
        if path:
            self.add_model(path)
