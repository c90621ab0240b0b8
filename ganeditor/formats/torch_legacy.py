"""The legacy (non-zip) ``torch.save`` byte stream, as found inside NVlabs network pickles.

Each tensor storage in an NVlabs pickle is written as ``torch.storage._load_from_bytes(b)``
where ``b`` is a complete legacy stream: a pickle of the magic number, one of the protocol
version (1001), one of a sys-info dict, the main protocol-2 pickle whose persistent ids are
``('storage', torch.XxxStorage, key, location, numel, view_metadata)``, a pickle of the list of
storage keys, then per key an int64 element count and the raw little-endian bytes.

The tensor stand-ins (``TORCH_GLOBALS``: ``torch._utils._rebuild_*`` and ``torch.*Storage``) for
the restricted unpickler live here too.  ``read_legacy_stream`` parses a stream with the
restricted unpickler (no torch.load, no code);
(Its writer, used by the tests to make such files, is ``tests/writers/nvlabs_pkl_write.py``.)
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ganeditor.core.errors import CheckpointError, UnsafeCheckpointError
from ganeditor.core.safe_pickle import COLLECTIONS_GLOBALS, Key, charge, describe, restricted_load, safe_call
from ganeditor.formats.torch_load import torch_load

# --------------------------------------------------------------------------- tensor stand-ins


@dataclass(frozen=True)
class StorageType:
    """Stand-in for ``torch.FloatStorage`` & co.: only names an element dtype."""

    name: str
    dtype: torch.dtype


STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}


class LoadedStorage:
    """A storage read from a file: a flat 1-D tensor of ``dtype`` (filled by the reader)."""

    def __init__(self, flat: torch.Tensor):
        assert flat.dim() == 1
        self.flat = flat


def _as_storage(storage: Any) -> torch.Tensor:
    if isinstance(storage, LoadedStorage):
        return storage.flat
    if isinstance(storage, torch.storage.TypedStorage):  # from torch.load(weights_only=True)
        return torch.empty(0, dtype=storage.dtype).set_(storage._untyped_storage)
    raise UnsafeCheckpointError(f"refused tensor rebuild from {describe(storage)}")


def _int_tuple(v: Any, what: str) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)) and all(type(x) is int and x >= 0 for x in v):
        return tuple(v)
    raise UnsafeCheckpointError(f"refused tensor rebuild (bad {what})")


@safe_call
def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    """``torch._utils._rebuild_tensor_v2``: a strided view of a loaded storage."""
    flat = _as_storage(storage)
    if type(offset) is not int or offset < 0:
        raise UnsafeCheckpointError("refused tensor rebuild (bad offset)")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise UnsafeCheckpointError("refused tensor rebuild (size and stride differ in length)")
    numel = 1
    for s in size:
        numel *= s
    if numel > max(0, flat.numel() - offset) and all(s > 0 for s in size):
        raise UnsafeCheckpointError(
            f"refused tensor rebuild: a view of {numel:,} elements over a storage of {flat.numel():,} "
            "(an expansion by zero or overlapping strides)")
    t = flat.as_strided(size, stride, offset)  # torch checks the bounds
    if requires_grad is True and t.is_floating_point():
        t.requires_grad_(True)
    return t


@safe_call
def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
    """``torch._utils._rebuild_tensor_v3``: like v2 with an explicit dtype."""
    if not isinstance(dtype, torch.dtype):
        raise UnsafeCheckpointError("refused tensor rebuild (bad dtype)")
    flat = _as_storage(storage)
    if flat.dtype != dtype:
        flat = flat.view(torch.uint8).view(dtype)
    return _rebuild_tensor_v2(LoadedStorage(flat), offset, size, stride, requires_grad, hooks, metadata)


@safe_call
def _rebuild_parameter(data, requires_grad, hooks=None, state=None):
    """``torch._utils._rebuild_parameter[_with_state]``: wrap a tensor as ``nn.Parameter``."""
    if not isinstance(data, torch.Tensor):
        raise UnsafeCheckpointError(f"refused parameter rebuild from {describe(data)}")
    return torch.nn.Parameter(data.detach(), requires_grad=bool(requires_grad) and data.is_floating_point())


TORCH_GLOBALS: dict[Key, Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}
TORCH_GLOBALS.update({("torch", n): StorageType(n, d) for n, d in STORAGE_DTYPES.items()})
TORCH_GLOBALS.update(
    {("torch", n): getattr(torch, n) for n in ("float32", "float64", "float16", "bfloat16", "int64", "int32",
                                              "int16", "int8", "uint8", "bool", "complex64", "complex128")}
)




# --------------------------------------------------------------------------- the stream

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_NO_GLOBALS: dict = {}


class _StorageTable:
    """persistent_load for the main pickle: allocates storages, checked against the stream size."""

    def __init__(self, budget: int):
        self.budget = budget  # bytes left in the stream: no storage may claim more
        self.roots: dict[str, LoadedStorage] = {}
        self.views: dict[str, LoadedStorage] = {}

    def __call__(self, pid: Any) -> LoadedStorage:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise UnsafeCheckpointError(f"refused persistent id {str(pid)[:60]!r} in a torch stream")
        stype, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(stype, StorageType) or not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise ValueError("malformed storage reference in torch stream")
        root = self.roots.get(key)
        if root is None:
            nbytes = numel * torch.empty(0, dtype=stype.dtype).element_size()
            if nbytes > self.budget:
                raise EOFError("torch stream is shorter than the storages it declares")
            self.budget -= nbytes
            charge(nbytes, "tensor storages")
            root = self.roots[key] = LoadedStorage(torch.empty(numel, dtype=stype.dtype))
        if view is None:
            return root
        vkey, offset, size = view
        if vkey not in self.views:
            if not (type(offset) is int and type(size) is int and 0 <= offset and offset + size <= root.flat.numel()):
                raise ValueError("storage view out of bounds in torch stream")
            self.views[vkey] = LoadedStorage(root.flat[offset : offset + size])
        return self.views[vkey]


def read_legacy_stream(data: bytes) -> Any:
    """Parse a complete ``torch.save`` byte stream (legacy; zip goes to torch's weights-only load)."""
    if data[:4] == b"PK\x03\x04":
        try:
            return torch_load(bytes(data))
        except CheckpointError as e:
            raise UnsafeCheckpointError(f"refused embedded torch zip stream ({e})") from None
    f = io.BytesIO(data)
    if restricted_load(f, _NO_GLOBALS) != MAGIC_NUMBER:
        raise ValueError("embedded torch stream has a wrong magic number")
    if restricted_load(f, _NO_GLOBALS) != PROTOCOL_VERSION:
        raise ValueError("embedded torch stream has an unsupported protocol version")
    sys_info = restricted_load(f, _NO_GLOBALS)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ValueError("embedded torch stream is not little-endian")
    table = _StorageTable(len(data) - f.tell())
    result = restricted_load(f, {**TORCH_GLOBALS, **COLLECTIONS_GLOBALS}, table)
    keys = restricted_load(f, _NO_GLOBALS)
    if not isinstance(keys, list) or set(keys) != set(table.roots):
        raise ValueError("embedded torch stream lists other storages than it uses")
    for key in keys:
        flat = table.roots[key].flat
        head = f.read(8)
        if len(head) != 8:
            raise EOFError("truncated torch stream")
        (numel,) = struct.unpack("<q", head)
        if numel != flat.numel():
            raise ValueError("embedded torch stream: storage size does not match its declaration")
        nbytes = numel * flat.element_size()
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise EOFError("truncated torch stream")
        if nbytes:
            flat.view(torch.uint8).numpy()[:] = np.frombuffer(raw, dtype=np.uint8)
            if flat.dtype == torch.bool:
                flat.view(torch.uint8).clamp_(max=1)  # only 0/1 are valid bools
    return result
