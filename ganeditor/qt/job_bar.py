"""Status-bar progress for a lane: what runs, how far, and a Cancel button."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget

from ganeditor.core.progress import ProgressEvent
from ganeditor.qt.jobs import Job, Lane


class JobBar(QWidget):
    """Shows the lane's running job (hidden for quick previews and when idle)."""

    def __init__(self, lane: Lane, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lane = lane
        self.job: Job | None = None
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setShortcut("Esc")
        self.cancel_button.setToolTip("Stop this job (inversion keeps its best result so far)")
        self.cancel_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.label.setMinimumWidth(160)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        lay.addWidget(self.cancel_button)
        self.cancel_button.clicked.connect(self.cancel)
        lane.job_started.connect(self._started)
        lane.job_progress.connect(self._progress)
        lane.job_finished.connect(self._finished)
        self.setVisible(False)

    def cancel(self) -> None:
        """Ask the job to stop; says "Cancelling…" at once (the work stops at its next check)."""
        if self.job is not None and self.job.cancellable:
            self.job.cancel()
            self.label.setText(f"Cancelling {self.job.label or 'the job'}…")
            self.bar.setRange(0, 0)
            self.cancel_button.setEnabled(False)
            self.label.repaint()  # shown now, not after the next event-loop turn

    def _started(self, job: Job) -> None:
        if job.key == "preview":
            return
        self.job = job
        self.label.setText(job.label or "Working…")
        self.bar.setRange(0, 0)  # busy until the first report
        self.cancel_button.setEnabled(True)
        self.cancel_button.setVisible(job.cancellable)  # a button that could not stop anything is not offered
        self.setVisible(True)

    def _progress(self, job: Job, ev: ProgressEvent) -> None:
        if job is not self.job:
            return
        frac = ev.fraction
        if frac is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(frac * 1000))
            self.bar.setFormat(f"{frac * 100:.0f} %")
        if ev.message and not job.cancelled:
            self.label.setText(f"{job.label}: {ev.message}" if job.label else ev.message)

    def _finished(self, job: Job) -> None:
        if job is self.job:
            self.job = None
            self.setVisible(False)
