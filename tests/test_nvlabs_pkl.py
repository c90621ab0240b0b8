"""NVlabs network pickles: safe reader against goldens of the original code, writer, legacy torch stream.

Test data (tests/data/nvlabs_pkl, see its README): tiny random networks made with the original
NVlabs code, re-written in the official layout by our writer (no NVlabs source inside), and the
original code's outputs on those weights.
"""

from __future__ import annotations

import collections
import importlib
import json
import pickle
import pickletools
import re

import numpy as np
import pytest
import torch
import torch.nn as nn

import ganeditor.archs  # noqa: F401
from ganeditor.core.errors import CheckpointError
from ganeditor.core.safe_pickle import COLLECTIONS_GLOBALS, NUMPY_GLOBALS, restricted_load
from ganeditor.formats import load_checkpoint, sniff
from ganeditor.formats.nvlabs_pkl import ALLOWED, PersistentObject, read_pickle
from writers.nvlabs_pkl_write import module_record, save_nvlabs_pkl
from ganeditor.formats.torch_legacy import TORCH_GLOBALS, read_legacy_stream
from writers.nvlabs_pkl_write import write_storage_stream

for _mod in ("stylegan2", "stylegan2_disc", "stylegan3"):  # registered by archs/__init__ once integrated
    try:
        importlib.import_module(f"ganeditor.archs.{_mod}")
    except ImportError:
        pass

# (file stem, format name, layout of the top-level dict, roles)
SG2_CASES = [
    ("sg2ada_cond", "NVlabs network pickle (StyleGAN2-ADA)", "sg2-ada"),
    ("sg3repo_stylegan2", "NVlabs network pickle (StyleGAN2)", "sg3"),
]
SG3_CASES = [
    ("sg3_t", "NVlabs network pickle (StyleGAN3-T)", "sg3"),
    ("sg3_r", "NVlabs network pickle (StyleGAN3-R)", "sg3"),
]


def _cases():
    from ganeditor.archs import ARCHS

    cases = list(SG2_CASES)
    if "stylegan3-generator" in ARCHS:
        cases += SG3_CASES
    return cases


CASES = _cases()


def scan_pickle(data: bytes) -> tuple[set[str], set[str]]:
    """(global names, opcode names) a pickle uses; STACK_GLOBAL names resolved through the memo."""
    ops, names, memo, pushed = set(), set(), {}, []
    for op, arg, _ in pickletools.genops(data):
        ops.add(op.name)
        val = None
        if op.name == "GLOBAL":
            val = arg.replace(" ", ".")
            names.add(val)
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            val = arg
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            val = memo.get(arg)
        elif op.name == "STACK_GLOBAL":
            val = f"{pushed[-2]}.{pushed[-1]}"
            names.add(val)
        if op.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1]
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = pushed[-1]
        else:
            pushed.append(val)
    return names, ops


