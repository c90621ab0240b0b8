"""A run's training clock: the ``time`` of metrics.jsonl and what images/s and the ETA are computed from.

``elapsed`` is the run's seconds of training: it goes on from the checkpoint's when a run resumes (the
time between a stop and its resume is not training) and leaves out the time spent paused.  Images/s and
the ETA use this session's pace only (``session_s`` over the steps run since the start or resume), so a
run resumed on other hardware, or after its first slow step, reports the speed it trains at now.
"""

from __future__ import annotations

import time
from typing import Any

from ganeditor.core.progress import CancelToken


def start_elapsed(state: dict[str, Any] | None, records: list[dict[str, Any]], step: int) -> float:
    """The training seconds of the checkpoint a run resumes from: stored in it (``elapsed``); for
    checkpoints written before it was, the ``time`` of the last metrics record at or before its step;
    else 0."""
    if state is None:
        return 0.0
    if isinstance(state.get("elapsed"), (int, float)):
        return float(state["elapsed"])
    times = [r["time"] for r in records if isinstance(r.get("time"), (int, float)) and int(r.get("step", 0)) <= step]
    return float(times[-1]) if times else 0.0


class RunClock:
    """Seconds of training from ``start_step`` on, continuing ``elapsed`` from ``start_elapsed``."""

    def __init__(self, token: CancelToken, start_step: int, start_elapsed: float = 0.0) -> None:
        self.token, self.start_step, self.start_elapsed = token, start_step, start_elapsed
        self._t0, self._paused0 = time.monotonic(), token.paused_s()
        self._at = {start_step: start_elapsed}  # the run's elapsed when each step since the last save ended
        self.session_s = 0.0  # seconds of training in this session, at the last tick

    def tick(self, step: int) -> float:
        """Step ``step`` just ended: the run's elapsed seconds at that moment."""
        self.session_s = time.monotonic() - self._t0 - (self.token.paused_s() - self._paused0)
        self._at[step] = self.start_elapsed + self.session_s
        return self._at[step]

    def at(self, step: int) -> float:
        """The run's elapsed seconds when ``step`` ended (for its checkpoint: a stop may save an earlier one)."""
        return self._at[step]

    def saved(self, step: int) -> None:
        """A checkpoint of ``step`` was written: older steps are no longer asked for."""
        self._at = {s: e for s, e in self._at.items() if s >= step}

    def pace(self, step: int, images_per_step: int, steps: int) -> tuple[float, float]:
        """Images per second and the seconds left to ``steps``, at this session's pace."""
        done = step - self.start_step
        return images_per_step * done / max(self.session_s, 1e-9), (steps - step) * self.session_s / max(done, 1)
