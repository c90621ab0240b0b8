"""NVlabs network pickles (StyleGAN2-ADA, StyleGAN3, converted TF): a safe reader and a writer.

The official loader ``exec``s the module source stored in every network object.  We never do:
the restricted unpickler turns each ``torch_utils.persistence`` object into a plain
``PersistentObject`` record, whose ``state`` holds the parameters, buffers, children and
constructor kwargs.  From those we build OUR network of the same architecture and load the
flat state dict strictly.  The tests' writer (``tests/writers/nvlabs_pkl_write.py``) produces the
official layout.
"""

from __future__ import annotations

import inspect
import json

import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ganeditor.archs import ARCHS
from ganeditor.archs.stylegan2_layers import plain as to_plain
from ganeditor.core.errors import CheckpointError, UnsafeCheckpointError
from ganeditor.core.safe_pickle import COLLECTIONS_GLOBALS, NUMPY_GLOBALS, restricted_load, safe_call
from ganeditor.formats.base import Checkpoint, FormatReader, register_reader
from ganeditor.formats.bounded import build_checked
from ganeditor.formats.nvlabs_tf import convert_tf_pickle
from ganeditor.formats.torch_load import torch_load
from ganeditor.formats.torch_legacy import TORCH_GLOBALS, read_legacy_stream

FORMAT_ID = "nvlabs-pkl"
SNIFF_BYTES = 64 * 1024
NET_ROLES = ("G", "D", "G_ema")
_IGNORED_KWARGS = ("fused_modconv_default",)  # speed-only switch of the stylegan3 repo's SG2


@dataclass
class PersistentObject:
    """What ``torch_utils.persistence`` pickled: a class name and its ``__dict__``; code not run."""

    class_name: str
    state: dict[str, Any]
    module_src: str = ""
    version: int = 6

    @property
    def children(self) -> dict[str, Any]:
        mods = self.state.get("_modules") or {}
        return mods if isinstance(mods, dict) else {}


@safe_call
def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    """Stand-in for ``torch_utils.persistence._reconstruct_persistent_obj``: records, never execs."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise CheckpointError("malformed persistent object in network pickle (not a class record)")
    name, state, src = meta.get("class_name"), meta.get("state"), meta.get("module_src", "")
    if not isinstance(name, str) or not isinstance(state, dict) or not isinstance(src, str):
        raise CheckpointError("malformed persistent object in network pickle (bad class name or state)")
    version = meta.get("version")
    return PersistentObject(name, state, src, version if isinstance(version, int) else -1)


@dataclass
class TFNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network`` (legacy TensorFlow pickles): plain state."""

    state: dict[str, Any] = field(default_factory=dict)


@safe_call
def _new_tf_network(*args: Any) -> TFNetwork:
    if args:
        raise UnsafeCheckpointError("refused TF network construction with arguments")
    return TFNetwork()


def _build_tf_network(inst: TFNetwork, state: Any) -> TFNetwork:
    if not isinstance(state, dict):
        raise CheckpointError("malformed TensorFlow network state in pickle")
    inst.state = state
    return inst


ALLOWED = {
    **NUMPY_GLOBALS,
    **TORCH_GLOBALS,
    **COLLECTIONS_GLOBALS,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): dict,
    ("dnnlib", "EasyDict"): dict,
    ("torch.storage", "_load_from_bytes"): safe_call(read_legacy_stream),
    ("dnnlib.tflib.network", "Network"): _new_tf_network,
}
_BUILD_HOOKS = [(TFNetwork, _build_tf_network)]


def read_pickle(path: Path) -> Any:
    """Unpickle an NVlabs network pickle with the restricted unpickler (nothing is executed)."""
    if zipfile.is_zipfile(path):
        return torch_load(path)
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise CheckpointError("truncated or damaged zip file (a PyTorch zip checkpoint?)", path)
    with open(path, "rb") as f:
        try:
            return restricted_load(f, ALLOWED, build_hooks=_BUILD_HOOKS)
        except CheckpointError as e:
            raise type(e)(str(e), path) from None
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError, AttributeError,
                RuntimeError, OverflowError, UnicodeDecodeError, MemoryError) as e:  # fmt: skip
            what = "truncated" if isinstance(e, EOFError) or "exhausted" in str(e) else "damaged"
            raise CheckpointError(f"{what} network pickle ({_first_line(e)})", path) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


# --------------------------------------------------------------------------- records -> our networks


def plain(v: Any) -> Any:
    """Network kwargs as JSON-able Python values (numpy scalars/arrays and tuples converted)."""
    out = to_plain(v)
    try:
        json.dumps(out)
    except (TypeError, ValueError):
        raise CheckpointError("network kwargs hold something other than plain data") from None
    return out


