"""Run Task-taking work on QThreads: jobs, the worker thread, and lanes that serialise model use.

A ``Job`` wraps a plain function ``fn(task)`` (or a generator function: yielded values are
previews, the return value is the result).  The function gets a ``JobTask`` (a core ``Task`` with
``preview(payload)``).  Payloads crossing threads are numpy arrays and plain Python data — never
torch tensors (``check_payload``).  ``torch.inference_mode()`` (or grad mode for inversion and
training) is entered inside the worker thread, because grad mode is per thread.

A ``Lane`` runs one job at a time.  Submitting a job cancels and *supersedes* queued or running
jobs with the same key: a superseded job's callbacks are never called again (stale results never
arrive), checked on the GUI thread when each queued signal is delivered.  ``Job.cancel()`` (the
user's Cancel button) also stops the work, but keeps the job current, so work that returns the
best result so far on cancel (inversion) still delivers it.
"""

from __future__ import annotations

import itertools
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from PySide6.QtCore import QObject, QThread, Signal

from ganeditor.core.errors import Cancelled
from ganeditor.core.progress import CancelToken, ProgressEvent, Task

_ids = itertools.count(1)


def check_payload(obj: Any) -> Any:
    """Refuse torch tensors crossing to the GUI thread (convert to numpy in the worker)."""
    if isinstance(obj, torch.Tensor):
        raise TypeError("a torch tensor was sent to the GUI thread; send numpy arrays")
    if isinstance(obj, (list, tuple)):
        for x in obj:
            check_payload(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            check_payload(x)
    return obj


class JobTask(Task):
    """The Task a job's function receives; ``preview`` sends an intermediate result to the GUI."""

    def __init__(self, job: "Job", on_progress: Callable[[ProgressEvent], None], on_preview: Callable[[Any], None]):
        super().__init__(on_progress, job.token, min_interval=0.05)
        self._on_preview = on_preview

    def preview(self, payload: Any) -> None:
        """Send ``payload`` (numpy / plain data) to the job's ``on_preview`` on the GUI thread."""
        self.check()
        self.send(payload)

    def send(self, payload: Any) -> None:
        """Like ``preview`` without the cancel check (used to drain generators that end gracefully)."""
        self._on_preview(check_payload(payload))


@dataclass(eq=False)
class Job:
    """A unit of work for a lane, with GUI-thread callbacks (each optional)."""

    fn: Callable[[JobTask], Any]
    key: str = "job"  # a new job with the same key supersedes this one
    label: str = ""  # shown in the status bar
    grad: bool = False  # False: run under torch.inference_mode(); True: autograd on (inversion, training)
    cancellable: bool = True  # False: short housekeeping that never checks its token (no Cancel is offered)
    on_result: Callable[[Any], None] | None = None
    on_preview: Callable[[Any], None] | None = None
    on_progress: Callable[[ProgressEvent], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    on_cancelled: Callable[[], None] | None = None
    on_finished: Callable[[], None] | None = None  # after result, error or cancel (not when superseded)
    token: CancelToken = field(default_factory=CancelToken)
    id: int = field(default_factory=lambda: next(_ids))
    stale: bool = False  # superseded or shut down: callbacks are dropped
    state: str = "queued"  # queued | running | done

    def cancel(self) -> None:
        """Stop the work (cooperatively); its cancel/partial-result callbacks still arrive."""
        self.token.set_paused(False)
        self.token.cancel()

    def supersede(self) -> None:
        """Stop the work and drop everything it would still deliver."""
        self.stale = True
        self.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled


class _Bridge(QObject):
    """Lives on the GUI thread; the worker emits, Qt queues the calls to the GUI thread."""

    progress = Signal(object, object)  # job, ProgressEvent
    preview = Signal(object, object)  # job, payload
    result = Signal(object, object)  # job, result
    error = Signal(object, object)  # job, exception
    cancelled = Signal(object)  # job


class WorkerThread(QThread):
    """Runs one job's function; never touches widgets."""

    def __init__(self, job: Job, bridge: _Bridge) -> None:
        super().__init__()
        self.job, self.bridge = job, bridge

    def run(self) -> None:  # noqa: D102 - QThread entry point
        job, b = self.job, self.bridge
        task = JobTask(job, lambda ev: b.progress.emit(job, ev), lambda p: b.preview.emit(job, p))
        try:
            with torch.inference_mode(not job.grad):
                out = job.fn(task)
                if hasattr(out, "__next__"):  # a generator: yielded values are previews
                    try:
                        while True:
                            task.send(next(out))
                    except StopIteration as stop:
                        out = stop.value
            b.result.emit(job, check_payload(out))
        except Cancelled:
            b.cancelled.emit(job)
        except BaseException as e:  # noqa: BLE001 - reported to the GUI, never swallowed
            e.traceback_text = traceback.format_exc()  # type: ignore[attr-defined]
            b.error.emit(job, e)


class Lane(QObject):
    """Runs jobs one at a time, in submission order; a job supersedes earlier jobs of its key."""

    job_started = Signal(object)  # Job
    job_progress = Signal(object, object)  # Job, ProgressEvent
    job_finished = Signal(object)  # Job (also when superseded)
    idle = Signal()

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.current: Job | None = None
        self._thread: WorkerThread | None = None
        self._queue: list[Job] = []
        self._closed = False
        self._bridge = _Bridge(self)
        self._bridge.progress.connect(self._on_progress)
        self._bridge.preview.connect(self._on_preview)
        self._bridge.result.connect(self._on_result)
        self._bridge.error.connect(self._on_error)
        self._bridge.cancelled.connect(self._on_cancelled)

    # ------------------------------------------------------------------------------ public
    def submit(self, job: Job) -> Job:
        """Queue ``job``; queued or running jobs with the same key are superseded."""
        if self._closed:
            job.stale = True
            return job
        for old in [*self._queue, *([self.current] if self.current else [])]:
            if old.key == job.key:
                old.supersede()
        self._queue = [j for j in self._queue if not j.stale]
        self._queue.append(job)
        self._start_next()
        return job

    def busy(self, key: str | None = None) -> bool:
        """True while a (non-stale) job of ``key`` (any key when None) runs or waits."""
        jobs = [*self._queue, *([self.current] if self.current else [])]
        return any(not j.stale and (key is None or j.key == key) for j in jobs)

    def cancel(self, key: str | None = None) -> None:
        """User cancel of the running and queued jobs of ``key`` (all when None)."""
        for j in [*self._queue, *([self.current] if self.current else [])]:
            if key is None or j.key == key:
                j.cancel()

    def shutdown(self, timeout_ms: int | None = 15000) -> bool:
        """Supersede everything and join the worker thread (``None``: however long the work takes to
        reach its next cancel check); True when it stopped in time."""
        self._closed = True
        for j in [*self._queue, *([self.current] if self.current else [])]:
            j.supersede()
        self._queue.clear()
        t = self._thread
        if t is None:
            return True
        return t.wait() if timeout_ms is None else t.wait(timeout_ms)

    # ----------------------------------------------------------------------------- internal
    def _start_next(self) -> None:
        if self._thread is not None or not self._queue:
            return
        job = self._queue.pop(0)
        if job.cancelled:  # cancelled while queued
            self._deliver_cancel(job)
            self._start_next()
            return
        self.current, job.state = job, "running"
        self._thread = WorkerThread(job, self._bridge)
        self._thread.finished.connect(self._on_thread_finished)
        self.job_started.emit(job)
        self._thread.start()

    def _on_thread_finished(self) -> None:
        t, self._thread = self._thread, None
        job, self.current = self.current, None
        if t is not None:
            t.wait()
            t.deleteLater()
        if job is not None:
            job.state = "done"
            self.job_finished.emit(job)
        if self._closed:
            return
        self._start_next()
        if self._thread is None:
            self.idle.emit()

    def _live(self, job: Job) -> bool:
        return not job.stale and not self._closed

    def _on_progress(self, job: Job, ev: ProgressEvent) -> None:
        if self._live(job):
            self.job_progress.emit(job, ev)
            if job.on_progress:
                job.on_progress(ev)

    def _on_preview(self, job: Job, payload: Any) -> None:
        if self._live(job) and job.on_preview:
            job.on_preview(payload)

    def _finish(self, job: Job) -> None:
        if job.on_finished:
            job.on_finished()

    def _on_result(self, job: Job, result: Any) -> None:
        if self._live(job):
            if job.on_result:
                job.on_result(result)
            self._finish(job)

    def _on_error(self, job: Job, exc: BaseException) -> None:
        if self._live(job):
            if job.on_error:
                job.on_error(exc)
            self._finish(job)

    def _deliver_cancel(self, job: Job) -> None:
        if self._live(job):
            if job.on_cancelled:
                job.on_cancelled()
            self._finish(job)

    def _on_cancelled(self, job: Job) -> None:
        self._deliver_cancel(job)
