"""The one way GAN Editor reads a ``torch.save`` file: ``torch.load(weights_only=True)`` after checks
that keep a hostile file from costing more than its size.

* zip files: every member's declared uncompressed size is read from the directory first; together
  they may not exceed twice the file (``torch.save`` stores members uncompressed, so a larger
  total is a zip bomb);
* the pickle (the zip's ``data.pkl``, or the leading pickles of a legacy file) is scanned opcode by
  opcode without building anything: a byte or text string longer than what is left of the file is
  refused with our message instead of PyTorch's misleading "weights only" advice;
* refusals of the weights-only unpickler name the global the file asked for.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import IO, Any, Iterable

import torch

from ganeditor.core.errors import CheckpointError, UnsafeCheckpointError
from ganeditor.formats.base import TORCH_LEGACY_MAGIC, TORCH_ZIP_MAGIC

ZIP_EXPANSION = 2  # members may declare at most 2x the archive's size (+1 MiB) in all
MAX_PICKLE_BYTES = 256 << 20  # data.pkl holds names and shapes, never tensor data
_LEGACY_PICKLES = 4  # magic number, protocol version, sys info, the object


class _Capped(io.RawIOBase):
    """A read-only view whose reads never return (or allocate) more than what is left."""

    def __init__(self, f: IO[bytes], size: int):
        self.f, self.left, self.pos = f, size, 0

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        self.pos += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        line = self.f.readline(min(self.left, 1 << 20))
        self.left -= len(line)
        self.pos += len(line)
        return line


def check_zip(path: Path, data: bytes | None = None) -> None:
    """Refuse a zip whose members declare more bytes than the archive can hold uncompressed."""
    size = len(data) if data is not None else os.path.getsize(path)
    try:
        with zipfile.ZipFile(io.BytesIO(data) if data is not None else path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"damaged zip file ({e})", path) from None
    total = sum(i.file_size for i in infos)
    if total > ZIP_EXPANSION * size + (1 << 20):
        big = max(infos, key=lambda i: i.file_size)
        raise CheckpointError(
            f"zip member {big.filename!r} declares {big.file_size / 2**20:,.0f} MiB uncompressed "
            f"({total / 2**20:,.0f} MiB in all) in a {size / 2**20:,.1f} MiB file: refused (a zip bomb?)", path)


def scan_pickle(f: IO[bytes], size: int, path: Path | None, count: int = 1) -> None:
    """Walk ``count`` pickles from ``f`` opcode by opcode (nothing is built): every declared string
    must fit in what is left of the ``size`` bytes."""
    capped = _Capped(f, size)
    try:
        for _ in range(count):
            for _op, _arg, _pos in pickletools.genops(capped):
                pass
    except ValueError as e:
        m = re.search(r"expected (\d+) bytes.*only (\d+) remain", str(e))
        if m:
            raise CheckpointError(f"damaged checkpoint: its pickle declares a string of {int(m.group(1)):,} bytes "
                                  f"where only {int(m.group(2)):,} are left in the file", path) from None
        raise CheckpointError(f"damaged checkpoint: {str(e).splitlines()[0][:200]}", path) from None


def _scan(src: Path | bytes, path: Path | None) -> None:
    head = src[:16] if isinstance(src, bytes) else _head(src)
    if head.startswith(TORCH_ZIP_MAGIC) or zipfile.is_zipfile(io.BytesIO(src) if isinstance(src, bytes) else src):
        check_zip(path, src if isinstance(src, bytes) else None)
        with zipfile.ZipFile(io.BytesIO(src) if isinstance(src, bytes) else src) as zf:
            pkls = [i for i in zf.infolist() if i.filename == "data.pkl" or i.filename.endswith("/data.pkl")]
            if len(pkls) != 1:
                raise CheckpointError("not a PyTorch zip checkpoint (no single data.pkl)", path)
            if pkls[0].file_size > MAX_PICKLE_BYTES:
                raise CheckpointError(f"PyTorch zip checkpoint with a {pkls[0].file_size:,}-byte data.pkl: refused", path)
            with zf.open(pkls[0]) as f:
                scan_pickle(f, pkls[0].file_size, path)
    elif head.startswith(TORCH_LEGACY_MAGIC):
        f = io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")
        with contextlib.closing(f):
            scan_pickle(f, len(src) if isinstance(src, bytes) else os.path.getsize(src), path, _LEGACY_PICKLES)


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(16)


def torch_load(src: Path | bytes, path: Path | None = None, allow: Iterable[type] = (), mmap: bool = False) -> Any:
    """``torch.load(weights_only=True, map_location='cpu')`` of a file or bytes, after the checks above;
    ``allow``: extra classes the weights-only unpickler may build (e.g. ``argparse.Namespace``)."""
    path = path if path is not None or isinstance(src, bytes) else Path(src)
    _scan(src, path)
    try:
        with torch.serialization.safe_globals(list(allow)):
            return torch.load(io.BytesIO(src) if isinstance(src, bytes) else src, map_location="cpu",
                              weights_only=True, mmap=mmap and not isinstance(src, bytes))
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL ([\w.]+)", str(e)) or re.search(r"global '?([\w.]+)", str(e))
        if m:
            raise UnsafeCheckpointError(
                f"refused to load global '{m.group(1)}' (not on the allow-list): this file may contain code", path
            ) from None
        raise CheckpointError(f"damaged checkpoint ({_first_line(e)})", path) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise CheckpointError(f"damaged or truncated torch file ({_first_line(e)})", path) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
