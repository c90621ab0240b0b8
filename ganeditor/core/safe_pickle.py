"""Restricted unpickling: an explicit allow-list of globals, each mapped to a safe stand-in.

A pickle is a small program.  This unpickler runs it on the pure-Python interpreter of the
standard library with every opcode that can reach code replaced: ``GLOBAL``/``STACK_GLOBAL``/
``INST``/``EXT*`` only resolve names on the allow-list (to OUR stand-ins, never by importing),
``REDUCE``/``NEWOBJ``/``OBJ``/``INST`` only call stand-ins marked as safe, ``BUILD`` only sets
the state of a few known data types, and item/append opcodes only touch plain containers.
Anything else raises ``UnsafeCheckpointError`` naming what was refused; nothing is executed.

Work and memory are bounded by the file's size: every stand-in charges the bytes it produces (and
every container construction its items) to a budget of ``OUTPUT_EXPANSION`` x the pickle's size
+ ``OUTPUT_SLACK`` shared by nested loads, so a pickle that passes one memoised object to an allowed
global thousands of times is refused once it has produced that much; large strings are not kept in
the memo at all (tensor data is used once), so they cannot be re-used.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import io
import pickle
import struct
from typing import IO, Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from ganeditor.core.errors import UnsafeCheckpointError

_SAFE_CALL = "_ganeditor_safe_call"

Key = tuple[str, str]  # (module, name) as written in the pickle


def safe_call(fn: Callable) -> Callable:
    """Mark ``fn`` as callable by REDUCE/NEWOBJ when it is reached through the allow-list."""
    setattr(fn, _SAFE_CALL, True)
    return fn


def describe(obj: Any) -> str:
    """How a refusal names an object: its class, or the class of the instance."""
    if isinstance(obj, type):
        return f"class '{obj.__module__}.{obj.__qualname__}'"
    return f"object of type '{type(obj).__module__}.{type(obj).__qualname__}'"


OUTPUT_EXPANSION = 2  # bytes the stand-ins may produce per byte of pickle
OUTPUT_SLACK = 64 << 20


class Budget:
    """Bytes that stand-ins may still produce while one file is unpickled."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def charge(self, nbytes: int, what: str) -> None:
        self.used += max(0, int(nbytes))
        if self.used > self.limit:
            raise UnsafeCheckpointError(
                f"refused: {what} makes the data grow past {self.limit / 2**20:,.0f} MiB, "
                f"{OUTPUT_EXPANSION}x the file's size (+{OUTPUT_SLACK >> 20} MiB): an amplification attack?")


_BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("ganeditor_unpickle_budget", default=None)


def charge(nbytes: int, what: str) -> None:
    """Count ``nbytes`` produced by a stand-in against the budget of the load in progress (if any)."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(nbytes, what)


@contextlib.contextmanager
def output_budget(file_bytes: int) -> Iterator[Budget]:
    """The budget of the outermost load (nested loads share it)."""
    current = _BUDGET.get()
    if current is not None:
        yield current
        return
    token = _BUDGET.set(Budget(OUTPUT_EXPANSION * file_bytes + OUTPUT_SLACK))
    try:
        yield _BUDGET.get()
    finally:
        _BUDGET.reset(token)


def _refuse_global(module: str, name: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"refused to load global '{module}.{name}' (not on the allow-list): this file may contain code"
    )


# --------------------------------------------------------------------------- numpy stand-ins

_NUMPY_KINDS = set("biufc")  # bool, int, uint, float, complex: plain numbers only


def _check_np_dtype(dt: Any) -> np.dtype:
    if not isinstance(dt, np.dtype) or dt.hasobject or dt.kind not in _NUMPY_KINDS or dt.fields or dt.subdtype:
        raise UnsafeCheckpointError(f"refused numpy dtype {dt!r} (only plain numeric dtypes are allowed)")
    return dt


@safe_call
def _np_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """``numpy.dtype(spec, align, copy)`` for plain numeric type codes only."""
    if not isinstance(spec, str) or len(spec) > 8:
        raise UnsafeCheckpointError(f"refused numpy dtype {spec!r}")
    try:
        dt = np.dtype(spec, False, True)  # a copy: BUILD must never alter numpy's shared dtype objects
    except TypeError:
        raise UnsafeCheckpointError(f"refused numpy dtype {spec!r}") from None
    return _check_np_dtype(dt)


def _build_np_dtype(inst: np.dtype, state: Any) -> np.dtype:
    # state = (version, byteorder, subarray, names, fields, elsize, alignment, flags)
    if not (isinstance(state, tuple) and len(state) in (8, 9) and state[1] in ("<", ">", "|", "=")):
        raise UnsafeCheckpointError("refused numpy dtype state (not a plain dtype)")
    if state[2] is not None or state[3] is not None or state[4] is not None:
        raise UnsafeCheckpointError("refused numpy dtype state (structured or sub-array dtype)")
    if not all(isinstance(v, int) for v in (state[0], *state[5:])):
        raise UnsafeCheckpointError("refused numpy dtype state (bad field types)")
    inst.__setstate__(state)
    return inst


@safe_call
def _np_scalar(dtype: Any, data: Any) -> np.generic:
    """``numpy.core.multiarray.scalar(dtype, bytes)`` without object dtypes."""
    dt = _check_np_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dt.itemsize:
        raise UnsafeCheckpointError("refused numpy scalar (data is not raw bytes of the dtype's size)")
    charge(len(data) + 32, "numpy scalars")
    return np.frombuffer(data, dtype=dt)[0].copy()


class _NdarrayClass:
    """Stand-in for the class ``numpy.ndarray`` (only usable as ``_reconstruct``'s argument)."""


NDARRAY = _NdarrayClass()


@safe_call
def _np_reconstruct(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')``: an empty array to BUILD."""
    if cls is not NDARRAY:
        raise UnsafeCheckpointError(f"refused numpy _reconstruct of {describe(cls)}")
    return np.ndarray((0,), dtype=np.uint8)


def _build_ndarray(inst: np.ndarray, state: Any) -> np.ndarray:
    # state = (version, shape, dtype, is_fortran, raw bytes)
    if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
        raise UnsafeCheckpointError("refused numpy array state (unknown layout)")
    _, shape, dtype, fortran, raw = state
    dt = _check_np_dtype(dtype)
    if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)):
        raise UnsafeCheckpointError("refused numpy array state (bad shape)")
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
        raise UnsafeCheckpointError("refused numpy array state (data is not raw bytes of the right size)")
    charge(len(raw), "numpy arrays")
    inst.__setstate__((1, shape, dt, bool(fortran), bytes(raw)))
    return inst


