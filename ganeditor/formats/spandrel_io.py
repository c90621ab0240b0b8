"""Every checkpoint spandrel recognises (SwinIR, HAT, DAT, SPAN, SCUNet, NAFNet, FBCNN, DRUNet,
GFPGAN, RestoreFormer, LaMa, ... -- ``spandrel.MAIN_REGISTRY``), read safely, after our own readers.

Our readers are tried first (exact, with their own key layouts); a torch file or a safetensors file
they do not recognise comes here.  The file is read by OUR safe paths only -- ``formats.torch_load``
(``weights_only=True``) or safetensors -- never by spandrel's loader (which unpickles with its own
rules and runs TorchScript); spandrel then sees a plain dict of tensors, detects the architecture
from its keys and shapes, and builds the network (``archs.spandrel_net.SpandrelNet`` wraps it).

spandrel is imported only when a file needs it (importing its ~40 architectures takes seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ganeditor.archs.spandrel_net import SpandrelNet
from ganeditor.core.errors import CheckpointError
from ganeditor.formats.base import TORCH_LEGACY_MAGIC, TORCH_ZIP_MAGIC, Checkpoint, FormatReader, torch_pickle_bytes
from ganeditor.formats.torch_load import torch_load

FORMAT_ID = "spandrel"


def _keys_sample(sd: dict) -> str:
    keys = [k for k in sd if isinstance(k, str)][:3]
    return ", ".join(keys) + (", ..." if len(sd) > 3 else "") if keys else "no tensor keys"


def _tensors_only(obj: Any) -> dict[str, torch.Tensor]:
    """The state dict spandrel would look at (its own unwrapping of 'params_ema', 'params', 'state_dict',
    'model', 'net', a single nested dict, 'module.'/'netG.' prefixes), tensors only."""
    from spandrel import canonicalize_state_dict  # deferred: importing spandrel takes seconds

    if not isinstance(obj, dict):
        raise CheckpointError(f"not a model: the file holds a {type(obj).__name__}, not a state dict")
    sd = canonicalize_state_dict(obj)
    return {k: v for k, v in sd.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def network_from_object(obj: Any, path: Path | None = None, ours: str = "") -> tuple[Any, dict[str, Any]]:
    """A ``SpandrelNet`` for the loaded file content ``obj`` (a dict of tensors), with its metadata.

    ``ours`` names what our own readers looked for, for the error when spandrel knows nothing either."""
    from spandrel import MAIN_REGISTRY  # deferred: importing spandrel takes seconds

    sd = _tensors_only(obj)
    if not sd:
        raise CheckpointError("not a model: the file holds no tensors", path)
    support = next((s for s in MAIN_REGISTRY.architectures("detection") if s.detect(sd)), None)
    if support is None:
        raise CheckpointError(
            f"unknown architecture: {ours + ', and ' if ours else ''}none of the {len(MAIN_REGISTRY)} architectures "
            f"spandrel {_spandrel_version()} knows matches its keys ({_keys_sample(sd)})", path)
    arch = support.architecture
    try:
        desc = arch.load(sd)
        net = SpandrelNet(desc)
    except Exception as e:  # noqa: BLE001 - spandrel's builders raise anything on a file that only looks right
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise CheckpointError(f"looks like a spandrel {arch.id} model, but it could not be built: {msg}", path) from None
    meta = {"arch": net.arch_name, "spandrel_arch": str(arch.id), "spandrel_version": _spandrel_version(),
            "purpose": net.purpose, "kind": net.kind, "scale": net.scale, "tags": net.tags}
    return net, meta


def checkpoint_from_object(obj: Any, path: Path | None = None, ours: str = "") -> Checkpoint:
    """A Checkpoint (role ``net``) for file content spandrel recognises; CheckpointError otherwise."""
    net, meta = network_from_object(obj, path, ours)
    name = f"spandrel {meta['spandrel_arch']} ({net.kind}, read with weights_only)"
    return Checkpoint(FORMAT_ID, name, {"net": net}, meta)


def _spandrel_version() -> str:
    import spandrel  # deferred: importing spandrel takes seconds

    return str(getattr(spandrel, "__version__", "?"))


def spandrel_kind(path: str | Path) -> dict[str, Any] | None:
    """What a file spandrel recognises is (``arch``, ``kind``, ``scale``...), reading only its tensors;
    None when it is not such a file.  Builds the network, so it costs about one load."""
    try:
        _net, meta = network_from_object(_read(Path(path)), Path(path))
    except (CheckpointError, OSError, ValueError, RuntimeError):
        return None
    return meta


def _read(path: Path) -> Any:
    """The file's content through our safe paths: torch.load(weights_only=True), or safetensors."""
    with open(path, "rb") as f:
        head = f.read(len(TORCH_LEGACY_MAGIC))
    if head.startswith((TORCH_ZIP_MAGIC, TORCH_LEGACY_MAGIC)):
        return torch_load(path)
    try:
        return load_file(str(path))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"damaged safetensors file ({str(e).splitlines()[0][:200]})", path) from None


def _sniff(path: Path, head: bytes) -> bool:
    return torch_pickle_bytes(path, head, 1 << 16) is not None


def _load(path: Path) -> Checkpoint:
    return checkpoint_from_object(_read(path), path)


READER = FormatReader(FORMAT_ID, _sniff, _load)  # registered last by formats.loading