def flat_state_dict(obj: PersistentObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """The flat ``state_dict`` of a persistent object tree (None entries and non-persistent buffers skipped)."""
    out: dict[str, torch.Tensor] = {}
    st = obj.state
    skip = st.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, t in (st.get(group) or {}).items():
            if t is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(t, torch.Tensor):
                raise CheckpointError(f"'{prefix}{name}' is a {type(t).__name__}, expected a tensor")
            out[prefix + name] = t.detach()
    for name, child in obj.children.items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise CheckpointError(f"sub-module '{prefix}{name}' is a {type(child).__name__}, expected a network record")
        out.update(flat_state_dict(child, f"{prefix}{name}."))
    return out


def identify(obj: PersistentObject) -> tuple[str, str]:
    """(registry name, family) of a network record: decided by class name and state, never code."""
    name = obj.class_name
    if name == "Generator":
        syn = obj.children.get("synthesis")
        syn_children = syn.children if isinstance(syn, PersistentObject) else {}
        if "input" in syn_children or "networks_stylegan3" in obj.module_src[:4096]:
            kw = obj.state.get("_init_kwargs") or {}
            radial = kw.get("conv_kernel") == 1 or bool(kw.get("use_radial_filters"))
            return "stylegan3-generator", "StyleGAN3-R" if radial else "StyleGAN3-T"
        if "b4" in syn_children:
            return "stylegan2-generator", "StyleGAN2-ADA"
    if name == "Discriminator" and "b4" in obj.children:
        return "stylegan2-discriminator", "StyleGAN2-ADA"
    raise CheckpointError(f"unsupported network class '{name}' in network pickle (expected StyleGAN2/3 networks)")


def to_network(obj: PersistentObject, role: str) -> tuple[nn.Module, str]:
    """Build our network for a record and load its tensors strictly; returns (net, family)."""
    arch, family = identify(obj)
    args, kwargs = obj.state.get("_init_args", ()), obj.state.get("_init_kwargs")
    if args or not isinstance(kwargs, dict):
        raise CheckpointError(f"network {role!r} has no keyword-only constructor arguments")
    kwargs = plain(kwargs)
    accepted = inspect.signature(ARCHS[arch]).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):  # drop speed-only switches ours lacks
        kwargs = {k: v for k, v in kwargs.items() if k not in _IGNORED_KWARGS or k in accepted}
    sd = flat_state_dict(obj)
    stored = sum(t.numel() * t.element_size() for t in sd.values())
    net = build_checked(arch, kwargs, None, stored, {k: tuple(v.shape) for k, v in sd.items()},
                        f"network {role!r} ({family})")
    ref = net.state_dict()
    net.load_state_dict({k: v.to(ref[k].dtype) for k, v in sd.items()}, strict=False)  # keys and shapes checked
    return net, family


def _layout(data: dict) -> str:
    """Which program wrote the dict, from its key order (see FORMATS.md)."""
    keys = [k for k in data if k in (*NET_ROLES, "training_set_kwargs", "augment_pipe")]
    if keys[:1] == ["training_set_kwargs"]:
        return "sg2-ada"  # stylegan2-ada-pytorch training loop
    if keys == ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs"]:
        return "sg3"  # stylegan3 training loop
    return "converted"  # e.g. legacy.py output of a TF pickle (G, D, G_ema[, None fields])


def _load(path: Path) -> Checkpoint:
    data = read_pickle(path)
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data):
        return convert_tf_pickle(data, path)
    if not isinstance(data, dict) or not any(isinstance(data.get(r), PersistentObject) for r in NET_ROLES):
        what = type(data).__name__ if not isinstance(data, dict) else f"dict with keys {sorted(map(str, data))[:5]}"
        raise CheckpointError(f"not an NVlabs network pickle (holds a {what}, no G/D/G_ema networks)", path)
    nets: dict[str, nn.Module] = {}
    families: dict[str, str] = {}
    classes = {r: data[r].class_name for r in NET_ROLES if isinstance(data.get(r), PersistentObject)}
    layout = _layout(data)
    for role in ("G_ema", "G", "D"):
        obj = data.pop(role, None)  # dropped once converted: the records' tensors are freed as we go
        if obj is None:
            continue
        if not isinstance(obj, PersistentObject):
            raise CheckpointError(f"'{role}' is a {type(obj).__name__}, expected a network", path)
        try:
            nets[role], families[role] = to_network(obj, role)
        except CheckpointError as e:
            raise CheckpointError(str(e), path) from None
        del obj
    family = families.get("G_ema") or families.get("G") or families["D"]
    if family == "StyleGAN2-ADA" and layout != "sg2-ada":
        family = "StyleGAN2"  # e.g. trained with the stylegan3 repository's 'stylegan2' config
    tsk = data.get("training_set_kwargs")
    aug = data.get("augment_pipe")
    meta = {
        "layout": layout,
        "family": family,
        "classes": {r: classes[r] for r in nets},
        "training_set_kwargs": _json_or_none(tsk),
        "augment_pipe": aug.class_name if isinstance(aug, PersistentObject) else None,
    }
    return Checkpoint(FORMAT_ID, f"NVlabs network pickle ({family})", nets, meta)


def _json_or_none(v: Any) -> Any:
    try:
        return plain(v)
    except CheckpointError:
        return None


def _sniff(path: Path, head: bytes) -> bool:
    if path.suffix.lower() == ".pkl":
        return True
    if head[:1] != b"\x80" or head[:4] == b"\x80\x02\x8a\x0a":  # the latter: a legacy torch.save file
        return False
    try:
        with open(path, "rb") as f:
            more = f.read(SNIFF_BYTES)
    except OSError:
        return False
    return b"torch_utils.persistence" in more or b"dnnlib" in more


READER = register_reader(FormatReader(FORMAT_ID, _sniff, _load))
