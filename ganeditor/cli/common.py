"""Helpers shared by subcommands: option parsing and a terminal progress bar."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Iterator

from tqdm import tqdm

from ganeditor.core.device import DEVICE_CHOICES
from ganeditor.core.files import refuse_overwrite
from ganeditor.core.progress import ProgressEvent, Task


def parse_range(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7] (NVlabs num_range syntax)."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            if sep and lo:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid range {text!r}: expected e.g. 0-7 or 0,3,5") from None
    if not out:
        raise argparse.ArgumentTypeError("empty range")
    return out


def parse_vec2(text: str) -> tuple[float, float]:
    """'0.1,-0.3' -> (0.1, -0.3)."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected two numbers 'X,Y'") from None


SIGNALS_SEEN: set[int] = set()  # signals that cancelled work (SIGTERM makes the exit status 143)


class Terminated(KeyboardInterrupt):
    """Raised on SIGTERM: unwinds like Ctrl-C (atomic writes remove their temp files), exit 143."""


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="compute device (default: auto)")


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="allow an output to replace one of the input files")


def guard_outputs(inputs: list, outputs: list, overwrite: bool) -> None:
    """Refuse (one line, exit 2) when an output path names an input file, unless ``overwrite``."""
    for dst in outputs:
        for src in inputs:
            if src is not None:
                refuse_overwrite(src, dst, overwrite)


@contextlib.contextmanager
def stop_on_signals(task: Task, what: str = "stopping after the current step") -> Iterator[Task]:
    """First Ctrl-C/SIGTERM cancels ``task`` (the work ends cleanly, e.g. training writes a checkpoint);
    a second Ctrl-C interrupts at once.  Only installed on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield task
        return

    def handler(signum: int, frame: object) -> None:
        SIGNALS_SEEN.add(signum)
        if task.cancelled:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        task.cancel_token.cancel()
        print(f"\nganeditor: {what} (press Ctrl-C again to abort at once)", file=sys.stderr, flush=True)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield task
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def progress_task(description: str, total: float | None = None, graceful: str | None = None) -> Iterator[Task]:
    """A Task that draws a progress bar on a terminal (nothing when stderr is not a tty).

    ``graceful``: a message; when given, the first Ctrl-C/SIGTERM cancels the task instead of killing
    the process (see ``stop_on_signals``)."""
    with contextlib.ExitStack() as stack:
        task = stack.enter_context(_bar_task(description, total))
        if graceful:
            stack.enter_context(stop_on_signals(task, graceful))
        yield task


def show_progress(bar: tqdm, ev: ProgressEvent) -> None:
    """Move ``bar`` to ``ev``.  A report with ``initial=N`` (work resumed part-way, e.g. a training run)
    restarts the bar's clock at N, so that its rate and time left count only the work done from there."""
    if ev.total is not None and bar.total != ev.total:
        bar.total = ev.total
    if "initial" in ev.extra:
        bar.reset()
        bar.initial = ev.extra["initial"]
    bar.n = ev.done
    if ev.message:
        bar.set_postfix_str(ev.message, refresh=False)
    bar.refresh()


@contextlib.contextmanager
def _bar_task(description: str, total: float | None) -> Iterator[Task]:
    if not sys.stderr.isatty():
        yield Task()
        return
    bar = tqdm(total=total, desc=description, unit="", dynamic_ncols=True, leave=False, file=sys.stderr)
    try:
        yield Task(lambda ev: show_progress(bar, ev), min_interval=0.1)
    finally:
        bar.close()
