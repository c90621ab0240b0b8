"""Detection by content and loading: ``load_checkpoint`` is the one entry point.

The readers are imported here explicitly, in the order they are tried (no folder scanning, so
frozen builds see every reader); each registers itself with ``base.register_reader``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ganeditor.core.errors import CheckpointError
from ganeditor.core.files import check_input_file
from ganeditor.core.signals import signals_held
from ganeditor.formats import native  # noqa: F401  (readers register in the order they are tried)
from ganeditor.formats import ncnn  # noqa: F401
from ganeditor.formats import nvlabs_pkl  # noqa: F401
from ganeditor.formats import torch_pth  # noqa: F401
from ganeditor.formats import rosinality  # noqa: F401
from ganeditor.formats import spandrel_io
from ganeditor.formats.base import HEAD_BYTES, READERS, Checkpoint, FormatReader, register_reader

register_reader(spandrel_io.READER)  # last: every torch file the others do not claim


def _check_file(path: Path) -> bytes:
    size = check_input_file(path, CheckpointError, "a checkpoint file").st_size
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError as e:
        raise CheckpointError(f"cannot read ({e.strerror or e})", path) from None
    if size == 0:
        raise CheckpointError("empty file (0 bytes), expected a checkpoint", path)
    return head


def sniff(path: str | Path) -> FormatReader:
    """Return the reader for ``path``, decided by the file's content (not its name)."""
    path = Path(path)
    head = _check_file(path)
    for reader in READERS:
        if reader.sniff(path, head):
            return reader
    raise CheckpointError(
        "unrecognised file: expected a network pickle (.pkl), a PyTorch checkpoint (.pt/.pth), "
        "a safetensors model or an ncnn model",
        path,
    )


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Read any supported checkpoint safely; networks are in eval mode on ``device``."""
    path = Path(os.path.expanduser(str(path)))
    reader = sniff(path)
    try:
        with signals_held():  # a Ctrl-C inside torch's or safetensors' callbacks would be lost (core/signals.py)
            ckpt = reader.load(path)
    except CheckpointError:
        raise
    except (EOFError, MemoryError) as e:
        raise CheckpointError(f"truncated or damaged file ({type(e).__name__})", path) from e
    except Exception as e:  # a reader met something its format does not allow
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"cannot read as {reader.format_id}: {msg}", path) from e
    ckpt.path = path
    for net in ckpt.nets.values():
        net.eval().requires_grad_(False)
    return ckpt.to(device)
