"""Direction files: our library format (safetensors + JSON metadata, no code) and imports of
InterFaceGAN ``.npy`` boundaries, GANSpace ``.npz`` files and rosinality closed-form factor ``.pt``.

Library layout: tensor ``vectors`` [K, w_dim] float32; metadata ``ganeditor.directions`` = "1" and
``library`` = JSON {w_dim, num_ws, generator (fingerprint or null), provenance, directions: [{name,
start, end, unit, sigma, source, info}]} in the order of the vectors.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save

from ganeditor.core.atomic import atomic_write
from ganeditor.core.errors import GanEditorError
from ganeditor.formats.torch_load import torch_load
from ganeditor.pipelines.directions import Direction, DirectionLibrary, _fix_sign

LIBRARY_KEY = "ganeditor.directions"
LIBRARY_VERSION = "1"


def generator_fingerprint(G: nn.Module) -> str:
    """Short hash of the mapping network (fp16-rounded): same W space, same fingerprint.

    PTI-tuned copies share it (they only change synthesis), fp16/fp32 copies of a model too.
    """
    h = hashlib.sha256()
    h.update(f"w_dim={G.w_dim};num_ws={G.num_ws}".encode())
    for name, t in sorted(G.mapping.state_dict().items()):
        if t.is_floating_point():
            h.update(name.encode())
            h.update(t.detach().cpu().to(torch.float16).numpy().tobytes())
    return h.hexdigest()[:16]


def save_library(lib: DirectionLibrary, path: str | Path) -> None:
    """Write a direction library atomically (safetensors; readable without running code)."""
    if not lib.directions:
        raise GanEditorError("no directions to save")
    vecs = np.stack([d.vector for d in lib.directions]).astype(np.float32)
    if vecs.shape[1] != lib.w_dim:
        raise GanEditorError(f"direction vectors have {vecs.shape[1]} values, the library's w_dim is {lib.w_dim}")
    names = lib.names()
    if len(set(names)) != len(names):
        raise GanEditorError("direction names must be unique")
    meta = {
        "w_dim": lib.w_dim,
        "num_ws": lib.num_ws,
        "generator": lib.generator,
        "provenance": lib.provenance,
        "directions": [{"name": d.name, "start": d.start, "end": d.end, "unit": d.unit, "sigma": float(d.sigma),
                        "source": d.source, "info": d.info} for d in lib.directions],  # fmt: skip
    }
    data = save({"vectors": torch.from_numpy(vecs)}, metadata={LIBRARY_KEY: LIBRARY_VERSION, "library": json.dumps(meta)})
    with atomic_write(path) as f:
        f.write(data)


def is_library(path: str | Path) -> bool:
    """Whether ``path`` is one of our direction libraries (reads the safetensors header only)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return (f.metadata() or {}).get(LIBRARY_KEY) == LIBRARY_VERSION
    except Exception:  # noqa: BLE001 - not safetensors, unreadable: not a library
        return False


