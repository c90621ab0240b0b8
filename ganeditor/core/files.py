"""Checks on the files a command is given: only regular files are read, outputs never replace inputs.

A FIFO, a character device or a socket named as a photo or a checkpoint would block a reader (or
stream forever); ``check_input_file`` refuses them before anything opens the path.  ``same_file``
tells whether an output path names an input (hard links and symlinks included), so commands can
refuse to overwrite the user's photo unless asked to.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ganeditor.core.errors import GanEditorError


def check_input_file(path: str | Path, error: type[GanEditorError] = GanEditorError,
                     expected: str = "a file") -> os.stat_result:
    """``path``'s stat if it is a regular file, else ``error`` naming the path and what was expected."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error("file not found", path) from None
    except OSError as e:
        raise error(f"cannot read ({e.strerror or e})", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"is a folder, expected {expected}", path)
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise error(f"is {kind}, expected {expected} (only regular files are read)", path)
    return st


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name the same file (through links too); a missing ``b`` is never ``a``."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


def refuse_overwrite(src: str | Path, dst: str | Path, overwrite: bool) -> None:
    """GanEditorError when ``dst`` would replace the input ``src`` and ``overwrite`` is not set."""
    if not overwrite and same_file(src, dst):
        raise GanEditorError("the output would replace the input; choose another output or add --overwrite", dst)
