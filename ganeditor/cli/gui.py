"""``ganeditor gui [PHOTO|PROJECT]`` (also ``ganeditor`` alone): open the app.

``--screenshot PATH`` renders the real window offscreen once the models have loaded, writes a PNG
and exits (``--panel`` brings a panel to the front, ``--size`` sets the window size).
"""

from __future__ import annotations

import argparse


def parse_size(text: str) -> tuple[int, int]:
    """'1280x800' -> (1280, 800)."""
    w, sep, h = text.lower().partition("x")
    try:
        if not sep:
            raise ValueError
        size = int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size: expected WIDTHxHEIGHT, e.g. 1280x800, got {text!r}") from None
    if min(size) < 200 or max(size) > 8000:
        raise argparse.ArgumentTypeError("--size: each side must be within 200-8000 pixels")
    return size


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the app (the default without a command)")
    p.add_argument("image", nargs="?", metavar="PHOTO|PROJECT", help="photo or .ganedit project to open")
    p.add_argument("--screenshot", metavar="PATH", default=None,
                   help="render the window offscreen after the models load, write it to PATH (PNG) and exit")
    p.add_argument("--panel", default=None, help="with --screenshot: the panel to show (models, portrait, scene, train, history ...)")
    p.add_argument("--size", type=parse_size, default=None, metavar="WxH", help="with --screenshot: window size (default 1280x800)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.screenshot:
        from ganeditor.qt.app import screenshot  # Qt is imported only for the GUI

        return screenshot(args.screenshot, args.image, panel=args.panel, size=args.size or (1280, 800))
    from ganeditor.qt.app import run_app  # Qt is imported only for the GUI

    return run_app(args.image)
