"""Work-arounds for bugs of the Qt binding, detected at import time (no-ops where absent).

PySide6 6.12.0: ``SignalInstance.emit()`` returns ``True`` without taking a reference, so every
emit from Python costs ``True`` one reference until CPython aborts ("bool_dealloc: deallocating
True or False").  ``emit(signal, *args)`` gives the reference back when this binding leaks it.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal()


def _emit_leaks_bool() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    leaked = sys.getrefcount(True) - before
    if leaked < 0:  # give back what the probe took
        for _ in range(-leaked):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    return leaked <= -8


EMIT_LEAKS_BOOL = _emit_leaks_bool()


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, compensating the binding's lost reference to the returned bool."""
    r = signal.emit(*args)
    if EMIT_LEAKS_BOOL and isinstance(r, bool):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(r))
