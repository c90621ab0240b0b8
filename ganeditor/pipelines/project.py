"""Project files (``.ganedit``): a photo being edited, saved so that it reopens exactly.

A project is a zip archive (members stored uncompressed: they are PNG/NPZ already):

- ``project.json``   ``{"format": "ganedit", "version": 1, "app": <version>, "photo": {...},
  "result": {...}, "operations": [...], "portrait": {...} | null}`` (described below)
- ``result.png``     the current result, 8 or 16 bits, RGBA when it has alpha, with the photo's ICC/EXIF
- ``photo.<ext>``    the original file's bytes, when embedded (``photo.embedded``)
- ``aligned.png``    the aligned face (portrait work only)
- ``latent.npz``     ``w`` [1, num_ws, w_dim] float32, ``noise.<buffer>``, ``pti.<key>`` (tuned − base weights)

``photo``: ``path`` (absolute, as last seen), ``sha256`` of the file, ``size`` [w, h], ``embedded``
(member name or null).  ``result``: ``member``, ``bit_depth``.  ``operations``: the applied steps, oldest
first, each ``{"label": ..., "op": ..., "settings": {...}}`` (translate, upscale, paste...).
``portrait``: ``generator`` {name, path, fingerprint}, ``alignment`` {landmarks, quad, transform,
detector, face_index, num_faces, source_size, notes}, ``sliders`` {direction: α}, ``inversion``
{method, steps, loss} and ``latent`` (member name, or null before an inversion).

Saving is atomic (the previous file stays intact when anything fails, e.g. a full disk).  A file
written by a newer version (``version`` > VERSION) is refused with a clear message.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganeditor import __version__
from ganeditor.core.atomic import atomic_write
from ganeditor.core.errors import GanEditorError, ImageError
from ganeditor.core.imageio import LoadedImage, read_image, write_image
from ganeditor.pipelines.align import AlignedFace
from ganeditor.pipelines.portrait import LatentState

SUFFIX = ".ganedit"
FORMAT = "ganedit"
VERSION = 1
MAX_MEMBER_BYTES = 4 << 30  # refuse absurd members (a damaged or hostile archive)


class ProjectError(GanEditorError):
    """A project file cannot be read or written."""


@dataclass(frozen=True)
class PhotoRef:
    path: str  # absolute path of the original photo when saved
    sha256: str
    size: tuple[int, int]  # (width, height)
    data: bytes | None = None  # the file's bytes when embedded


@dataclass(frozen=True)
class PortraitState:
    """Portrait work: which generator, where the face is, the inversion and the slider values."""

    generator: dict[str, str]  # name, path, fingerprint
    aligned: AlignedFace | None
    sliders: dict[str, float]
    inversion: dict[str, Any] = field(default_factory=dict)  # method, steps, loss
    latent: LatentState | None = None


@dataclass(frozen=True)
class Project:
    """Everything a project file holds, decoded."""

    photo: PhotoRef
    result: LoadedImage  # current result with the photo's metadata
    operations: list[dict[str, Any]]
    portrait: PortraitState | None = None
    app: str = __version__


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ save
def save_project(path: str | Path, project: Project) -> None:
    """Write ``project`` to ``path`` atomically (ProjectError with the reason if it cannot)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ProjectError("folder does not exist", path.parent)
    try:
        with tempfile.TemporaryDirectory(prefix="ganedit-") as tmp, atomic_write(path) as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
                _write_members(zf, Path(tmp), project)
    except OSError as e:
        raise ProjectError(f"cannot save ({e.strerror or e}); the previous file is unchanged", path) from None
    except ImageError as e:
        raise ProjectError(f"cannot save the result image ({e})", path) from None


def _image_bytes(tmp: Path, name: str, pixels: np.ndarray, alpha: np.ndarray | None, bit_depth: int,
                 icc: bytes | None = None, exif: bytes | None = None) -> bytes:
    p = tmp / name
    write_image(p, pixels, alpha, bit_depth, icc, exif)
    return p.read_bytes()


def _write_members(zf: zipfile.ZipFile, tmp: Path, project: Project) -> None:
    r = project.result
    depth = 16 if r.pixels.dtype == np.uint16 else 8
    zf.writestr("result.png", _image_bytes(tmp, "result.png", r.pixels, r.alpha, depth, r.icc_profile, r.exif))
    ph = project.photo
    embedded = None
    if ph.data is not None:
        embedded = "photo" + (Path(ph.path).suffix.lower() or ".img")
        zf.writestr(embedded, ph.data)
    doc: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "app": project.app,
        "photo": {"path": ph.path, "sha256": ph.sha256, "size": list(ph.size), "embedded": embedded},
        "result": {"member": "result.png", "bit_depth": depth},
        "operations": project.operations,
        "portrait": _portrait_json(zf, tmp, project.portrait) if project.portrait else None,
    }  # fmt: skip
    zf.writestr("project.json", json.dumps(doc, indent=1, default=_json_default))


