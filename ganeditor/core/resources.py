"""The one home of read-only app resources (icons, style sheets, demo photos): ``resource(name)``.

In a source checkout they live in ``resources/`` beside the package; in a PyInstaller one-folder
build in ``<bundle>/resources`` (``sys._MEIPASS``).  ``$GANEDITOR_RESOURCES`` overrides both.
Nothing is ever written there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    """The folder holding the app's resources (env override, frozen bundle or source checkout)."""
    env = os.environ.get("GANEDITOR_RESOURCES")
    if env:
        return Path(env).expanduser()
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def resource(name: str) -> Path:
    """Path of resource ``name`` (e.g. 'icons/open.svg'); FileNotFoundError naming it when absent."""
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"resource names are relative paths inside the resources folder, got {name!r}")
    path = resources_dir() / rel
    if not path.exists():
        raise FileNotFoundError(f"resource {name!r} not found in {resources_dir()}")
    return path


def sample_photos() -> list[Path]:
    """The sample photos shipped in ``resources/samples`` (sorted; empty if there are none)."""
    folder = resources_dir() / "samples"
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if folder.is_dir() else []
