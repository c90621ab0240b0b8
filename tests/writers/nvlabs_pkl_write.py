"""Test-only writer (not part of the app): networks as an NVlabs network pickle (the layout their training loop writes).

Every ``nn.Module`` becomes a ``torch_utils.persistence`` object: GLOBAL
``torch_utils.persistence._reconstruct_persistent_obj``, a 1-tuple holding ``meta``, REDUCE, with
``meta = {type, version: 6, module_src, class_name, state}``.  ``state`` mirrors ``Module.__dict__``
(``_parameters``, ``_buffers``, ``_modules``, empty hook dicts, plain attributes, ``_init_args``,
``_init_kwargs``).  Tensors are ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` over
``torch.storage._load_from_bytes(<legacy torch.save stream>)``.  ``module_src`` is a short
placeholder of ours: the NVlabs loader needs the original source to run these networks, which
we do not ship; GAN Editor reads the file without it.
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.atomic import atomic_write
from ganeditor.formats.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION, STORAGE_DTYPES

PLACEHOLDER_SRC = (
    "# This network pickle was written by GAN Editor. It stores the weights, buffers, attributes and\n"
    "# constructor arguments of each network in the NVlabs layout, but not the network's Python source.\n"
    "# GAN Editor reads it without running any code. To use it with the NVlabs tools, rebuild the\n"
    "# networks from `init_kwargs` with their source and copy the parameters and buffers over.\n"
)
_TORCH_MODULE_DICTS = (  # Module.__dict__ entries of torch 2.x, written empty (hooks are code: never written)
    "_backward_pre_hooks", "_backward_hooks", "_is_full_backward_hook", "_forward_hooks",
    "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs", "_state_dict_hooks", "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks",
)  # fmt: skip
_SKIP_ATTRS = {"training", "init_kwargs", "init_args", "arch_name"}
LAYOUTS = {
    "sg2-ada": ("training_set_kwargs", "G", "D", "G_ema", "augment_pipe"),
    "sg3": ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs"),
}


class _Global:
    """A global name to emit (module, name) without importing it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


RECONSTRUCT = _Global("torch_utils.persistence", "_reconstruct_persistent_obj")
EASYDICT = _Global("dnnlib.util", "EasyDict")
ORDERED_DICT = _Global("collections", "OrderedDict")
REBUILD_TENSOR = _Global("torch._utils", "_rebuild_tensor_v2")
REBUILD_PARAMETER = _Global("torch._utils", "_rebuild_parameter")
LOAD_FROM_BYTES = _Global("torch.storage", "_load_from_bytes")


class _EasyDict(dict):
    """Pickled as ``dnnlib.util.EasyDict`` (NEWOBJ + items), as NVlabs' nested kwargs are."""


class _Persistent:
    def __init__(self, meta: dict[str, Any]):
        self.meta = meta


class _Storage:
    def __init__(self, t: torch.Tensor):
        self.t = t


def _plain_data(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, float, str, np.generic, torch.dtype)):
        return not isinstance(v, np.generic) or not v.dtype.hasobject
    if isinstance(v, np.ndarray):
        return not v.dtype.hasobject
    if isinstance(v, torch.Tensor):
        return True
    if isinstance(v, (list, tuple, set, frozenset)):
        return all(_plain_data(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, (str, int)) and _plain_data(x) for k, x in v.items())
    return False


def _easy(v: Any) -> Any:
    return _EasyDict({k: _easy(x) for k, x in v.items()}) if isinstance(v, dict) else v


def module_record(m: nn.Module, module_src: str | Callable[[nn.Module], str] = PLACEHOLDER_SRC) -> _Persistent:
    """The persistent-object record NVlabs writes for module ``m`` (children recursively)."""
    state: dict[str, Any] = {"training": False}
    state["_parameters"] = {k: v for k, v in m._parameters.items()}
    state["_buffers"] = {k: v for k, v in m._buffers.items()}
    state["_non_persistent_buffers_set"] = set(m._non_persistent_buffers_set)
    for key in _TORCH_MODULE_DICTS:
        state[key] = None if key == "_is_full_backward_hook" else collections.OrderedDict()
    state["_modules"] = {k: None if c is None else module_record(c, module_src) for k, c in m._modules.items()}
    for key, v in m.__dict__.items():
        if key.startswith("_") or key in _SKIP_ATTRS or key in state or not _plain_data(v):
            continue  # private/torch internals, and anything that is not data (functions...)
        state[key] = v
    kwargs = getattr(m, "init_kwargs", None)
    state["_init_args"] = ()
    state["_init_kwargs"] = {k: _easy(v) for k, v in kwargs.items()} if isinstance(kwargs, dict) else {}
    src = module_src(m) if callable(module_src) else module_src
    meta = {"type": "class", "version": 6, "module_src": src, "class_name": type(m).__name__, "state": state}
    return _Persistent(meta)


class NVlabsPickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pure-Python pickler (protocol 4) emitting NVlabs/torch global names for our stand-ins."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, f: Any):
        super().__init__(f, protocol=4)

    def save_global_token(self, obj: _Global, name: Any = None) -> None:
        self.save(obj.module)
        self.save(obj.name)
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)

    def _save_call(self, func: _Global, args: tuple, obj: Any) -> None:
        self.save(func)
        self.save(args)
        self.write(pickle.REDUCE)
        self.memoize(obj)

    def save_persistent(self, obj: _Persistent) -> None:
        self._save_call(RECONSTRUCT, (obj.meta,), obj)

    def save_easydict(self, obj: _EasyDict) -> None:
        self.save(EASYDICT)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self._batch_setitems(iter(obj.items()))

    def save_ordered_dict(self, obj: collections.OrderedDict) -> None:
        self._save_call(ORDERED_DICT, (), obj)
        self._batch_setitems(iter(obj.items()))

    def save_storage(self, obj: _Storage) -> None:
        self._save_call(LOAD_FROM_BYTES, (write_storage_stream(obj.t),), obj)

    def save_tensor(self, t: torch.Tensor) -> None:
        if isinstance(t, nn.Parameter):
            self._save_call(REBUILD_PARAMETER, (t.data, False, collections.OrderedDict()), t)
            return
        data = t.detach().to("cpu").contiguous().clone()
        args = (_Storage(data), 0, tuple(data.shape), tuple(data.stride()), False, collections.OrderedDict())
        self._save_call(REBUILD_TENSOR, args, t)

    dispatch[_Global] = save_global_token
    dispatch[_Persistent] = save_persistent
    dispatch[_EasyDict] = save_easydict
    dispatch[collections.OrderedDict] = save_ordered_dict
    dispatch[_Storage] = save_storage
    dispatch[torch.Tensor] = save_tensor
    dispatch[nn.Parameter] = save_tensor


def save_nvlabs_pkl(
    path: str | Path,
    nets: dict[str, nn.Module],
    layout: str = "sg2-ada",
    training_set_kwargs: dict[str, Any] | None = None,
    module_src: str | Callable[[nn.Module], str] = PLACEHOLDER_SRC,
) -> None:
    """Write ``nets`` (roles 'G', 'D', 'G_ema'; 'G' defaults to 'G_ema') as an NVlabs network pickle."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    unknown = set(nets) - {"G", "D", "G_ema"}
    if unknown or "G_ema" not in nets:
        raise ValueError(f"nets must hold 'G_ema' (and optionally 'G', 'D'); got {sorted(nets)}")
    records: dict[str, Any] = {}
    for role in ("G", "D", "G_ema"):
        net = nets.get(role, nets["G_ema"] if role == "G" else None)
        records[role] = None if net is None else records.get(id(net)) or module_record(net, module_src)
        records[id(net)] = records[role]  # one record per network object, as pickle's memo would do
    data = {
        "training_set_kwargs": dict(training_set_kwargs) if training_set_kwargs is not None else None,
        "augment_pipe": None,
        **{r: records[r] for r in ("G", "D", "G_ema")},
    }
    with atomic_write(path) as f:
        NVlabsPickler(f).dump({k: data[k] for k in LAYOUTS[layout]})


def records_from_loaded(obj: Any, module_src: str = PLACEHOLDER_SRC, _in_kwargs: bool = False) -> Any:
    """A loaded pickle tree (``PersistentObject``s) made writable again, with ``module_src`` replaced."""
    from ganeditor.formats.nvlabs_pkl import PersistentObject

    if isinstance(obj, PersistentObject):
        state = {k: records_from_loaded(v, module_src, k == "_init_kwargs") for k, v in obj.state.items()}
        return _Persistent({"type": "class", "version": obj.version, "module_src": module_src,
                            "class_name": obj.class_name, "state": state})  # fmt: skip
    if isinstance(obj, dict):
        items = {k: records_from_loaded(v, module_src) for k, v in obj.items()}
        if _in_kwargs:  # nested constructor kwargs were EasyDicts
            return {k: _easy(v) for k, v in items.items()}
        return type(obj)(items) if isinstance(obj, collections.OrderedDict) else items
    if isinstance(obj, (list, tuple, set)):
        return type(obj)(records_from_loaded(v, module_src) for v in obj)
    return obj


def strip_code(src: str | Path, dst: str | Path) -> None:
    """Re-write an NVlabs network pickle without the Python source it carries (read safely)."""
    from ganeditor.formats.nvlabs_pkl import read_pickle

    data = read_pickle(Path(src))
    with atomic_write(dst) as f:
        NVlabsPickler(f).dump(records_from_loaded(data))


# --------------------------------------------------------------------------- legacy torch.save streams

_STORAGE_NAMES = {dtype: name for name, dtype in STORAGE_DTYPES.items() if name != "UntypedStorage"}


def _pickle_int(n: int) -> bytes:
    if 0 <= n < 256:
        return pickle.BININT1 + bytes([n])
    if 0 <= n < 65536:
        return pickle.BININT2 + struct.pack("<H", n)
    if -(2**31) <= n < 2**31:
        return pickle.BININT + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return pickle.LONG1 + bytes([len(raw)]) + raw


def _unicode(s: str) -> bytes:
    b = s.encode("utf-8")
    return pickle.BINUNICODE + struct.pack("<I", len(b)) + b


def write_storage_stream(t: torch.Tensor, key: str = "0") -> bytes:
    """The legacy ``torch.save`` stream of the storage of a contiguous CPU tensor (whole storage = t)."""
    assert t.device.type == "cpu" and t.is_contiguous() and t.storage_offset() == 0
    name = _STORAGE_NAMES[t.dtype]
    numel = t.numel()
    sys_info = {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}  # fmt: skip
    main = (
        pickle.PROTO + b"\x02" + pickle.MARK + _unicode("storage") + pickle.GLOBAL + f"torch\n{name}\n".encode()
        + _unicode(key) + _unicode("cpu") + _pickle_int(numel) + pickle.NONE + pickle.TUPLE
        + pickle.BINPERSID + pickle.STOP
    )  # fmt: skip
    raw = t.detach().reshape(-1).view(torch.uint8).numpy().tobytes() if numel else b""
    return b"".join([
        pickle.dumps(MAGIC_NUMBER, protocol=2),
        pickle.dumps(PROTOCOL_VERSION, protocol=2),
        pickle.dumps(sys_info, protocol=2),
        main,
        pickle.dumps([key], protocol=2),
        struct.pack("<q", numel),
        raw,
    ])  # fmt: skip