@safe_call
def _np_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """``numpy.core.numeric._frombuffer`` (protocol-5 arrays) for plain numeric dtypes."""
    dt = _check_np_dtype(dtype)
    if isinstance(buf, pickle.PickleBuffer):
        buf = bytes(buf.raw())
    if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)) or order not in ("C", "F"):
        raise UnsafeCheckpointError("refused numpy array (bad shape or order)")
    if not isinstance(buf, (bytes, bytearray)) or len(buf) != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
        raise UnsafeCheckpointError("refused numpy array (data is not raw bytes of the right size)")
    charge(2 * len(buf), "numpy arrays")
    return np.frombuffer(bytes(buf), dtype=dt).reshape(shape, order=order).copy(order="K")


NUMPY_GLOBALS: dict[Key, Any] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    NUMPY_GLOBALS[(_mod, "scalar")] = _np_scalar
    NUMPY_GLOBALS[(_mod, "_reconstruct")] = _np_reconstruct
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    NUMPY_GLOBALS[(_mod, "_frombuffer")] = _np_frombuffer
NUMPY_GLOBALS[("numpy", "dtype")] = _np_dtype
NUMPY_GLOBALS[("numpy", "ndarray")] = NDARRAY


# --------------------------------------------------------------------------- builtins stand-ins


