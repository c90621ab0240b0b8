"""The Checkpoint type, the reader registry and the helpers readers share (detection: ``formats.loading``)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn


HEAD_BYTES = 4096
TORCH_ZIP_MAGIC = b"PK\x03\x04"
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # pickled magic number of old torch.save files

# Roles in the order in which a "main" network is chosen.
PRIMARY_ROLES = ("G_ema", "g_ema", "G", "G_A", "net", "E")


@dataclass
class Checkpoint:
    """Networks loaded from one file, by role, plus metadata that is plain JSON data."""

    format_id: str  # short id: 'nvlabs-pkl', 'rosinality-pt', 'ganeditor', ...
    format_name: str  # for people: "NVlabs network pickle (StyleGAN2-ADA)"
    nets: dict[str, nn.Module]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def primary(self) -> nn.Module:
        """The network used for inference (G_ema over G for GANs)."""
        for role in PRIMARY_ROLES:
            if role in self.nets:
                return self.nets[role]
        return next(iter(self.nets.values()))

    @property
    def primary_role(self) -> str:
        for role, net in self.nets.items():
            if net is self.primary:
                return role
        raise AssertionError("unreachable")

    def to(self, device: torch.device | str) -> "Checkpoint":
        for net in self.nets.values():
            net.to(device)
        return self


@dataclass(frozen=True)
class FormatReader:
    """A checkpoint reader: ``sniff(path, head)`` says whether it applies, ``load(path)`` reads."""

    format_id: str
    sniff: Callable[[Path, bytes], bool]
    load: Callable[[Path], Checkpoint]


READERS: list[FormatReader] = []


def register_reader(reader: FormatReader) -> FormatReader:
    """Add a reader; earlier registrations are tried first."""
    if all(r.format_id != reader.format_id for r in READERS):
        READERS.append(reader)
    return reader


def torch_pickle_bytes(path: Path, head: bytes, legacy_bytes: int = 4 << 20) -> bytes | None:
    """The pickle part of a torch file, for sniffing key names without loading: the zip member
    ``data.pkl`` (up to 64 MiB), or the first ``legacy_bytes`` of an old-style file; else None."""
    if head.startswith(TORCH_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as zf:
                infos = [i for i in zf.infolist() if i.filename == "data.pkl" or i.filename.endswith("/data.pkl")]
                if len(infos) != 1 or infos[0].file_size > 64 << 20:
                    return None
                return zf.read(infos[0])
        except (zipfile.BadZipFile, OSError, ValueError):
            return None
    if head.startswith(TORCH_LEGACY_MAGIC):
        with open(path, "rb") as f:
            return f.read(legacy_bytes)
    return None