def load_library(path: str | Path) -> DirectionLibrary:
    """Read our direction library file."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            md = f.metadata() or {}
            if md.get(LIBRARY_KEY) != LIBRARY_VERSION:
                raise GanEditorError("not a GAN Editor direction library (safetensors without direction metadata)", path)
            meta = json.loads(md["library"])
            vecs = f.get_tensor("vectors").float().numpy()
    except GanEditorError:
        raise
    except Exception as e:
        raise GanEditorError(f"cannot read direction library ({str(e).splitlines()[0] if str(e) else type(e).__name__})", path) from None
    entries = meta["directions"]
    if vecs.shape != (len(entries), meta["w_dim"]):
        raise GanEditorError(f"damaged direction library: vectors {list(vecs.shape)} for {len(entries)} entries", path)
    dirs = [Direction(e["name"], vecs[i], e["start"], e["end"], e["unit"], e["sigma"], e.get("source", ""), e.get("info", {}))
            for i, e in enumerate(entries)]  # fmt: skip
    return DirectionLibrary(dirs, int(meta["w_dim"]), meta.get("num_ws"), meta.get("generator"), meta.get("provenance", {}))


def import_interfacegan(path: str | Path, name: str | None = None) -> DirectionLibrary:
    """An InterFaceGAN boundary ``.npy`` ([1, dim], unit normal) as a one-direction library."""
    path = Path(path)
    try:
        b = np.load(path, allow_pickle=False)
    except Exception as e:
        raise GanEditorError(f"cannot read boundary ({type(e).__name__})", path) from None
    if b.ndim != 2 or b.shape[0] != 1:
        raise GanEditorError(f"boundary has shape {list(b.shape)}, expected [1, w_dim]", path)
    n = np.linalg.norm(b)
    if not np.isfinite(n) or n == 0:
        raise GanEditorError("boundary is zero or not finite", path)
    stem = path.name[: -len("_boundary.npy")] if path.name.endswith("_boundary.npy") else path.stem
    d = Direction(name or stem, b[0] / n, 0, None, "absolute", 1.0, "interfacegan", {"file": path.name})
    return DirectionLibrary([d], b.shape[1], None, None, {"imported": "interfacegan", "file": path.name})


def import_ganspace(path: str | Path, layers: tuple[int, int] | None = None) -> DirectionLibrary:
    """A GANSpace ``.npz`` (lat_comp [K,1,dim], lat_stdev [K], var_ratio) in σ units."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        comp, std = np.asarray(z["lat_comp"]), np.asarray(z["lat_stdev"]).reshape(-1)
        ratio = np.asarray(z["var_ratio"]).reshape(-1) if "var_ratio" in z else np.full(len(std), np.nan)
    except KeyError as e:
        raise GanEditorError(f"not a GANSpace file: missing {e}", path) from None
    except Exception as e:
        raise GanEditorError(f"cannot read GANSpace file ({type(e).__name__})", path) from None
    comp = comp.reshape(comp.shape[0], -1)
    if len(std) != len(comp):
        raise GanEditorError(f"lat_comp has {len(comp)} components, lat_stdev {len(std)}", path)
    start, end = layers if layers is not None else (0, None)
    dirs = [Direction(f"ganspace_{i}", comp[i], start, end, "sigma", float(std[i]), "ganspace",
                      {"var_ratio": float(ratio[i]) if i < len(ratio) else None}) for i in range(len(comp))]  # fmt: skip
    return DirectionLibrary(dirs, comp.shape[1], None, None, {"imported": "ganspace", "file": path.name})


def import_factor(path: str | Path, num: int | None = None) -> DirectionLibrary:
    """A rosinality closed-form factor ``.pt`` ({'ckpt', 'eigvec' [dim, dim]}, column j = direction j)."""
    path = Path(path)
    try:
        obj = torch_load(Path(path))
        eig = np.asarray(obj["eigvec"], dtype=np.float64)
    except (KeyError, TypeError) as e:
        raise GanEditorError(f"not a closed-form factor file: missing {e}", path) from None
    except Exception as e:
        raise GanEditorError(f"cannot read factor file ({type(e).__name__})", path) from None
    if eig.ndim != 2 or eig.shape[0] != eig.shape[1]:
        raise GanEditorError(f"eigvec has shape {list(eig.shape)}, expected [dim, dim]", path)
    vecs = eig.T[: num or eig.shape[1]]
    dirs = [Direction(f"sefa_{i}", v, 0, None, "absolute", 1.0, "sefa", {"file": path.name}) for i, v in enumerate(vecs)]
    return DirectionLibrary(dirs, eig.shape[0], None, None, {"imported": "rosinality-factor", "file": path.name,
                                                             "ckpt": str(obj.get("ckpt", ""))})  # fmt: skip


def load_directions(path: str | Path) -> DirectionLibrary:
    """Any supported direction file, by content: our library, .npy, .npz or a factor .pt."""
    path = Path(path)
    if not path.is_file():
        raise GanEditorError("direction file not found", path)
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(b"\x93NUMPY"):
        return import_interfacegan(path)
    if head.startswith(b"PK"):
        return import_ganspace(path) if path.suffix.lower() == ".npz" or _is_npz(path) else import_factor(path)
    if len(head) >= 9 and head[8:9] == b"{":
        return load_library(path)
    raise GanEditorError("unrecognised direction file (expected a library .safetensors, .npy, .npz or factor .pt)", path)


def _is_npz(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith(".npy") for n in z.namelist())
    except zipfile.BadZipFile:
        return False


def sign_fixed(v: np.ndarray) -> np.ndarray:
    """Our sign convention applied to rows of ``v`` (largest-magnitude entry positive)."""
    return _fix_sign(np.atleast_2d(v))
