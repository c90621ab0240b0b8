"""A typed wrapper around QSettings: every key is an enum member with its type and default.

INI-backed QSettings return strings ("512", "true") and single-item lists as plain strings, so
values are coerced to the default's type on the way out.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from ganeditor.core.paths import settings_file
from ganeditor.core.provenance import ProvenanceOptions

MAX_RECENT = 10


class Key(Enum):
    """Settings keys: (QSettings path, default). The default's type is the value's type."""

    DEVICE = ("compute/device", "auto")
    TILE_SIZE = ("compute/tile_size", 0)  # 0 = choose from free memory
    FAST_MODE = ("compute/fast_mode", False)
    VGG16_PATH = ("paths/vgg16_weights", "")
    MTCNN_DIR = ("paths/mtcnn_dir", "")
    RECENT_FILES = ("files/recent", [])
    LAST_DIR = ("files/last_dir", "")
    GENERATOR = ("models/generator", "")
    TRANSLATOR = ("models/translator", "")
    UPSCALER = ("models/upscaler", "")
    UNDO_MEMORY_MB = ("history/undo_memory_mb", 1024)  # image data the undo history may hold
    EMBED_PHOTO = ("files/embed_photo", True)  # project files carry the original photo (up to 64 MB)
    EXTRA_MODELS = ("models/extra", [])  # model files added from elsewhere (drop, Open model, training runs)
    WINDOW_GEOMETRY = ("window/geometry", b"")
    WINDOW_STATE = ("window/state", b"")
    TRAIN_FORM = ("train/form", "")  # the Train panel's last form (JSON: TrainPanel.form_state)
    SHOW_WELCOME = ("window/show_welcome", True)  # the first-run welcome (qt/welcome.py)
    PROVENANCE_HISTORY = ("provenance/history", True)  # processing history in saved images (core.provenance)
    C2PA_CERT = ("provenance/c2pa_cert", "")  # PEM certificate chain: sign saved images with C2PA
    C2PA_KEY = ("provenance/c2pa_key", "")  # its PEM private key

    @property
    def path(self) -> str:
        return self.value[0]

    @property
    def default(self) -> Any:
        return self.value[1]


def _coerce(raw: Any, default: Any) -> Any:
    """``raw`` as read from QSettings, converted to the type of ``default`` (default if impossible)."""
    if raw is None:
        return default
    try:
        if isinstance(default, bool):
            if isinstance(raw, str):
                return raw.strip().lower() in ("1", "true", "yes", "on")
            return bool(raw)
        if isinstance(default, int):
            return int(float(raw))
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, list):
            if isinstance(raw, str):
                return [raw] if raw else []
            return [str(x) for x in raw]
        if isinstance(default, bytes):
            return bytes(raw.data()) if isinstance(raw, QByteArray) else bytes(raw)
        return str(raw)
    except (TypeError, ValueError):
        return default


class Settings:
    """Typed access to the app's QSettings (pass one in for tests, e.g. an INI file in tmp)."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings(str(settings_file()), QSettings.Format.IniFormat)

    def get(self, key: Key) -> Any:
        """The value of ``key``, coerced to the type of its default."""
        return _coerce(self.q.value(key.path), key.default)

    def set(self, key: Key, value: Any) -> None:
        """Store ``value`` (after coercion, so a wrong type fails here, not at the next start)."""
        value = _coerce(value, key.default)
        self.q.setValue(key.path, QByteArray(value) if isinstance(value, bytes) else value)

    def add_recent(self, path: str) -> list[str]:
        """Put ``path`` first in the recent files list (deduplicated, at most MAX_RECENT)."""
        items = [p for p in self.get(Key.RECENT_FILES) if p != path]
        items = [path, *items][:MAX_RECENT]
        self.set(Key.RECENT_FILES, items)
        return items

    def provenance_options(self) -> ProvenanceOptions:
        """What saved images carry besides the AI source type: the history, and C2PA when both the
        certificate and its key are set."""
        cert, key = self.get(Key.C2PA_CERT).strip(), self.get(Key.C2PA_KEY).strip()
        signing = bool(cert and key)
        return ProvenanceOptions(self.get(Key.PROVENANCE_HISTORY), Path(cert).expanduser() if signing else None,
                                 Path(key).expanduser() if signing else None)  # fmt: skip

    def sync(self) -> None:
        self.q.sync()
