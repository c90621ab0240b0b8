"""The ``ganeditor`` command: subcommands for batch work; no arguments opens the GUI.

Each subcommand is a module with ``add_parser(subparsers)`` and ``run(args) -> int``.
Errors the user can fix print one line on stderr and exit with status 2 (``--debug`` shows the
traceback).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import signal
import sys
import threading
import traceback
from typing import NoReturn

from ganeditor import __version__
from ganeditor.core.errors import Cancelled, GanEditorError

# The window's process, set before torch loads OpenMP (which reads it once): threads waiting for work
# sleep instead of spinning, so the GUI thread gets a core when the workers' threads pause, and a busy
# machine is not burnt by spinning (bench/bench_gui_latency.py; measured in RESULTS.md).
WINDOW_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}

# Explicit list (no folder scanning: frozen builds must see every command).
COMMANDS = [
    "ganeditor.cli.info",
    "ganeditor.cli.generate",
    "ganeditor.cli.convert",
    "ganeditor.cli.train",
    "ganeditor.cli.translate",
    "ganeditor.cli.upscale",
    "ganeditor.cli.restore",
    "ganeditor.cli.invert",
    "ganeditor.cli.directions",
    "ganeditor.cli.edit",
    "ganeditor.cli.gui",
    "ganeditor.cli.desktop",
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand, or with just the command ``only`` (its module alone is
    imported: the others pull in what they need, torchvision and torch._dynamo among them, ~1.9 s of CPU)."""
    parser = argparse.ArgumentParser(
        prog="ganeditor",
        description="Edit photos with GANs. Without a command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"ganeditor {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only is None or name.rsplit(".", 1)[1] == only:
            importlib.import_module(name).add_parser(sub)
    return parser


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return " ".join(text.split())


def _terminate(signum: int, frame: object) -> None:
    from ganeditor.cli.common import Terminated  # deferred: it imports torch (see main)

    raise Terminated


def command_of(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names (the first word that is not an option: the top level takes no
    option values), None when it names none."""
    words = [a for a in argv if not a.startswith("-")]
    return words[0] if words and words[0] in {c.rsplit(".", 1)[1] for c in COMMANDS} else None


def opens_window(argv: list[str]) -> bool:
    """Whether ``argv`` opens the window: no command, ``gui``, or a photo or project to open."""
    return command_of(argv) in (None, "gui")


def window_environment() -> None:
    """``WINDOW_ENVIRONMENT`` where the user has not set those variables (before torch is imported)."""
    for k, v in WINDOW_ENVIRONMENT.items():
        os.environ.setdefault(k, v)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ganeditor`` console script.  Called without ``argv`` (the process's own
    command line), a command that was stopped (Ctrl-C, SIGTERM) ends the process itself (``_leave``)."""
    own = argv is None and threading.current_thread() is threading.main_thread()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv == ["--version"]:  # answered without building the commands (__main__.py: even before torch loads)
        print(f"ganeditor {__version__}")
        return 0
    window = opens_window(argv)
    if window:
        window_environment()  # before the commands' modules import torch
    old_int = signal.signal(signal.SIGINT, signal.SIG_DFL) if own and not window else None
    # ^ Ctrl-C while torch loads (seconds inside C code, where Python handlers wait): nothing is written yet
    only = command_of(argv)
    if only is not None and {"-h", "--help"} & set(argv[: argv.index(only)]):
        only = None  # `ganeditor --help translate`: the top-level help lists every command
    parser = build_parser(only)
    args = parser.parse_args(argv or ["gui"])
    if args.command is None:
        args = parser.parse_args(["gui", *argv])
    if old_int is not None:
        signal.signal(signal.SIGINT, old_int)
    old_term = None
    if args.command != "gui" and threading.current_thread() is threading.main_thread():
        # SIGTERM unwinds like Ctrl-C: temp files are removed, the exit is clean (the window has its own)
        old_term = signal.signal(signal.SIGTERM, _terminate)
    try:
        status = _run(args)
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    if own and status in (130, 143):
        _leave(status)
    return status


def _leave(status: int) -> NoReturn:
    """End a stopped command's process now: exit handlers run (temporary folders) and output is
    flushed, but the interpreter is not torn down -- finalising torch's modules and the models took
    ~2.4 s after a cancelled restore, longer than the work took to stop (bench_restore_cli.py --cancel).
    Everything the command wrote or removed is already done when ``_run`` returns."""
    atexit._run_exitfuncs()  # what a normal exit runs first (tempfile's finalizers, logging)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def _run(args: argparse.Namespace) -> int:
    from ganeditor.cli.common import SIGNALS_SEEN, Terminated  # deferred: it imports torch (see main)

    try:
        return int(args.func(args) or 0)
    except Terminated:
        print("ganeditor: terminated (SIGTERM); nothing partial was left behind", file=sys.stderr)
        return 143
    except GanEditorError as e:
        if args.debug:
            traceback.print_exc()
        print(f"ganeditor: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Cancelled:
        if signal.SIGTERM in SIGNALS_SEEN:
            print("ganeditor: stopped by SIGTERM", file=sys.stderr)
            return 143
        print("ganeditor: cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ganeditor info X | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("ganeditor: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, RuntimeError) as e:
        if args.debug:
            traceback.print_exc()
        where = getattr(e, "filename", None)
        prefix = f"{where}: " if where and str(where) not in str(e) else ""
        print(f"ganeditor: error: {prefix}{_one_line(e)}", file=sys.stderr)
        return 2