@safe_call
def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """``_codecs.encode(str, 'latin1')``: how protocol-2 pickles write ``bytes``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError("refused _codecs.encode with unexpected arguments")
    charge(len(text), "_codecs.encode")
    return text.encode("latin1")


COLLECTIONS_GLOBALS: dict[Key, Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _codecs_encode,
}


# --------------------------------------------------------------------------- the unpickler

_BIG_BYTES = 1 << 20
_DROPPED = object()  # what a GET of a dropped large byte string yields (no consumer accepts it)


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Pure-Python unpickler whose code-reaching opcodes only use the given allow-list."""

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(
        self,
        file: IO[bytes],
        allowed: Mapping[Key, Any],
        persistent_load: Callable[[Any], Any] | None = None,
        build_hooks: Iterable[tuple[type, Callable[[Any, Any], Any]]] = (),
    ):
        super().__init__(file, fix_imports=False, encoding="latin1")
        self._allowed = dict(allowed)
        self._persistent = persistent_load
        self._build_hooks = [(np.dtype, _build_np_dtype), (np.ndarray, _build_ndarray), *build_hooks]
        self._callable = {id(v) for v in self._allowed.values() if getattr(v, _SAFE_CALL, False)}
        self._classes = {id(v) for v in self._allowed.values() if v is dict or v is collections.OrderedDict}

    # -- names
    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except (KeyError, TypeError):
            raise _refuse_global(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise UnsafeCheckpointError("refused persistent id (this file kind has none)")
        return self._persistent(pid)

    # -- calls
    def _call(self, func: Any, args: Any, kwargs: Any = None) -> Any:
        if not isinstance(args, tuple) or not (kwargs is None or isinstance(kwargs, dict)):
            raise UnsafeCheckpointError("refused call with malformed arguments")
        if id(func) in self._callable:
            return func(*args, **(kwargs or {}))
        if id(func) in self._classes:
            if kwargs or any(not isinstance(a, (dict, list, tuple)) for a in args):
                raise UnsafeCheckpointError(f"refused construction of {describe(func)} from these arguments")
            charge(64 * (1 + sum(len(a) for a in args)), f"building {describe(func)} objects")
            return func(*args)
        raise UnsafeCheckpointError(f"refused to call {describe(func)} (not on the allow-list)")

    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        stack[-1] = self._call(stack[-1], args)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, args))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._call(cls, args, kwargs))

    def _instantiate(self, klass: Any, args: list) -> None:
        self.append(self._call(klass, tuple(args)))

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        for cls, hook in self._build_hooks:
            if isinstance(inst, cls):
                self.stack[-1] = hook(inst, state)
                return
        if isinstance(inst, collections.OrderedDict) and (state is None or isinstance(state, dict)):
            return  # e.g. a state_dict's `_metadata`: plain data we do not need
        raise UnsafeCheckpointError(f"refused to set the state of {describe(inst)}")

    def _refuse_extension(self) -> None:
        raise UnsafeCheckpointError("refused pickle extension code (copyreg registry): this file may contain code")

    # -- containers: only plain ones
    def _target(self, kinds: type | tuple[type, ...]) -> Any:
        obj = self.stack[-1]
        if not isinstance(obj, kinds):
            raise UnsafeCheckpointError(f"refused to add items to {describe(obj)}")
        return obj

    def load_append(self) -> None:
        value = self.stack.pop()
        self._target(list).append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._target(list).extend(items)

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._target(dict)[key] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self._target(dict)
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_additems(self) -> None:
        items = self.pop_mark()
        self._target(set).update(items)

    # -- memo: large byte strings (tensor data) are not kept alive by the memo, halving peak memory
    def _memo_value(self, v: Any) -> Any:
        if isinstance(v, tuple) and len(v) == 1:
            return _DROPPED if self._memo_value(v[0]) is _DROPPED else v
        return _DROPPED if isinstance(v, (bytes, bytearray, str)) and len(v) >= _BIG_BYTES else v

    def load_memoize(self) -> None:
        self.memo[len(self.memo)] = self._memo_value(self.stack[-1])

    def load_binput(self) -> None:
        self.memo[self.read(1)[0]] = self._memo_value(self.stack[-1])

    def load_long_binput(self) -> None:
        (i,) = struct.unpack("<I", self.read(4))
        self.memo[i] = self._memo_value(self.stack[-1])

    def load_bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        if n > self._file_left():
            raise EOFError("truncated pickle (byte array longer than the file)")
        b = bytearray(n)
        self.readinto(b)
        self.append(b)

    def _file_left(self) -> int:
        f = getattr(self._file_read, "__self__", None)
        frame = getattr(getattr(self, "_unframer", None), "current_frame", None)
        in_frame = len(frame.getbuffer()) - frame.tell() if frame is not None else 0
        return (f.left() if isinstance(f, _Bounded) else 1 << 62) + in_frame

    O = pickle  # opcode table
    dispatch[O.BYTEARRAY8[0]] = load_bytearray8
    dispatch[O.MEMOIZE[0]] = load_memoize
    dispatch[O.BINPUT[0]] = load_binput
    dispatch[O.LONG_BINPUT[0]] = load_long_binput
    dispatch[O.REDUCE[0]] = load_reduce
    dispatch[O.NEWOBJ[0]] = load_newobj
    dispatch[O.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[O.BUILD[0]] = load_build
    dispatch[O.EXT1[0]] = dispatch[O.EXT2[0]] = dispatch[O.EXT4[0]] = _refuse_extension
    dispatch[O.APPEND[0]] = load_append
    dispatch[O.APPENDS[0]] = load_appends
    dispatch[O.SETITEM[0]] = load_setitem
    dispatch[O.SETITEMS[0]] = load_setitems
    dispatch[O.ADDITEMS[0]] = load_additems
    del O


class _Bounded:
    """A file view whose reads never ask for more than what is left (no allocation bombs)."""

    def __init__(self, f: IO[bytes]):
        self.f = f
        pos = f.tell()
        self.end = f.seek(0, io.SEEK_END)
        f.seek(pos)

    def left(self) -> int:
        return max(0, self.end - self.f.tell())

    def read(self, n: int = -1) -> bytes:
        return self.f.read() if n is None or n < 0 else self.f.read(min(n, self.left()))

    def readline(self) -> bytes:
        return self.f.readline()

    def readinto(self, b: Any) -> int:
        return self.f.readinto(b)


def restricted_load(
    data: bytes | IO[bytes],
    allowed: Mapping[Key, Any],
    persistent_load: Callable[[Any], Any] | None = None,
    build_hooks: Iterable[tuple[type, Callable[[Any, Any], Any]]] = (),
) -> Any:
    """Unpickle one object from ``data`` (bytes or a binary file) using only ``allowed`` globals."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    bounded = _Bounded(f)
    try:
        with output_budget(bounded.left()):
            return RestrictedUnpickler(bounded, allowed, persistent_load, build_hooks).load()
    except KeyError as e:  # the pure-Python dispatch table has no entry for this byte
        raise pickle.UnpicklingError(f"invalid pickle opcode {e.args[0]!r}") from None
    except struct.error as e:
        raise EOFError(f"truncated pickle ({e})") from None
