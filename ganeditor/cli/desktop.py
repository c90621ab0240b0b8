"""``ganeditor install-desktop [--prefix DIR] [--uninstall]``: put GAN Editor in the desktop's menu.

Copies the desktop entry, the AppStream metadata, the ``.ganedit`` MIME type and the hicolor icons
that come with the app (``share/`` of the bundle; in a source checkout ``packaging/linux/`` and icons
rendered from ``resources/icons/ganeditor.svg``) into ``DIR`` (default ``~/.local/share``, the XDG data
home), with ``Exec`` pointing at this installation, then refreshes the desktop, MIME and icon caches
when their tools exist.  Nothing is written inside the installation itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ganeditor.core.errors import GanEditorError
from ganeditor.core.resources import app_dir

APP_ID = "io.github.ganeditor.GanEditor"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("install-desktop", help="add GAN Editor to the desktop menu and file associations (Linux)")
    p.add_argument("--prefix", default=None, help="XDG data folder to install into (default: ~/.local/share)")
    p.add_argument("--uninstall", action="store_true", help="remove what install-desktop installed")
    p.set_defaults(func=run)


def launch_command() -> list[str]:
    """How the desktop starts this installation: the bundle's binary, or this Python with -m ganeditor."""
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "ganeditor"]


def share_files(work: Path) -> dict[str, Path]:
    """Relative destination (under the XDG data folder) -> source file, for everything to install."""
    bundled = app_dir() / "share"
    if bundled.is_dir():
        return {str(p.relative_to(bundled)): p for p in sorted(bundled.rglob("*")) if p.is_file()}
    linux = app_dir() / "packaging" / "linux"
    if not linux.is_dir():
        raise GanEditorError("this installation has no desktop files (expected share/ in the bundle)", app_dir())
    spec = importlib.util.spec_from_file_location("make_icons", linux / "make_icons.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    icons = mod.make_icons(work / "icons")
    files = {f"icons/{p.relative_to(work / 'icons')}": p for p in icons}
    files[f"applications/{APP_ID}.desktop"] = linux / f"{APP_ID}.desktop"
    files[f"metainfo/{APP_ID}.metainfo.xml"] = linux / f"{APP_ID}.metainfo.xml"
    files[f"mime/packages/{APP_ID}.xml"] = linux / f"{APP_ID}.mime.xml"
    return files


def _desktop_entry(text: str, command: list[str]) -> str:
    """The desktop entry with Exec/TryExec running ``command``."""
    quoted = " ".join(f'"{c}"' if " " in c else c for c in command)
    out = []
    for line in text.splitlines():
        if line.startswith("Exec="):
            line = f"Exec={quoted} gui %f"
        elif line.startswith("TryExec="):
            line = f"TryExec={command[0]}"
        out.append(line)
    return "\n".join(out) + "\n"


def _refresh(prefix: Path) -> None:
    for tool, args in (("update-desktop-database", ["-q", str(prefix / "applications")]),
                       ("update-mime-database", [str(prefix / "mime")]),
                       ("gtk-update-icon-cache", ["-q", "-t", "-f", str(prefix / "icons" / "hicolor")])):  # fmt: skip
        if shutil.which(tool):
            subprocess.run([tool, *args], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(args: argparse.Namespace) -> int:
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    prefix = Path(args.prefix or xdg).expanduser()
    with tempfile.TemporaryDirectory(prefix="ganeditor-desktop-") as tmp:
        files = share_files(Path(tmp))
        done = []
        for rel, src in files.items():
            dst = prefix / rel
            if args.uninstall:
                if dst.is_file():
                    dst.unlink()
                    done.append(dst)
                continue
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                if rel.startswith("applications/"):
                    dst.write_text(_desktop_entry(src.read_text(encoding="utf-8"), launch_command()), encoding="utf-8")
                else:
                    shutil.copyfile(src, dst)
            except OSError as e:
                raise GanEditorError(f"cannot install ({e.strerror or e})", dst) from None
            done.append(dst)
    _refresh(prefix)
    verb = "removed" if args.uninstall else "installed"
    print(f"{verb} {len(done)} file(s) in {prefix}" + ("" if args.uninstall else f" (runs {' '.join(launch_command())})"))
    return 0
