"""Provenance of the images GAN Editor writes: every output says, in the file, that a model made it.

An image written after a generative operation carries XMP with the IPTC Digital Source Type:
``trainedAlgorithmicMedia`` when a model made the whole picture (``generate``, a generator's
rendering of a latent), ``compositeWithTrainedAlgorithmicMedia`` when a model changed a photo
(paste-back of an edited face, translate, upscale, restore).  An edit of an image that was itself
wholly generated stays ``trainedAlgorithmicMedia``.  Beside it goes a short processing history in
``xmpMM:History``: one event per operation with the model's name and SHA-256, the key settings and
the app version.  The history can be turned off (``GANEDITOR_PROVENANCE_HISTORY=0``, or Preferences
in the window); the source type cannot.  When a signing certificate is configured
(``GANEDITOR_C2PA_CERT`` + ``GANEDITOR_C2PA_KEY``, PEM files), a C2PA manifest (Content
Credentials) is embedded as well (``core.c2pa_seal``).

How a writer uses it (one call each)::

    step = record("upscale", model_path, {"outscale": 4, "fast": False})
    write_image(out, pixels, ..., xmp=img.xmp, provenance=edited(step, source=input_path))
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ganeditor import APP_NAME, __version__
from ganeditor.core.c2pa_seal import sign_image
from ganeditor.core.errors import ProvenanceError
from ganeditor.core.xmp import HistoryEvent, source_type_of, stamp_xmp

GENERATED = "trainedAlgorithmicMedia"  # IPTC: made by a model trained on sampled content
COMPOSITE = "compositeWithTrainedAlgorithmicMedia"  # IPTC: a photo combined with such media
HISTORY_ENV, CERT_ENV, KEY_ENV = "GANEDITOR_PROVENANCE_HISTORY", "GANEDITOR_C2PA_CERT", "GANEDITOR_C2PA_KEY"


@dataclass(frozen=True)
class Step:
    """One generative operation: what ran, with which model (name + SHA-256) and settings."""

    operation: str  # 'generate', 'edit', 'paste-back', 'translate', 'upscale', 'restore', ...
    model: str  # the model's name (file stem)
    model_sha256: str  # hex digest of the model file
    settings: tuple[tuple[str, str], ...] = ()  # key settings, in the order given
    when: str = ""  # ISO 8601 UTC
    version: str = __version__  # app version that ran it

    def describe(self) -> str:
        """One line: 'upscale with srgan-x4 (SHA-256 3f2a...): outscale=4, fast=off'."""
        text = f"{self.operation} with {self.model} (SHA-256 {self.model_sha256})"
        return text + (": " + ", ".join(f"{k}={v}" for k, v in self.settings) if self.settings else "")


def _setting(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return " ".join(_setting(v) for v in value)
    return " ".join(str(value).split())


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_sha256(path: str | Path) -> str:
    """SHA-256 of a model file (cached while the file's size and time stamp stay the same)."""
    try:
        st = os.stat(path)
        return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    except OSError as e:
        raise ProvenanceError(f"cannot read the model to record its SHA-256 ({e.strerror or e})", path) from None


def record(operation: str, model: str | Path, settings: Mapping[str, Any] | None = None) -> Step:
    """A Step for ``operation`` run with the model file ``model``; None-valued settings are left out.
    Hashes the file (cached): call it where the work runs, not on a GUI thread."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    kept = tuple((str(k), _setting(v)) for k, v in (settings or {}).items() if v is not None)
    return Step(operation, Path(model).stem, model_sha256(model), kept, now.isoformat().replace("+00:00", "Z"))


@dataclass(frozen=True)
class ProvenanceOptions:
    """What goes into the files besides the source type: the history, and C2PA signing."""

    history: bool = True  # write the processing history (operations, models, settings)
    c2pa_cert: Path | None = None  # PEM certificate chain (signer first) for C2PA manifests
    c2pa_key: Path | None = None  # PEM private key of that certificate

    @classmethod
    def from_env(cls) -> ProvenanceOptions:
        """Options from ``GANEDITOR_PROVENANCE_HISTORY`` (0/off/false: no history) and the C2PA variables."""
        off = os.environ.get(HISTORY_ENV, "").strip().lower() in ("0", "off", "false", "no")
        cert, key = os.environ.get(CERT_ENV, "").strip(), os.environ.get(KEY_ENV, "").strip()
        if bool(cert) != bool(key):
            raise ProvenanceError(f"C2PA signing needs both {CERT_ENV} and {KEY_ENV} (only one is set)")
        return cls(not off, Path(cert).expanduser() if cert else None, Path(key).expanduser() if key else None)

    @property
    def signing(self) -> bool:
        return self.c2pa_cert is not None and self.c2pa_key is not None


@dataclass(frozen=True)
class Provenance:
    """What to write into an output: the steps, whether a model made the whole picture, the source photo."""

    steps: tuple[Step, ...]
    generated: bool  # True: the model made the whole picture; False: it changed the photo ``source``
    source: Path | None = None  # the edited photo (C2PA parent ingredient)
    options: ProvenanceOptions = field(default_factory=ProvenanceOptions.from_env)

    def source_type(self, kept_xmp: bytes | None = None) -> str:
        """The IPTC code for the output (an edit of a wholly generated input stays generated)."""
        if self.generated or source_type_of(kept_xmp) == GENERATED:
            return GENERATED
        return COMPOSITE

    def events(self) -> list[HistoryEvent]:
        """The XMP history events (empty when the history is turned off)."""
        if not self.options.history:
            return []
        return [HistoryEvent("created" if self.generated and i == 0 else "edited", s.when,
                             f"{APP_NAME} {s.version}", s.describe()) for i, s in enumerate(self.steps)]  # fmt: skip

    def xmp_packet(self, kept_xmp: bytes | None = None) -> bytes:
        """The XMP to write: the kept packet of the input (if any) with source type and history stamped in."""
        tool = f"{APP_NAME} {__version__}" if self.options.history else None
        return stamp_xmp(kept_xmp, self.source_type(kept_xmp), self.events(), tool)

    def seal(self, data: bytes, fmt: str, title: str, kept_xmp: bytes | None = None) -> bytes:
        """``data`` (an encoded image of Pillow format ``fmt``) with a C2PA manifest when signing is
        configured, else unchanged."""
        if not self.options.signing:
            return data
        assert self.options.c2pa_cert is not None and self.options.c2pa_key is not None
        return sign_image(data, fmt, title, cert=self.options.c2pa_cert, key=self.options.c2pa_key,
                          steps=self.steps, history=self.options.history, source=self.source,
                          source_type=self.source_type(kept_xmp))  # fmt: skip


def generated(*steps: Step, options: ProvenanceOptions | None = None) -> Provenance:
    """Provenance of a picture a model made whole (generate; a latent rendered by a generator)."""
    return Provenance(tuple(steps), True, None, options or ProvenanceOptions.from_env())


def edited(*steps: Step, source: str | Path | None = None, options: ProvenanceOptions | None = None) -> Provenance:
    """Provenance of a photo changed by models (paste-back, translate, upscale, restore), in order."""
    return Provenance(tuple(steps), False, None if source is None else Path(source),
                      options or ProvenanceOptions.from_env())  # fmt: skip



def step_record(step: Step) -> dict[str, Any]:
    """``step`` as plain JSON data (for undo steps and project files); ``Step(**...)`` reads it back."""
    return {"operation": step.operation, "model": step.model, "model_sha256": step.model_sha256,
            "settings": [list(kv) for kv in step.settings], "when": step.when, "version": step.version}  # fmt: skip


def from_operations(operations: list[dict[str, Any]], source: str | Path | None,
                    options: ProvenanceOptions | None = None, made_by_model: bool = False) -> Provenance | None:
    """Provenance of a photo edited in the window: the steps recorded (``step_record``) under the key
    ``provenance`` of each applied operation, oldest first; None when no model changed the photo.
    ``made_by_model``: the picture itself came from a generator (the Generate panel), not a camera."""
    steps = [Step(**{**d, "settings": tuple(tuple(kv) for kv in d["settings"])})
             for op in operations for d in op.get("provenance", ())]  # fmt: skip
    if made_by_model and steps:
        return generated(*steps, options=options)
    return edited(*steps, source=source, options=options) if steps else None
