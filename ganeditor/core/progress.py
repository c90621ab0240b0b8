"""Progress reporting and cooperative cancellation for long work, without Qt.

Long work is a plain function taking a ``Task``.  It calls ``task.report(...)`` now and then,
which also raises ``Cancelled`` once cancellation was requested.  The CLI adapts a Task to a
terminal progress bar, the Qt layer to signals.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ganeditor.core.errors import Cancelled


@dataclass
class ProgressEvent:
    """One progress report: ``done`` out of ``total`` units (total None when unknown)."""

    done: float
    total: float | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(1.0, self.done / self.total)


class CancelToken:
    """A thread-safe flag that long work polls."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._paused = threading.Event()
        self._pause_lock = threading.Lock()
        self._paused_since: float | None = None  # time.monotonic() when the current pause began
        self._paused_before = 0.0  # seconds spent in earlier pauses
        self.cancelled_at: float | None = None  # time.monotonic() of the first cancel()

    def cancel(self) -> None:
        if self.cancelled_at is None:
            self.cancelled_at = time.monotonic()
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def set_paused(self, paused: bool) -> None:
        """Ask work that supports pausing (training) to wait; cancelling still works while paused."""
        with self._pause_lock:
            if paused and self._paused_since is None:
                self._paused_since = time.monotonic()
            elif not paused and self._paused_since is not None:
                self._paused_before += time.monotonic() - self._paused_since
                self._paused_since = None
            if paused:
                self._paused.set()
            else:
                self._paused.clear()

    def paused_s(self) -> float:
        """Seconds spent paused so far, the current pause included (work subtracts them from its pace)."""
        with self._pause_lock:
            now = 0.0 if self._paused_since is None else time.monotonic() - self._paused_since
            return self._paused_before + now

    @property
    def paused(self) -> bool:
        return self._paused.is_set()


class Task:
    """What long work receives: a progress sink plus a cancel token.

    ``on_progress`` is called on the worker's thread; keep it cheap (it is throttled to
    ``min_interval`` seconds unless the report is final or carries extra data).
    """

    def __init__(
        self,
        on_progress: Callable[[ProgressEvent], None] | None = None,
        cancel: CancelToken | None = None,
        min_interval: float = 0.05,
    ) -> None:
        self.on_progress = on_progress
        self.cancel_token = cancel or CancelToken()
        self.min_interval = min_interval
        self._last = 0.0

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.cancelled

    def check(self) -> None:
        """Raise ``Cancelled`` if cancellation was requested."""
        if self.cancel_token.cancelled:
            raise Cancelled()

    def wait_while_paused(self, poll: float = 0.1) -> None:
        """Block while paused (polling for cancellation), for work with safe pause points."""
        while self.cancel_token.paused:
            self.check()
            time.sleep(poll)
        self.check()

    def report(self, done: float, total: float | None = None, message: str = "", **extra: Any) -> None:
        """Report progress, then raise ``Cancelled`` if cancellation was requested."""
        self.check()
        if self.on_progress is None:
            return
        now = time.monotonic()
        final = total is not None and done >= total
        if extra or final or now - self._last >= self.min_interval:
            self._last = now
            self.on_progress(ProgressEvent(done, total, message, extra))

    def sub(self, start: float, span: float, total: float) -> "Task":
        """A Task whose reports of 0..``span`` map onto ``start``..``start+span`` of ``total``."""
        parent = self

        def forward(ev: ProgressEvent) -> None:
            frac = ev.fraction if ev.fraction is not None else 0.0
            if parent.on_progress is not None:
                parent.on_progress(ProgressEvent(start + frac * span, total, ev.message, ev.extra))

        return Task(forward if self.on_progress else None, self.cancel_token, self.min_interval)


def null_task() -> Task:
    """A Task that reports nowhere and is never cancelled."""
    return Task()
