"""Latest-wins scheduling of slider previews on the device lane.

At most one render is in flight.  Requests made meanwhile collapse into the newest one, which is
rendered as soon as the lane is free.  Every request gets a stamp; a frame is shown only if its
stamp is newer than the last frame shown, so a stale frame can never replace a newer one.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from ganeditor.qt.jobs import Job, JobTask, Lane


class PreviewScheduler(QObject):
    """Coalesces preview requests; emits ``frame(payload, stamp)`` for frames newer than the last shown."""

    frame = Signal(object, int)
    failed = Signal(object)  # exception

    def __init__(self, lane: Lane, render: Callable[[Any, JobTask], Any], key: str = "preview",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.lane, self.render, self.key = lane, render, key
        self.stamp = 0  # newest stamp handed out
        self.shown_stamp = 0  # stamp of the frame on screen
        self.rendered = 0  # frames rendered
        self.dropped = 0  # frames dropped as stale
        self._pending: tuple[int, Any] | None = None
        self._inflight: Job | None = None
        lane.job_finished.connect(self._on_job_finished)

    def request(self, params: Any) -> int:
        """Ask for a frame of ``params``; returns its stamp."""
        self.stamp += 1
        self._pending = (self.stamp, params)
        self._pump()
        return self.stamp

    @property
    def idle(self) -> bool:
        return self._inflight is None and self._pending is None

    def reset(self) -> None:
        """Forget pending work and drop whatever is in flight (e.g. the generator changed)."""
        self._pending = None
        if self._inflight is not None:
            self._inflight.supersede()
        self.shown_stamp = self.stamp

    def accept(self, stamp: int, payload: Any) -> bool:
        """Show ``payload`` unless a newer frame is already on screen; True when shown."""
        if stamp <= self.shown_stamp:
            self.dropped += 1
            return False
        self.shown_stamp = stamp
        self.frame.emit(payload, stamp)
        return True

    def _pump(self) -> None:
        if self._inflight is not None or self._pending is None:
            return
        stamp, params = self._pending
        self._pending = None
        render = self.render

        def work(task: JobTask) -> tuple[int, Any]:
            return stamp, render(params, task)

        self._inflight = self.lane.submit(Job(work, key=self.key, label="preview",
                                              on_result=lambda r: self._on_result(r),
                                              on_error=lambda e: self.failed.emit(e)))  # fmt: skip

    def _on_result(self, result: tuple[int, Any]) -> None:
        self.rendered += 1
        self.accept(*result)

    def _on_job_finished(self, job: Job) -> None:
        if job is self._inflight:
            self._inflight = None
            self._pump()
