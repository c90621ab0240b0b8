"""The one home of the read-only files that come with the app: ``resources/`` (icons, style sheets,
sample photos) and the demo ``models/``, found the same way in a source checkout and in the frozen bundle.

``app_dir()`` is the folder holding both: the repository root of a source checkout (beside the
``ganeditor`` package), or the PyInstaller one-folder bundle's data folder (``sys._MEIPASS``).
``$GANEDITOR_RESOURCES`` overrides the resources folder.  Nothing is ever written there (per-user
folders: ``core.paths``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")


def app_dir() -> Path:
    """The folder of the app's read-only files (frozen bundle or source checkout)."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parents[2]


def resources_dir() -> Path:
    """The folder holding the app's resources (env override, frozen bundle or source checkout)."""
    env = os.environ.get("GANEDITOR_RESOURCES")
    if env:
        return Path(env).expanduser()
    return app_dir() / "resources"


def bundled_models_dir() -> Path:
    """The demo ``models/`` folder shipped with the app."""
    return app_dir() / "models"


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
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in SAMPLE_SUFFIXES) if folder.is_dir() else []
