"""Atomic file writes: the data goes to a temporary file in the target's folder, is flushed to disk,
then renamed over the target in one step, so the target is always either the old or the new file.

Where the system allows it (Linux, O_TMPFILE) the temporary file has no name until the data is
complete: a crash or SIGKILL mid-write leaves nothing in the user's folder.  Elsewhere it is a
hidden ``.NAME.<pid>.<random>.tmp`` beside the target, removed on any error, and swept at the next
write into that folder once the process that made it is gone.  Write errors name the target file
(``OSError.filename``), so "No space left on device" says where.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from pathlib import Path
from typing import IO, Iterator

_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_TEMP_RX = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
_SWEPT: set[str] = set()  # folders already swept by this process


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_stale_temps(folder: str | Path) -> list[Path]:
    """Remove temp files of atomic writes in ``folder`` whose process no longer runs; returns them."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            m = _TEMP_RX.match(entry.name)
            if m and entry.is_file(follow_symlinks=False) and not _pid_alive(int(m["pid"])):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _anonymous_temp(folder: Path) -> int | None:
    """An unnamed file in ``folder`` (Linux O_TMPFILE), or None where the file system has none."""
    if not _O_TMPFILE or not os.path.isdir("/proc/self/fd"):  # linking it needs /proc
        return None
    try:
        return os.open(folder, _O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)  # umask applies
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None  # no O_TMPFILE here: fall back to a named temp file
        raise


def _named_temp(path: Path) -> tuple[int, Path]:
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)  # umask applies
    return fd, tmp


def _publish(fd: int, tmp: Path | None, path: Path) -> None:
    """Give the finished file its name: rename the named temp, or link the anonymous one then rename."""
    if tmp is None:
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        dfd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY | os.O_CLOEXEC)
        try:  # a dir fd makes os.link use linkat(AT_SYMLINK_FOLLOW): the /proc link is followed
            os.link(f"/proc/self/fd/{fd}", tmp.name, dst_dir_fd=dfd, follow_symlinks=True)
        finally:
            os.close(dfd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _with_filename(e: OSError, path: Path) -> OSError:
    if e.filename is None and e.errno is not None:
        return type(e)(e.errno, e.strerror, str(path))
    return e


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file for ``path``; on success it replaces ``path``, on any error it vanishes."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if str(folder.resolve()) not in _SWEPT:
        _SWEPT.add(str(folder.resolve()))
        sweep_stale_temps(folder)
    try:
        fd = _anonymous_temp(folder)
        tmp = None
        if fd is None:
            fd, tmp = _named_temp(path)
    except OSError as e:
        raise _with_filename(e, path) from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            _publish(f.fileno(), tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, OSError):
            raise _with_filename(e, path) from None
        raise
    with contextlib.suppress(OSError):  # make the rename durable too
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
