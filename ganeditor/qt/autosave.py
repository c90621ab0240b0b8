"""Autosave of the open document to the user data folder, and finding what a crashed session left.

Each running app writes ``autosave-<pid>.ganedit`` (a normal project file, written atomically on the
I/O lane) after every finished job and at most ``interval_s`` after an edit; a clean exit deletes it.
A file whose process no longer runs was left by a crash or ``kill -9``: the next start offers it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from ganeditor.core.paths import user_data_dir
from ganeditor.pipelines.project import Project, save_project
from ganeditor.qt.jobs import Job, Lane

NAME = re.compile(r"autosave-(\d+)\.ganedit$")


def autosave_dir() -> Path:
    """Where autosaves go: the user data folder's ``autosave`` (``core.paths``, ``$GANEDITOR_DATA``)."""
    return user_data_dir() / "autosave"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def orphans(folder: Path) -> list[Path]:
    """Autosaves left by sessions that are no longer running, newest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("autosave-*.ganedit") if (m := NAME.search(p.name)) and not _alive(int(m.group(1)))]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


class Autosaver(QObject):
    """Saves ``gather()`` to this session's autosave file when the document's revision moved on."""

    saved = Signal(str)  # path
    failed = Signal(str)  # one-line reason

    def __init__(self, folder: Path, lane: Lane, gather: Callable[[], tuple[int, Project] | None],
                 interval_s: float = 60.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.folder, self.lane, self.gather = folder, lane, gather
        self.path = folder / f"autosave-{os.getpid()}.ganedit"
        self.saved_revision = -1
        self.timer = QTimer(self, singleShot=True, interval=int(interval_s * 1000))
        self.timer.timeout.connect(self.save_now)
        self._warned = False

    def edited(self) -> None:
        """An edit happened: save within the interval (not at every edit)."""
        if not self.timer.isActive():
            self.timer.start()

    def save_now(self) -> None:
        """Save if there is unsaved work since the last autosave (the write runs on the I/O lane)."""
        got = self.gather()
        if got is None:
            return
        revision, project = got
        if revision == self.saved_revision:
            return
        path = self.path

        def write(task) -> str:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_project(path, project)
            return str(path)

        def done(p: str) -> None:
            self.saved_revision = revision
            self._warned = False
            self.saved.emit(p)

        def fail(e: BaseException) -> None:
            if not self._warned:  # say it once, not every minute
                self._warned = True
                self.failed.emit(str(e))

        self.lane.submit(Job(write, key="autosave", label="Autosaving", on_result=done, on_error=fail))

    def discard(self) -> None:
        """Delete this session's autosave (clean exit, or the work was saved as a project)."""
        self.timer.stop()
        try:
            self.path.unlink()
        except OSError:
            pass
