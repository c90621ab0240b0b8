"""Our own format: one ``.safetensors`` file whose header metadata names each network's
architecture and constructor kwargs, so it loads without running any code from the file."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from ganeditor.core.atomic import atomic_write
from ganeditor.core.errors import CheckpointError
from ganeditor.core.signals import safe_point
from ganeditor.formats.base import Checkpoint, FormatReader, register_reader
from ganeditor.formats.bounded import build_checked
from ganeditor.formats.spandrel_io import checkpoint_from_object

FORMAT_KEY = "ganeditor.format"
FORMAT_VERSION = "1"


def net_spec(net: torch.nn.Module) -> dict[str, Any]:
    """The registry name and kwargs a network was built with (set by ``archs.build``)."""
    arch = getattr(net, "arch_name", None)
    kwargs = getattr(net, "init_kwargs", None)
    if arch is None or kwargs is None:
        raise CheckpointError(f"network {type(net).__name__} was not built from the architecture registry")
    return {"arch": arch, "kwargs": kwargs}


def save_checkpoint(ckpt: Checkpoint, path: str | Path, dtype: torch.dtype | None = None) -> None:
    """Write ``ckpt`` atomically; floating tensors are cast to ``dtype`` when given (e.g. fp16)."""
    tensors: dict[str, torch.Tensor] = {}
    specs = {}
    for role, net in ckpt.nets.items():
        specs[role] = net_spec(net)
        for key, t in net.state_dict().items():
            t = t.detach().cpu()
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            tensors[f"{role}.{key}"] = t.contiguous()
    metadata = {
        FORMAT_KEY: FORMAT_VERSION,
        "ganeditor.nets": json.dumps(specs),  # keeps the order of roles
        "ganeditor.meta": json.dumps(ckpt.meta, sort_keys=True, default=str),
        "ganeditor.source_format": ckpt.format_id,
    }
    data = save(tensors, metadata=metadata)
    with atomic_write(path) as f:
        f.write(data)


def canonicalize_safetensors(path: Path) -> None:
    """Rewrite a safetensors header with sorted keys, so one conversion always gives the same bytes
    (safetensors writes its metadata map in an arbitrary order)."""
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.dumps(json.loads(data[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    with atomic_write(path) as f:
        f.write(struct.pack("<Q", len(header)) + header + data[8 + n :])


def _sniff(path: Path, head: bytes) -> bool:
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n < 100_000_000 and head[8:9] == b"{"


def _stored_bytes(sl: Any) -> int:
    n = 1
    for s in sl.get_shape():
        n *= s
    return n * _DTYPE_BYTES.get(sl.get_dtype(), 8)


_DTYPE_BYTES = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
                "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def _load(path: Path) -> Checkpoint:
    try:
        f = safe_open(str(path), framework="pt", device="cpu")
    except Exception as e:
        raise CheckpointError(f"damaged safetensors file ({str(e).splitlines()[0]})", path) from None
    with f:
        md = f.metadata() or {}
        if md.get(FORMAT_KEY) is None:  # a foreign safetensors file: spandrel may know its architecture
            return checkpoint_from_object({k: f.get_tensor(k) for k in f.keys()}, path,
                                          ours="safetensors file without GAN Editor metadata")
        if md[FORMAT_KEY] != FORMAT_VERSION:
            raise CheckpointError(f"GAN Editor format version {md[FORMAT_KEY]} is not supported", path)
        try:
            specs = json.loads(md["ganeditor.nets"])
            meta = json.loads(md.get("ganeditor.meta", "{}"))
            if not isinstance(specs, dict) or not all(isinstance(s, dict) and isinstance(s.get("kwargs"), dict)
                                                      and isinstance(s.get("arch"), str) for s in specs.values()):
                raise ValueError("'ganeditor.nets' is not a map of {arch, kwargs}")
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"damaged GAN Editor metadata ({e})", path) from None
        keys = list(f.keys())
        nets = {}
        for role, spec in specs.items():
            prefix = role + "."
            mine = [k for k in keys if k.startswith(prefix)]
            shapes = {k[len(prefix):]: f.get_slice(k).get_shape() for k in mine}
            stored = sum(_stored_bytes(f.get_slice(k)) for k in mine)
            net = build_checked(spec["arch"], spec["kwargs"], path, stored, shapes, f"network {role!r}")
            ref = net.state_dict()
            sd = {}
            for k in mine:
                safe_point()  # a held Ctrl-C ends the load here, between safetensors' calls
                sd[k[len(prefix):]] = f.get_tensor(k)
            net.load_state_dict({k: v.to(ref[k].dtype) for k, v in sd.items()}, strict=False)  # keys checked
            nets[role] = net
    return Checkpoint("ganeditor", "GAN Editor safetensors", nets, meta)


READER = register_reader(FormatReader("ganeditor", _sniff, _load))
