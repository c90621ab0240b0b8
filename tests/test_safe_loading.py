"""Damaged and malicious checkpoints: one-line errors, nothing executed (a payload would create MARKER)."""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import ganeditor.archs  # noqa: F401
from ganeditor.core.errors import CheckpointError, UnsafeCheckpointError
from ganeditor.formats import load_checkpoint
from writers.nvlabs_pkl_write import NVlabsPickler, _Global, _Persistent, module_record
from writers.nvlabs_pkl_write import write_storage_stream

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a payload was executed"


def _touch(marker: Path) -> str:
    return f"touch {marker}"


class _Reduce:
    """An object whose pickle calls ``func(*args)`` on load (pickling it runs nothing)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _gl(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _str(s: str) -> bytes:
    b = s.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(b)) + b


def _our_pickle(obj) -> bytes:
    f = io.BytesIO()
    NVlabsPickler(f).dump(obj)
    return f.getvalue()


def _expect(path: Path, cls=CheckpointError, match: str = "") -> str:
    with pytest.raises(cls, match=match) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg
    return msg


# --------------------------------------------------------------------------- damaged files


def test_missing_folder_empty(tmp_path):
    _expect(tmp_path / "nope.pkl", match="file not found")
    _expect(tmp_path, match="is a folder")
    (tmp_path / "empty.pkl").write_bytes(b"")
    _expect(tmp_path / "empty.pkl", match="empty file")


def test_truncated_pickle_and_zip(data_dir, tmp_path):
    data = (data_dir / "nvlabs_pkl" / "sg2ada_cond.pkl").read_bytes()
    for cut in (3, 1000, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.pkl").write_bytes(data[:cut])
        _expect(tmp_path / "cut.pkl", match="truncated|damaged")
    buf = io.BytesIO()
    torch.save({"w": torch.randn(64)}, buf)
    (tmp_path / "cut_zip.pkl").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    _expect(tmp_path / "cut_zip.pkl", match="truncated|damaged")


def test_unrelated_objects(tmp_path):
    import collections

    (tmp_path / "counter.pkl").write_bytes(pickle.dumps(collections.Counter("abc")))
    _expect(tmp_path / "counter.pkl", UnsafeCheckpointError, "refused to load global 'collections.Counter'")
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"a": 1, "b": [1, 2]}))
    _expect(tmp_path / "dict.pkl", match="not an NVlabs network pickle")
    (tmp_path / "int.pkl").write_bytes(pickle.dumps(42))
    _expect(tmp_path / "int.pkl", match="not an NVlabs network pickle")


def test_storage_declaring_more_than_it_holds(tmp_path):
    stream = bytearray(write_storage_stream(torch.zeros(4)))
    i = stream.index(b"K\x04N")  # numel 4 -> 200 million floats that are not there
    stream[i : i + 2] = b"J" + struct.pack("<i", 200_000_000)
    obj = {"G": _Persistent({"type": "class", "version": 6, "module_src": "", "class_name": "X", "state": {}}),
           "t": _Raw(_gl("torch.storage", "_load_from_bytes") + pickle.BINBYTES + struct.pack("<I", len(stream))
                     + bytes(stream) + pickle.TUPLE1 + pickle.REDUCE)}  # fmt: skip
    (tmp_path / "bomb.pkl").write_bytes(_our_pickle_raw(obj))
    _expect(tmp_path / "bomb.pkl", match="truncated|damaged")


@pytest.mark.parametrize("payload", [
    b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"abc",  # BINBYTES8 of 1 TiB
    b"\x80\x05\x96" + struct.pack("<Q", 1 << 34) + b"abc",  # BYTEARRAY8 of 16 GiB (would be zero-filled)
    b"\x80\x04\x8d" + struct.pack("<Q", 1 << 40) + b"x",  # BINUNICODE8
    b"\x80\x03B" + struct.pack("<I", 4_000_000_000) + b"x",  # BINBYTES of 4 GB
])  # fmt: skip
def test_declared_sizes_beyond_the_file_allocate_nothing(tmp_path, payload):
    (tmp_path / "big.pkl").write_bytes(payload)
    _expect(tmp_path / "big.pkl", match="truncated network pickle")


class _Raw:
    def __init__(self, code: bytes):
        self.code = code


def _our_pickle_raw(obj) -> bytes:
    class P(NVlabsPickler):
        dispatch = dict(NVlabsPickler.dispatch)

        def save_raw(self, o):
            self.write(o.code)

        dispatch[_Raw] = save_raw

    f = io.BytesIO()
    P(f).dump(obj)
    return f.getvalue()


# --------------------------------------------------------------------------- malicious pickles


@pytest.mark.parametrize("module,name,args", [
    ("os", "system", lambda m: (_touch(m),)),
    ("posix", "system", lambda m: (_touch(m),)),
    ("builtins", "eval", lambda m: (f"open({str(m)!r}, 'w')",)),
    ("builtins", "exec", lambda m: (f"open({str(m)!r}, 'w')",)),
    ("subprocess", "Popen", lambda m: (["touch", str(m)],)),
    ("torch", "load", lambda m: (str(m),)),
])  # fmt: skip
def test_global_call_refused(tmp_path, marker, module, name, args):
    payload = pickle.PROTO + b"\x02" + _gl(module, name) + pickle.dumps(args(marker), protocol=2)[2:-1] + pickle.REDUCE + pickle.STOP
    (tmp_path / "evil.pkl").write_bytes(payload)
    _expect(tmp_path / "evil.pkl", UnsafeCheckpointError, f"refused to load global '{module}.{name}' \\(not on the allow-list\\)")


def test_stack_global_inst_obj_newobj_refused(tmp_path, marker):
    cmd = _str(_touch(marker))
    payloads = {
        "os.system": pickle.PROTO + b"\x04" + _str("os") + _str("system") + pickle.STACK_GLOBAL + cmd + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP,
        "os.system ": b"(S'" + _touch(marker).encode() + b"'\nios\nsystem\n.",  # INST
        "posix.system": b"(" + _gl("posix", "system") + b"S'" + _touch(marker).encode() + b"'\no.",  # OBJ
        "subprocess.Popen": pickle.PROTO + b"\x02" + _gl("subprocess", "Popen") + pickle.EMPTY_TUPLE + pickle.NEWOBJ + pickle.STOP,
    }  # fmt: skip
    for name, payload in payloads.items():
        (tmp_path / "evil.pkl").write_bytes(payload)
        _expect(tmp_path / "evil.pkl", UnsafeCheckpointError, f"refused to load global '{name.strip()}'")


def test_allowed_names_cannot_be_misused(tmp_path, marker):
    cases = {  # payload -> what the refusal names
        # calling a non-callable stand-in (numpy.ndarray) via REDUCE, NEWOBJ and OBJ
        pickle.PROTO + b"\x02" + _gl("numpy", "ndarray") + pickle.EMPTY_TUPLE + pickle.REDUCE + pickle.STOP: "refused to call",
        pickle.PROTO + b"\x02" + _gl("numpy", "ndarray") + pickle.EMPTY_TUPLE + pickle.NEWOBJ + pickle.STOP: "refused to call",
        b"(" + _gl("torch", "FloatStorage") + b"o.": "refused to call",
        # BUILD on a network record (would set attributes)
        _our_pickle(_Persistent({"type": "class", "version": 6, "module_src": "", "class_name": "G", "state": {}}))[:-1]
        + pickle.EMPTY_DICT + pickle.BUILD + pickle.STOP: "refused to set the state",
        # SETITEM on a non-container (a dtype object)
        pickle.PROTO + b"\x02" + _gl("numpy", "dtype") + _str("f4") + pickle.TUPLE1 + pickle.REDUCE
        + _str("k") + _str("v") + pickle.SETITEM + pickle.STOP: "refused to add items",
        # copyreg extension registry
        pickle.PROTO + b"\x02" + pickle.EXT1 + b"\x01" + pickle.STOP: "refused pickle extension",
        # numpy object arrays / object scalars
        pickle.PROTO + b"\x02" + _gl("numpy", "dtype") + _str("O") + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP: "refused numpy dtype",
        # torch zip stream inside _load_from_bytes carrying a malicious pickle
        pickle.PROTO + b"\x02" + _gl("torch.storage", "_load_from_bytes") + pickle.BINBYTES + b"%s" + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP: "refused",
    }  # fmt: skip
    evil_zip = io.BytesIO()
    torch.save(_Reduce(os.system, _touch(marker)), evil_zip)
    for payload, match in cases.items():
        if b"%s" in payload:
            z = evil_zip.getvalue()
            payload = payload.replace(b"%s", struct.pack("<I", len(z)) + z)
        (tmp_path / "evil.pkl").write_bytes(payload)
        _expect(tmp_path / "evil.pkl", CheckpointError, match)


def test_nested_reduce_inside_persistent_state(tmp_path, marker):
    rec = module_record(torch.nn.Linear(2, 2))
    rec.meta["state"]["payload"] = _Reduce(os.system, _touch(marker))
    (tmp_path / "nested.pkl").write_bytes(_our_pickle({"G": rec, "D": None, "G_ema": rec}))
    _expect(tmp_path / "nested.pkl", UnsafeCheckpointError, r"refused to load global '(posix|os)\.system'")
    # inside a legacy torch stream's inner pickle
    stream = write_storage_stream(torch.zeros(2)).replace(b"ctorch\nFloatStorage\n", b"cposix\nsystem\n")
    raw = _Raw(_gl("torch.storage", "_load_from_bytes") + pickle.BINBYTES + struct.pack("<I", len(stream)) + stream
               + pickle.TUPLE1 + pickle.REDUCE)  # fmt: skip
    (tmp_path / "inner.pkl").write_bytes(_our_pickle_raw({"G_ema": raw}))
    _expect(tmp_path / "inner.pkl", UnsafeCheckpointError, "refused to load global 'posix.system'")


def test_malicious_module_src_is_never_executed(data_dir, tmp_path, marker):
    """The official loader would exec module_src; we read `state` only (loads fine, marker absent)."""
    from writers.nvlabs_pkl_write import save_nvlabs_pkl

    src = load_checkpoint(data_dir / "nvlabs_pkl" / "sg2ada_cond.pkl")
    code = f"import os\nos.system({_touch(marker)!r})\nclass Generator: pass\nclass Discriminator: pass\n"
    save_nvlabs_pkl(tmp_path / "src.pkl", src.nets, module_src=code)
    ckpt = load_checkpoint(tmp_path / "src.pkl")
    assert set(ckpt.nets) == {"G", "D", "G_ema"}
    # and with a broken state: a one-line error, still nothing run
    bad = _Persistent({"type": "class", "version": 6, "module_src": code, "class_name": "Generator", "state": {"_modules": {}}})
    (tmp_path / "bad.pkl").write_bytes(_our_pickle({"G": bad, "D": None, "G_ema": bad}))
    _expect(tmp_path / "bad.pkl", CheckpointError, "unsupported network class 'Generator'")
    bad.meta["state"] = "rm -rf /"
    (tmp_path / "bad2.pkl").write_bytes(_our_pickle({"G_ema": bad}))
    _expect(tmp_path / "bad2.pkl", CheckpointError, "malformed persistent object")


def test_malicious_torch_zip(tmp_path, marker):
    buf = io.BytesIO()
    torch.save({"G_ema": _Reduce(os.system, _touch(marker))}, buf)
    for name in ("evil.pkl", "evil.pt"):
        (tmp_path / name).write_bytes(buf.getvalue())
        assert zipfile.is_zipfile(tmp_path / name)
    _expect(tmp_path / "evil.pkl", UnsafeCheckpointError, r"refused to load global '(posix|os)\.system'")
    with pytest.raises(CheckpointError) as e:  # whichever reader takes .pt files must refuse as well
        load_checkpoint(tmp_path / "evil.pt")
    assert "\n" not in str(e.value)


@pytest.mark.skipif(not (REPO / "ganeditor" / "cli" / "info.py").exists(), reason="no `info` command yet")
def test_cli_info_exit_status_2(tmp_path, marker):
    payload = pickle.PROTO + b"\x02" + _gl("posix", "system") + _str(_touch(marker)) + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP
    (tmp_path / "evil.pkl").write_bytes(payload)
    env = dict(os.environ, OMP_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen")
    for target in (tmp_path / "evil.pkl", tmp_path / "missing.pkl"):
        r = subprocess.run([sys.executable, "-m", "ganeditor", "info", str(target)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and str(target) in lines[0], r.stderr
    assert "refused to load global 'posix.system'" in subprocess.run(
        [sys.executable, "-m", "ganeditor", "info", str(tmp_path / "evil.pkl")], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120).stderr  # fmt: skip
