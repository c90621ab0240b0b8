"""The one home of the per-user folders GAN Editor writes to: data, cache and configuration.

Each is the platform's folder for the app (``platformdirs``: on Linux ``~/.local/share/ganeditor``,
``~/.cache/ganeditor``, ``~/.config/ganeditor``) unless an environment variable names another one:
``GANEDITOR_DATA``, ``GANEDITOR_CACHE``, ``GANEDITOR_CONFIG``.  The app never writes anywhere else on
its own (read-only app files, where it is installed, are found by ``core.resources``); folders are
created by whoever writes into them.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "ganeditor"


def _folder(env: str, default: str) -> Path:
    value = os.environ.get(env, "").strip()
    return Path(value).expanduser() if value else Path(default)


def user_data_dir() -> Path:
    """Models the user adds, autosaves, recovery files: ``$GANEDITOR_DATA`` or the platform data folder."""
    return _folder("GANEDITOR_DATA", platformdirs.user_data_dir(APP, appauthor=False))


def user_cache_dir() -> Path:
    """What can be made again (gathered photos, downloaded wheels): ``$GANEDITOR_CACHE`` or the platform cache."""
    return _folder("GANEDITOR_CACHE", platformdirs.user_cache_dir(APP, appauthor=False))


def user_config_dir() -> Path:
    """Settings: ``$GANEDITOR_CONFIG`` or the platform configuration folder."""
    return _folder("GANEDITOR_CONFIG", platformdirs.user_config_dir(APP, appauthor=False))


def settings_file() -> Path:
    """The settings file of the window (INI; the same place Qt's own default uses on Linux)."""
    return user_config_dir() / "ganeditor.conf"