def _portrait_json(zf: zipfile.ZipFile, tmp: Path, p: PortraitState) -> dict[str, Any]:
    out: dict[str, Any] = {"generator": p.generator, "sliders": p.sliders, "inversion": p.inversion,
                           "alignment": None, "latent": None}  # fmt: skip
    if p.aligned is not None:
        a = p.aligned
        zf.writestr("aligned.png", _image_bytes(tmp, "aligned.png", a.image, None, 16 if a.image.dtype == np.uint16 else 8))
        out["alignment"] = {"landmarks": a.landmarks, "quad": a.quad, "transform": a.transform, "detector": a.detector_name,
                            "face_index": a.face_index, "num_faces": a.num_faces, "source_size": list(a.source_size),
                            "notes": list(a.notes), "image": "aligned.png"}  # fmt: skip
    if p.latent is not None:
        lat = p.latent
        arrays = {"w": lat.ws, **{f"noise.{k}": v for k, v in lat.noise.items()},
                  **{f"pti.{k}": v for k, v in lat.pti_delta.items()}}  # fmt: skip
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        zf.writestr("latent.npz", buf.getvalue())
        out["latent"] = {"member": "latent.npz", "fingerprint": lat.fingerprint}
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(f"not JSON: {type(o).__name__}")


# ------------------------------------------------------------------------------------------ open
def load_project(path: str | Path) -> Project:
    """Read a project file; ProjectError (one line) when it is damaged, not a project or too new."""
    path = Path(path)
    if not path.is_file():
        raise ProjectError("file not found", path)
    try:
        with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory(prefix="ganedit-") as tmp:
            doc = _read_json(zf, path)
            return _decode(zf, Path(tmp), doc, path)
    except zipfile.BadZipFile:
        raise ProjectError("not a GAN Editor project (damaged or not a zip archive)", path) from None
    except (KeyError, TypeError, ValueError) as e:
        raise ProjectError(f"damaged project file ({type(e).__name__}: {e})", path) from None
    except OSError as e:
        raise ProjectError(f"cannot read ({e.strerror or e})", path) from None


def _member(zf: zipfile.ZipFile, name: str) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > MAX_MEMBER_BYTES:
        raise ValueError(f"member {name} is too large")
    return zf.read(info)


def _read_json(zf: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(_member(zf, "project.json"))
    except KeyError:
        raise ProjectError("not a GAN Editor project (no project.json inside)", path) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ProjectError("not a GAN Editor project", path)
    version = int(doc.get("version", 0))
    if version > VERSION:
        raise ProjectError(f"written by a newer GAN Editor ({doc.get('app', '?')}, project version {version}); "
                           f"this version ({__version__}) reads up to version {VERSION}: please update", path)
    return doc


def _image(zf: zipfile.ZipFile, tmp: Path, name: str) -> LoadedImage:
    p = tmp / Path(name).name
    p.write_bytes(_member(zf, name))
    return read_image(p)


def _decode(zf: zipfile.ZipFile, tmp: Path, doc: dict[str, Any], path: Path) -> Project:
    ph = doc["photo"]
    data = _member(zf, ph["embedded"]) if ph.get("embedded") else None
    photo = PhotoRef(str(ph["path"]), str(ph["sha256"]), (int(ph["size"][0]), int(ph["size"][1])), data)
    result = _image(zf, tmp, doc["result"]["member"])
    portrait = _decode_portrait(zf, tmp, doc["portrait"]) if doc.get("portrait") else None
    return Project(photo, result, list(doc.get("operations", [])), portrait, str(doc.get("app", "")))


def _decode_portrait(zf: zipfile.ZipFile, tmp: Path, p: dict[str, Any]) -> PortraitState:
    aligned = None
    if p.get("alignment"):
        a = p["alignment"]
        img = _image(zf, tmp, a["image"]).pixels
        aligned = AlignedFace(img, np.asarray(a["quad"], np.float64), np.asarray(a["transform"], np.float64),
                              np.asarray(a["landmarks"], np.float64), str(a["detector"]), int(a["face_index"]),
                              int(a["num_faces"]), tuple(a["source_size"]), list(a["notes"]))  # fmt: skip
    latent = None
    if p.get("latent"):
        with np.load(io.BytesIO(_member(zf, p["latent"]["member"])), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        latent = LatentState(arrays["w"].astype(np.float32),
                             {k[6:]: v for k, v in arrays.items() if k.startswith("noise.")},
                             {k[4:]: v for k, v in arrays.items() if k.startswith("pti.")},
                             str(p["latent"]["fingerprint"]))  # fmt: skip
    sliders = {str(k): float(v) for k, v in (p.get("sliders") or {}).items()}
    return PortraitState(dict(p["generator"]), aligned, sliders, dict(p.get("inversion") or {}), latent)


def photo_bytes_if_small(path: str | Path, limit: int = 64 << 20) -> bytes | None:
    """The photo file's bytes when it is at most ``limit`` bytes (embedded in projects), else None."""
    p = Path(path)
    try:
        return p.read_bytes() if p.stat().st_size <= limit else None
    except OSError:
        return None

