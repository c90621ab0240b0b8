"""Networks described by a file are checked before they are built: settings within sane ranges,
and the network the settings describe (built first on the ``meta`` device, which allocates
nothing) must fit the tensors the file actually holds, by name and shape, and by size.

So a 300-byte file whose settings say ``num_feat=4096`` or ``img_resolution=16384`` is refused in
milliseconds instead of allocating gigabytes, and a shape mismatch names the first tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

from ganeditor.archs import build
from ganeditor.core.errors import CheckpointError
from ganeditor.core.signals import signals_held

MIB = 1 << 20
NET_SLACK_BYTES = 64 * MIB  # buffers computed by constructors (filters, noise) on top of the stored tensors
STORED_EXPANSION = 4  # a network may hold up to 4x its stored bytes (fp16 -> fp32, 8-bit tables -> fp32)

_RANGES: dict[str, tuple[int, int]] = {}
for _k in ("img_resolution", "resolution", "size", "input_size"):
    _RANGES[_k] = (1, 8192)
for _k in ("num_feat", "ngf", "ndf", "channel_max", "channel_min", "num_grow_ch", "head_dim", "z_dim", "w_dim",
           "c_dim", "cmap_dim", "input_nc", "output_nc", "num_in_ch", "num_out_ch", "img_channels", "layer_features",
           "embed_features", "channels"):
    _RANGES[_k] = (0, 16384)
for _k in ("num_block", "n_blocks", "num_conv", "num_layers", "n_layers", "num_ws", "num_upconv", "n_mlp"):
    _RANGES[_k] = (0, 1024)
for _k in ("scale", "upscale"):
    _RANGES[_k] = (1, 16)
_RANGES["channel_base"] = (0, 1 << 22)
_ANY_INT = 1 << 31


def check_kwargs(kwargs: Any, path: Path | None = None, what: str = "network", _key: str = "") -> None:
    """Every number in (nested) constructor kwargs within its sane range; CheckpointError naming it."""
    if isinstance(kwargs, dict):
        for k, v in kwargs.items():
            check_kwargs(v, path, what, str(k))
    elif isinstance(kwargs, (list, tuple)):
        if len(kwargs) > 1_000_000:
            raise CheckpointError(f"{what}: setting {_key!r} holds {len(kwargs)} values (at most 1,000,000)", path)
        for v in kwargs:
            check_kwargs(v, path, what, _key)
    elif isinstance(kwargs, int) and not isinstance(kwargs, bool):
        lo, hi = _RANGES.get(_key, (-_ANY_INT, _ANY_INT))
        if not lo <= kwargs <= hi:
            raise CheckpointError(f"{what}: setting {_key}={kwargs} is outside the supported range {lo}..{hi}", path)
    elif isinstance(kwargs, float) and kwargs != kwargs:  # NaN
        raise CheckpointError(f"{what}: setting {_key!r} is NaN", path)


def _nbytes(net: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers()))


def _shape_mismatch(want: Mapping[str, torch.Tensor], have: Mapping[str, Sequence[int]]) -> str | None:
    for k, t in want.items():
        if k not in have and k.endswith("num_batches_tracked"):
            continue  # BatchNorm counters, absent from files written before torch 0.4
        if k not in have:
            return f"tensor {k!r} is missing from the file (the architecture needs {list(t.shape)})"
        if tuple(have[k]) != tuple(t.shape):
            return f"tensor {k!r} has shape {list(have[k])} in the file, the architecture needs {list(t.shape)}"
    extra = next((k for k in have if k not in want), None)
    return None if extra is None else f"the file holds tensor {extra!r}, which the architecture does not have"


def build_checked(
    arch: str,  # registry name
    kwargs: dict[str, Any],  # constructor settings read from the file
    path: Path | None,  # the file, for messages
    stored_bytes: int,  # bytes of tensor data the file holds for this network (its size will do)
    shapes: Mapping[str, Sequence[int]] | None = None,  # state-dict key -> shape as stored, when known
    what: str = "network",  # e.g. "network 'G_ema'", for messages
) -> nn.Module:
    """Build ``arch`` from file settings only once they are sane and fit what the file holds."""
    check_kwargs(kwargs, path, what)
    try:
        with signals_held(), torch.device("meta"):  # an interrupted mode stack would stay on 'meta'
            meta = build(arch, **kwargs)
    except CheckpointError:
        raise
    except (TypeError, ValueError, AssertionError, KeyError, IndexError, ZeroDivisionError, OverflowError,
            NotImplementedError, RuntimeError) as e:
        if not isinstance(e, (NotImplementedError, RuntimeError)) and "meta" not in str(e):
            msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise CheckpointError(f"{what} ({arch}) has unsupported settings: {msg}", path) from None
        meta = None  # a constructor that computes values cannot run on 'meta': its ranges were checked
    if meta is not None:
        need, budget = _nbytes(meta), STORED_EXPANSION * stored_bytes + NET_SLACK_BYTES
        if need > budget:
            raise CheckpointError(
                f"{what}: its settings describe a {arch} of {need / MIB:,.0f} MiB, but the file holds "
                f"{stored_bytes / MIB:,.1f} MiB of data; refused before allocating", path)
        if shapes is not None:
            bad = _shape_mismatch(meta.state_dict(), shapes)
            if bad:
                raise CheckpointError(f"{what} does not match {arch}: {bad}", path)
        del meta
    return build(arch, **kwargs)
