"""Spans of code that a Ctrl-C or SIGTERM must not cut in half.

Python runs a signal's handler between any two bytecodes, so the ``KeyboardInterrupt`` it raises
can land inside a library's own Python callbacks, where it is lost or turned into another error:
torch's mode stack (``with torch.device("meta")``) interrupted while it pushes or pops stays on
``meta``, and safetensors' ``get_tensor`` interrupted reports "could not determine the shape of
object type 'torch.storage.UntypedStorage'" -- a Ctrl-C while a model loads ended in exit 2 and a
false "cannot read" instead of exit 130.

``signals_held`` holds SIGINT/SIGTERM for a span (a model load) and delivers them where it is
safe: at ``safe_point()`` calls in our own code (between tensors) and when the span ends.  A second
signal while one is held is delivered at once: a user who presses Ctrl-C twice is not kept waiting.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator

HELD = (signal.SIGINT, signal.SIGTERM)


def _deliver(handler: Callable | int | None, signum: int, frame: object) -> None:
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


class _Hold:
    """The handler in place while a span runs: remembers the first signal, passes on any other."""

    def __init__(self) -> None:
        self.old: dict[int, Callable | int | None] = {}
        self.pending: tuple[int, object] | None = None
        self.holding = True

    def __call__(self, signum: int, frame: object) -> None:
        if self.holding and self.pending is None:
            self.pending = (signum, frame)
        else:  # a second signal, or the span has ended and this handler is not yet replaced
            self.holding, self.pending = False, None  # the held one is this one's twin: delivered once
            _deliver(self.old[signum], signum, frame)

    def release(self) -> None:
        """Deliver the held signal now (to the handler that was in place before the span)."""
        if self.pending is not None:
            signum, frame = self.pending
            self.pending = None
            _deliver(self.old[signum], signum, frame)


_current: list[_Hold] = []  # the innermost span on the main thread


def safe_point() -> None:
    """A place in our own code where a held Ctrl-C may end the work (call it between library calls)."""
    if _current and threading.current_thread() is threading.main_thread():
        for hold in reversed(_current):  # an inner span's signal goes to the outer span's handler
            hold.release()


@contextlib.contextmanager
def signals_held(signums: tuple[int, ...] = HELD) -> Iterator[None]:
    """Hold ``signums`` while the block runs (main thread only: elsewhere Python runs no handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hold = _Hold()
    _current.append(hold)
    try:
        for s in signums:
            if signal.getsignal(s) is not None:  # None: a handler not set from Python, which could not be put back
                hold.old[s] = signal.signal(s, hold)
        yield
    finally:
        hold.holding = False
        _current.remove(hold)
        for s, h in hold.old.items():
            signal.signal(s, h)
        hold.release()
