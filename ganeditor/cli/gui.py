"""``ganeditor gui`` (also ``ganeditor`` alone): open the app."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the app (the default without a command)")
    p.add_argument("image", nargs="?", help="photo to open")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganeditor.qt.app import run_app  # Qt is imported only for the GUI

    return run_app(args.image)
