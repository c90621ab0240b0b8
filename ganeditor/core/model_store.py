"""Where models live and how a model name becomes a path.

Search order for a name: ``$GANEDITOR_MODELS`` (os.pathsep-separated folders), the user's data
folder (``core.paths.user_data_dir()/models``), then the models shipped beside the application
(``models/`` of a source checkout or of a frozen build: ``core.resources.bundled_models_dir``).
A name ``foo`` matches ``foo.safetensors`` or ``foo/model.safetensors``.  An existing path is always
used as it is.  Each shipped demo model has a card ``models/<name>.md`` beside its weights;
``missing_demo_models`` lists the cards whose weights are absent (a broken install).
"""

from __future__ import annotations

import os
from pathlib import Path

from ganeditor.core.errors import CheckpointError
from ganeditor.core.files import check_input_file
from ganeditor.core.paths import user_data_dir
from ganeditor.core.resources import bundled_models_dir

MODEL_SUFFIXES = (".safetensors", ".pkl", ".pt", ".pth", ".param")


def user_models_dir() -> Path:
    """The per-user models folder (created on demand by whoever writes there)."""
    return user_data_dir() / "models"


def model_dirs() -> list[Path]:
    """Folders searched for named models, in order."""
    env = os.environ.get("GANEDITOR_MODELS", "")
    dirs = [Path(p) for p in env.split(os.pathsep) if p]
    return [*dirs, user_models_dir(), bundled_models_dir()]


def _candidates(folder: Path, name: str) -> list[Path]:
    return [folder / f"{name}{s}" for s in MODEL_SUFFIXES] + [folder / name / "model.safetensors"]


def list_models() -> dict[str, Path]:
    """Every named model that can be found, name -> path (earlier folders win)."""
    found: dict[str, Path] = {}
    for folder in model_dirs():
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            name = p.name
            if p.is_file() and p.suffix in MODEL_SUFFIXES:
                name = p.stem
            elif p.is_dir() and (p / "model.safetensors").is_file():
                p = p / "model.safetensors"
            else:
                continue
            found.setdefault(name, p)
    return found


def resolve_model(name_or_path: str | Path) -> Path:
    """Return the file for a model path or a model name; raise CheckpointError if neither exists."""
    p = Path(os.path.expanduser(str(name_or_path)))
    if p.exists():
        if not p.is_dir():  # a FIFO or device would block whoever reads it
            check_input_file(p, CheckpointError, "a checkpoint file")
        return p
    if p.parent == Path(".") and p.suffix not in MODEL_SUFFIXES:
        for folder in model_dirs():
            for cand in _candidates(folder, p.name):
                if cand.is_file():
                    return cand
        known = ", ".join(sorted(list_models())) or "none installed"
        raise CheckpointError(f"no such file or model name (known models: {known})", p)
    raise CheckpointError("file not found", p)


def companion(model: str | Path, role: str) -> Path | None:
    """The file made for ``model`` with ``role`` ('directions', 'encoder'), by the naming convention of the
    shipped models: ``<stem>-<role>`` beside the model file, else in the model library; None if absent."""
    p = Path(os.path.expanduser(str(model)))
    stem = p.stem if p.suffix in MODEL_SUFFIXES else p.name
    if p.is_file():
        for cand in _candidates(p.parent, f"{stem}-{role}"):
            if cand.is_file():
                return cand
    try:
        return resolve_model(f"{stem}-{role}")
    except CheckpointError:
        return None


def missing_demo_models() -> list[str]:
    """Problems of the shipped demo models, one line each: a card without its weights, or no models
    folder at all (an install that lost files).  Empty when everything is there."""
    folder = bundled_models_dir()
    cards = sorted(p for p in folder.glob("*.md") if p.stem.lower() != "readme") if folder.is_dir() else []
    if not cards:
        return [f"no demo models in this installation (expected in {folder})"]
    return [f"demo model {c.stem!r} is missing (expected {folder / (c.stem + '.safetensors')})"
            for c in cards if not any(cand.is_file() for cand in _candidates(folder, c.stem))]  # fmt: skip