@pytest.mark.parametrize("stem,format_name,layout", CASES)
def test_reader_matches_original_outputs(data_dir, stem, format_name, layout):
    ckpt = load_checkpoint(data_dir / "nvlabs_pkl" / f"{stem}.pkl")
    gold = np.load(data_dir / "nvlabs_pkl" / f"{stem}_golden.npz")
    assert ckpt.format_id == "nvlabs-pkl"
    assert ckpt.format_name == format_name
    assert list(ckpt.nets) == ["G_ema", "G", "D"] and ckpt.primary_role == "G_ema"
    assert ckpt.meta["layout"] == layout
    assert ckpt.meta["training_set_kwargs"]["class_name"] == "training.dataset.ImageFolderDataset"
    G, D = ckpt.nets["G_ema"], ckpt.nets["D"]
    z, c = torch.from_numpy(gold["z"]), torch.from_numpy(gold["c"])
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7)
        img = G.synthesis(ws, noise_mode="const")
        logits = D(img, c)
    np.testing.assert_allclose(ws.numpy(), gold["ws"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(img.numpy(), gold["img"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(logits.numpy(), gold["logits"], rtol=0, atol=1e-4)
    assert not torch.equal(ckpt.nets["G"].mapping.fc0.weight, G.mapping.fc0.weight)  # G differs from G_ema


@pytest.mark.parametrize("stem,format_name,layout", CASES)
def test_writer_round_trip_and_layout(data_dir, tmp_path, stem, format_name, layout):
    src = load_checkpoint(data_dir / "nvlabs_pkl" / f"{stem}.pkl")
    for out_layout, order in (("sg2-ada", ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]),
                              ("sg3", ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs"])):  # fmt: skip
        out = tmp_path / f"{out_layout}.pkl"
        save_nvlabs_pkl(out, src.nets, out_layout, src.meta["training_set_kwargs"])
        raw = read_pickle(out)
        assert list(raw) == order and raw["augment_pipe"] is None
        assert isinstance(raw["G_ema"], PersistentObject) and raw["G_ema"].version == 6
        assert raw["G_ema"].state["_init_kwargs"] == src.nets["G_ema"].init_kwargs
        back = load_checkpoint(out)
        sg2 = "StyleGAN2-ADA" if out_layout == "sg2-ada" else "StyleGAN2"
        assert back.format_name == (format_name if "StyleGAN3" in format_name else f"NVlabs network pickle ({sg2})")
        for role, net in src.nets.items():
            a, b = net.state_dict(), back.nets[role].state_dict()
            assert list(a) == list(b)
            assert all(torch.equal(a[k], b[k]) for k in a), role
            assert back.nets[role].init_kwargs == net.init_kwargs
    # generator only: 'G' is the same network record as 'G_ema', 'D' is None
    save_nvlabs_pkl(tmp_path / "g_only.pkl", {"G_ema": src.nets["G_ema"]}, layout)
    raw = read_pickle(tmp_path / "g_only.pkl")
    assert raw["G"] is raw["G_ema"] and raw["D"] is None and raw["training_set_kwargs"] is None
    assert list(load_checkpoint(tmp_path / "g_only.pkl").nets) == ["G_ema", "G"]
    # written twice -> identical bytes (deterministic storage keys, no addresses)
    save_nvlabs_pkl(tmp_path / "again.pkl", src.nets, layout, src.meta["training_set_kwargs"])
    save_nvlabs_pkl(tmp_path / "again2.pkl", src.nets, layout, src.meta["training_set_kwargs"])
    assert (tmp_path / "again.pkl").read_bytes() == (tmp_path / "again2.pkl").read_bytes()


@pytest.mark.parametrize("stem,format_name,layout", CASES)
def test_writer_uses_exactly_the_originals_globals_and_opcodes(data_dir, tmp_path, stem, format_name, layout):
    seen = json.loads((data_dir / "nvlabs_pkl" / "original_pickle_opcodes.json").read_text())[stem]
    committed_names, committed_ops = scan_pickle((data_dir / "nvlabs_pkl" / f"{stem}.pkl").read_bytes())
    src = load_checkpoint(data_dir / "nvlabs_pkl" / f"{stem}.pkl")
    save_nvlabs_pkl(tmp_path / "w.pkl", src.nets, layout, src.meta["training_set_kwargs"])
    names, ops = scan_pickle((tmp_path / "w.pkl").read_bytes())
    assert names == set(seen["globals"]) == committed_names
    assert ops == set(seen["opcodes"]) == committed_ops


def test_placeholder_module_src_and_no_hooks(data_dir):
    raw = read_pickle(data_dir / "nvlabs_pkl" / "sg2ada_cond.pkl")
    g = raw["G_ema"]
    assert g.module_src.startswith("# This network pickle was written by GAN Editor")
    assert "import" not in g.module_src and "def " not in g.module_src
    assert all(len(v) == 0 for k, v in g.state.items() if k.endswith("_hooks"))
    fc = g.children["mapping"].children["fc0"]
    assert fc.class_name == "FullyConnectedLayer" and isinstance(fc.state["weight_gain"], np.float64)


def test_unknown_class_is_one_line_error(tmp_path):
    class Foo(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

    save_nvlabs_pkl(tmp_path / "foo.pkl", {"G_ema": Foo()})
    with pytest.raises(CheckpointError, match=r"unsupported network class 'Foo'") as e:
        load_checkpoint(tmp_path / "foo.pkl")
    assert "\n" not in str(e.value) and "foo.pkl" in str(e.value)
    assert module_record(Foo()).meta["state"]["_modules"]["lin"].meta["class_name"] == "Linear"


def test_sniff_by_content_and_suffix(data_dir, tmp_path):
    data = (data_dir / "nvlabs_pkl" / "sg2ada_cond.pkl").read_bytes()
    (tmp_path / "snapshot.bin").write_bytes(data)
    assert sniff(tmp_path / "snapshot.bin").format_id == "nvlabs-pkl"
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle at all")
    assert sniff(tmp_path / "junk.pkl").format_id == "nvlabs-pkl"
    with pytest.raises(CheckpointError, match="damaged network pickle"):
        load_checkpoint(tmp_path / "junk.pkl")


def test_reads_what_torch_and_numpy_pickle_themselves():
    """Tensors/parameters/numpy values pickled by torch's and numpy's own reductions, incl. views."""
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    obj = {
        "t": base.t()[1:],  # non-contiguous view with a storage offset
        "h": torch.randn(5).half(),
        "b": torch.tensor([True, False]),
        "i": torch.arange(3),
        "bf": torch.randn(4).bfloat16(),
        "p": nn.Parameter(torch.randn(2, 2)),
        "s": torch.tensor(3.5),
        "big": torch.randn(300_000),  # > 1 MiB: its bytes are not kept in the memo
        "f": np.float64(0.25),
        "flag": np.bool_(True),
        "a": np.arange(6, dtype=np.int32).reshape(2, 3),
        "od": collections.OrderedDict(x=1),
    }
    allowed = {**TORCH_GLOBALS, **NUMPY_GLOBALS, **COLLECTIONS_GLOBALS,
               ("torch.storage", "_load_from_bytes"): ALLOWED[("torch.storage", "_load_from_bytes")]}  # fmt: skip
    for proto in (2, 4, 5):
        back = restricted_load(pickle.dumps(obj, protocol=proto), allowed)
        for k in ("t", "h", "b", "i", "bf", "s", "big"):
            assert back[k].dtype == obj[k].dtype and torch.equal(back[k], obj[k]), k
        assert back["t"].stride() == obj["t"].stride()
        assert isinstance(back["p"], nn.Parameter) and torch.equal(back["p"], obj["p"])
        assert back["f"] == 0.25 and type(back["f"]) is np.float64 and back["flag"] is np.True_
        assert back["a"].dtype == np.int32 and np.array_equal(back["a"], obj["a"])
        assert back["od"] == {"x": 1}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64,
                                   torch.int32, torch.uint8, torch.int8, torch.bool])  # fmt: skip
def test_legacy_storage_stream_both_ways(dtype):
    t = (torch.randn(2, 3) * 50).to(dtype)
    torch_stream = torch.storage.TypedStorage(wrap_storage=t.untyped_storage(), dtype=dtype, _internal=True).__reduce__()[1][0]
    assert torch.equal(read_legacy_stream(torch_stream).flat, t.reshape(-1))  # torch's bytes -> our parser
    ours = write_storage_stream(t.reshape(-1))
    back = torch.storage._load_from_bytes(ours)  # our bytes -> torch's own loader (no foreign code involved)
    assert torch.equal(torch.empty(0, dtype=dtype).set_(back._untyped_storage), t.reshape(-1))
    assert torch.equal(read_legacy_stream(ours).flat, t.reshape(-1))


# TF static_kwargs describing the tiny sg2ada_cond networks (TF names; fmap_base is half channel_base)
TF_STATIC = {
    "G": dict(latent_size=16, label_size=2, dlatent_size=16, resolution=16, num_channels=3, mapping_layers=2,
              fmap_base=128, fmap_max=16, num_fp16_res=4, conv_clamp=256, architecture="skip", truncation_psi=0.5),
    "D": dict(label_size=2, resolution=16, num_channels=3, architecture="resnet", fmap_base=128, fmap_max=16,
              num_fp16_res=4, conv_clamp=256, mapping_layers=8, mapping_lrmul=0.01, mbstd_group_size=4),
}  # fmt: skip


def test_legacy_tf_pickle_round_trip(data_dir, tmp_path):
    from writers.nvlabs_tf_write import save_tf_pickle

    src = load_checkpoint(data_dir / "nvlabs_pkl" / "sg2ada_cond.pkl")
    static = {"G": TF_STATIC["G"], "G_ema": TF_STATIC["G"], "D": TF_STATIC["D"]}
    save_tf_pickle(tmp_path / "tf.pkl", src.nets, static)
    names, _ = scan_pickle((tmp_path / "tf.pkl").read_bytes())
    assert "dnnlib.tflib.network.Network" in names and "torch_utils.persistence._reconstruct_persistent_obj" not in names
    ckpt = load_checkpoint(tmp_path / "tf.pkl")
    assert ckpt.format_name == "NVlabs network pickle (StyleGAN2, TensorFlow)" and list(ckpt.nets) == ["G_ema", "G", "D"]
    assert ckpt.nets["G_ema"].init_kwargs["synthesis_kwargs"]["channel_base"] == 256
    for role, net in src.nets.items():
        a, b = net.state_dict(), ckpt.nets[role].state_dict()
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a), role
    gold = np.load(data_dir / "nvlabs_pkl" / "sg2ada_cond_golden.npz")
    with torch.no_grad():
        img = ckpt.nets["G_ema"](torch.from_numpy(gold["z"]), torch.from_numpy(gold["c"]), truncation_psi=0.7, noise_mode="const")
    np.testing.assert_allclose(img.numpy(), gold["img"], rtol=0, atol=1e-4)
    static["D"] = dict(TF_STATIC["D"], unknown_knob=1)
    save_tf_pickle(tmp_path / "tf_bad.pkl", src.nets, static)
    with pytest.raises(CheckpointError, match="unknown TensorFlow network setting 'unknown_knob'"):
        load_checkpoint(tmp_path / "tf_bad.pkl")


@pytest.mark.parametrize("stem,family", [("sg3_t", "StyleGAN3-T"), ("sg3_r", "StyleGAN3-R"), ("sg2ada_cond", "StyleGAN2-ADA")])
def test_records_identify_and_keep_original_globals(data_dir, tmp_path, stem, family):
    """Without building networks: family detection, numpy attributes, and code-free re-writing."""
    from ganeditor.formats.nvlabs_pkl import identify
    from writers.nvlabs_pkl_write import strip_code

    path = data_dir / "nvlabs_pkl" / f"{stem}.pkl"
    raw = read_pickle(path)
    assert identify(raw["G_ema"])[1] == family and identify(raw["D"])[0] == "stylegan2-discriminator"
    seen = json.loads((data_dir / "nvlabs_pkl" / "original_pickle_opcodes.json").read_text())[stem]
    assert scan_pickle(path.read_bytes()) == (set(seen["globals"]), set(seen["opcodes"]))
    strip_code(path, tmp_path / "a.pkl")
    assert (tmp_path / "a.pkl").read_bytes() == path.read_bytes()  # code-free re-write is a fixed point
    if family.startswith("StyleGAN3"):
        layer = raw["G_ema"].children["synthesis"].children["L0_36_16" if family.endswith("T") else "L0_36_32"]
        assert isinstance(layer.state["in_size"], np.ndarray) and layer.state["in_size"].dtype == np.int64
        assert raw["G_ema"].children["synthesis"].children["input"].state["_buffers"]["freqs"].shape[1] == 2


def test_numpy_1_and_2_module_names():
    """Files written under numpy 1.x name ``numpy.core.multiarray``; numpy 2 writes ``numpy._core``."""
    for obj in (np.float64(1.5), np.arange(4, dtype=np.float32).reshape(2, 2)):
        p2 = pickle.dumps(obj, protocol=2)  # GLOBAL opcodes: names are newline-terminated text
        assert b"numpy._core.multiarray" in p2 or b"numpy.core.multiarray" in p2
        for name in (b"numpy._core.multiarray", b"numpy.core.multiarray"):
            data = p2.replace(b"numpy._core.multiarray", name).replace(b"numpy.core.multiarray", name)
            back = restricted_load(data, {**NUMPY_GLOBALS, **COLLECTIONS_GLOBALS})
            assert np.array_equal(back, obj) and back.dtype == obj.dtype


def test_legacy_tf_lod_names_mean_orig_architecture(tmp_path, monkeypatch):
    """TF 'orig' networks name their per-resolution RGB layers ToRGB_lod*/FromRGB_lod*."""
    from ganeditor.archs import build
    from writers import nvlabs_tf_write as nvlabs_tf

    torch.manual_seed(0)
    common = dict(c_dim=0, img_resolution=16, img_channels=3)
    G = build("stylegan2-generator", z_dim=8, w_dim=8, mapping_kwargs={"num_layers": 1},
              synthesis_kwargs={"channel_base": 128, "channel_max": 8, "architecture": "orig"}, **common)  # fmt: skip
    D = build("stylegan2-discriminator", channel_base=128, channel_max=8, architecture="orig", **common)
    plain_names = nvlabs_tf.tf_variables

    def lod_names(net, kind):  # rename {r}x{r}/ToRGB|FromRGB to the TF 'orig' layout
        out = {}
        for k, v in plain_names(net, kind).items():
            m = re.fullmatch(r"(synthesis/)?(\d+)x\d+/(ToRGB|FromRGB)/(.*)", k)
            out[f"{m[1] or ''}{m[3]}_lod{int(np.log2(16 // int(m[2])))}/{m[4]}" if m else k] = v
        return out

    monkeypatch.setattr(nvlabs_tf, "tf_variables", lod_names)
    g_static = dict(latent_size=8, dlatent_size=8, resolution=16, mapping_layers=1, fmap_base=64, fmap_max=8)
    d_static = dict(resolution=16, fmap_base=64, fmap_max=8)
    nvlabs_tf.save_tf_pickle(tmp_path / "orig.pkl", {"G": G, "G_ema": G, "D": D}, {"G": g_static, "G_ema": g_static, "D": d_static})
    ckpt = load_checkpoint(tmp_path / "orig.pkl")
    assert ckpt.nets["G_ema"].init_kwargs["synthesis_kwargs"]["architecture"] == "orig"
    assert ckpt.nets["D"].init_kwargs["architecture"] == "orig"
    for role, net in (("G_ema", G), ("D", D)):
        a, b = net.state_dict(), ckpt.nets[role].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), role
