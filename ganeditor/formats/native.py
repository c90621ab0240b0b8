"""Our own format: one ``.safetensors`` file whose header metadata names each network's
architecture and constructor kwargs, so it loads without running any code from the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from ganeditor.archs import build
from ganeditor.core.atomic import atomic_write
from ganeditor.core.errors import CheckpointError
from ganeditor.formats.base import Checkpoint, FormatReader, register_reader

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


def _sniff(path: Path, head: bytes) -> bool:
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n < 100_000_000 and head[8:9] == b"{"


def _load(path: Path) -> Checkpoint:
    try:
        f = safe_open(str(path), framework="pt", device="cpu")
    except Exception as e:
        raise CheckpointError(f"damaged safetensors file ({str(e).splitlines()[0]})", path) from None
    with f:
        md = f.metadata() or {}
        if md.get(FORMAT_KEY) is None:  # a foreign safetensors file: spandrel may know its architecture
            from ganeditor.formats.spandrel_io import checkpoint_from_object

            return checkpoint_from_object({k: f.get_tensor(k) for k in f.keys()}, path,
                                          ours="safetensors file without GAN Editor metadata")
        if md[FORMAT_KEY] != FORMAT_VERSION:
            raise CheckpointError(f"GAN Editor format version {md[FORMAT_KEY]} is not supported", path)
        specs = json.loads(md["ganeditor.nets"])
        meta = json.loads(md.get("ganeditor.meta", "{}"))
        keys = list(f.keys())
        nets = {}
        for role, spec in specs.items():
            net = build(spec["arch"], **spec["kwargs"])
            prefix = role + "."
            sd = {k[len(prefix):]: f.get_tensor(k) for k in keys if k.startswith(prefix)}
            ref = net.state_dict()
            sd = {k: v.to(ref[k].dtype) if k in ref else v for k, v in sd.items()}
            missing, unexpected = net.load_state_dict(sd, strict=False)
            if missing or unexpected:
                raise CheckpointError(
                    f"network {role!r} does not match its architecture {spec['arch']!r}: "
                    f"missing {missing[:3]}, unexpected {unexpected[:3]}",
                    path,
                )
            nets[role] = net
    return Checkpoint("ganeditor", "GAN Editor safetensors", nets, meta)


READER = register_reader(FormatReader("ganeditor", _sniff, _load))
