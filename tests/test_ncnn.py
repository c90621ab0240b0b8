"""ncnn importer: parser, weight storage tags, every supported layer against goldens made by the
ncnn runtime, errors, conversion to rrdbnet/srvgg, and the shipped Real-ESRGAN x4plus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.archs import build
from ganeditor.archs.ncnn_graph import SUPPORTED, NcnnGraph
from ganeditor.core.errors import CheckpointError
from ganeditor.formats import load_checkpoint
from ganeditor.formats.native import save_checkpoint
from ganeditor.formats.ncnn import load_ncnn, ncnn_float, parse_param, write_ncnn
from ganeditor.formats.ncnn_convert import convert_graph

DATA = Path(__file__).parent / "data" / "ncnn"
SHIPPED = Path(__file__).parents[1] / "models" / "realesrgan-x4plus.safetensors"


def fill_weights(net: NcnnGraph, seed: int = 0) -> NcnnGraph:
    """Deterministic random weights (variances positive) for a test graph."""
    rng = np.random.RandomState(seed)
    with torch.no_grad():
        for name, prm in net.named_parameters():
            lo, hi = (0.5, 1.5) if name.endswith(".var") else (-0.5, 0.5)
            prm.copy_(torch.from_numpy(rng.uniform(lo, hi, tuple(prm.shape)).astype(np.float32)))
    return net


def make_tiny_bins(folder: Path) -> None:
    """(Re)write tiny.param, tiny_fp32.bin and tiny_fp16.bin (our writer, ncnn layouts)."""
    layers = parse_param((DATA / "tiny.param").read_text())
    net = fill_weights(build("ncnn-graph", layers=layers))
    write_ncnn(net, folder / "tiny.param", folder / "tiny_fp32.bin")
    write_ncnn(net, folder / "tiny.param", folder / "tiny_fp16.bin", fp16=True)


def run_all(net: NcnnGraph, x: np.ndarray) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        out = net.run({"in": torch.from_numpy(x)[None]})
    return {k: v[0].numpy() for k, v in out.items()}


# ------------------------------------------------------------------ every layer type vs ncnn


def test_tiny_graph_covers_every_supported_layer_type():
    types = {s["type"] for s in parse_param((DATA / "tiny.param").read_text())}
    assert types == set(SUPPORTED)


@pytest.mark.parametrize("storage", ["fp32", "fp16"])
def test_tiny_graph_matches_ncnn_runtime(storage):
    ck = load_ncnn(DATA / "tiny.param", DATA / f"tiny_{storage}.bin", convert=False)
    arrays = ck.meta["weight_arrays"]
    assert arrays["trailing_bytes"] == 0
    assert (arrays["fp16"] > 0) == (storage == "fp16")
    golden = np.load(DATA / f"tiny_{storage}_golden.npz")
    ours = run_all(ck.nets["net"], np.load(DATA / "tiny_input.npy"))
    assert set(ours) == set(golden.files)  # every sink blob compared
    for name in golden.files:
        assert ours[name].shape == golden[name].shape, name
        np.testing.assert_allclose(ours[name], golden[name], rtol=1e-5, atol=2e-5, err_msg=name)


def test_writer_reproduces_stored_files(tmp_path):
    make_tiny_bins(tmp_path)
    for name in ("tiny.param", "tiny_fp32.bin", "tiny_fp16.bin"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
    fp16 = (DATA / "tiny_fp16.bin").read_bytes()
    assert fp16[:4] == (0x01306B47).to_bytes(4, "little")  # first conv weight: fp16 tag
    assert (DATA / "tiny_fp32.bin").read_bytes()[:4] == b"\0\0\0\0"  # raw fp32 flag


def test_write_read_round_trip(tmp_path):
    net = load_ncnn(DATA / "tiny.param", DATA / "tiny_fp32.bin", convert=False).nets["net"]
    write_ncnn(net, tmp_path / "m.param", tmp_path / "m.bin")
    back = load_checkpoint(tmp_path / "m.param").primary  # found by content, .bin beside it
    assert isinstance(back, NcnnGraph)
    for (k, a), (k2, b) in zip(net.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = np.load(DATA / "tiny_input.npy")
    a, b = run_all(net, x), run_all(back, x)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_graph_stored_in_our_safetensors(tmp_path):
    ck = load_ncnn(DATA / "tiny.param", DATA / "tiny_fp16.bin", convert=False)
    json.dumps(ck.nets["net"].init_kwargs)  # kwargs are plain JSON
    save_checkpoint(ck, tmp_path / "tiny.safetensors")
    back = load_checkpoint(tmp_path / "tiny.safetensors")
    assert back.primary.arch_name == "ncnn-graph"
    x = np.load(DATA / "tiny_input.npy")
    a, b = run_all(ck.nets["net"], x), run_all(back.primary, x)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    facts = back.primary.describe()
    assert facts["layers"] == 89 and facts["input blob"] == "in"


def test_quantized_table_weights(tmp_path):
    """A 'type 0' array with a non-zero flag is a 256-float table plus 8-bit indices."""
    (tmp_path / "q.param").write_text("7767517\n2 2\nInput in 0 1 x\nConvolution c 1 1 x y 0=2 1=1 6=6\n")
    table = np.linspace(-1, 1, 256, dtype="<f4")
    idx = np.array([0, 255, 128, 7, 64, 200], np.uint8)
    (tmp_path / "q.bin").write_bytes(b"\x01\x00\x00\x00" + table.tobytes() + idx.tobytes() + b"\0\0")
    ck = load_ncnn(tmp_path / "q.param", convert=False)
    w = ck.nets["net"].state_dict()["layers.c.weight"]
    assert torch.equal(w.flatten(), torch.from_numpy(table[idx]))
    assert ck.meta["weight_arrays"]["table8"] == 1


def test_float_parsing_follows_ncnn():
    assert ncnn_float("2.000000e-01") == float(np.float32(0.2))
    assert ncnn_float("-1.5E+02") == -150.0
    assert ncnn_float("1.") == 1.0
    layers = parse_param("7767517\n1 1\nInput in 0 1 x 0=3 1=2.5 -23303=2,1,2.0e0 4=1,2,3\n")
    assert layers[0]["params"] == {"0": 3, "1": 2.5, "3": [1, 2.0], "4": [1, 2, 3]}


# ------------------------------------------------------------------ errors


@pytest.fixture
def tiny_copy(tmp_path):
    shutil.copy(DATA / "tiny.param", tmp_path / "m.param")
    shutil.copy(DATA / "tiny_fp16.bin", tmp_path / "m.bin")
    return tmp_path / "m.param"


def test_truncated_bin(tiny_copy):
    b = tiny_copy.with_suffix(".bin")
    b.write_bytes(b.read_bytes()[:1000])
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tiny_copy)
    msg = str(e.value)
    assert "truncated ncnn .bin: layer 'convB'" in msg and "\n" not in msg


def test_bin_path_also_finds_the_model(tiny_copy):
    ck = load_checkpoint(tiny_copy.with_suffix(".bin"))
    assert ck.format_id == "ncnn" and ck.meta["ncnn_param"] == "m.param"


def test_missing_bin(tiny_copy):
    tiny_copy.with_suffix(".bin").unlink()
    with pytest.raises(CheckpointError, match=r"ncnn weights file m\.bin not found beside the \.param"):
        load_checkpoint(tiny_copy)


def test_unknown_layer_type(tiny_copy):
    tiny_copy.write_text(tiny_copy.read_text().replace("Mish ", "Softplus "))
    with pytest.raises(CheckpointError, match=r"unsupported ncnn layer type 'Softplus' \(layer 'mi'\)"):
        load_checkpoint(tiny_copy)


def test_bad_param_line_and_counts(tmp_path):
    p = tmp_path / "m.param"
    p.write_text("7767517\n2 2\nInput in 0 1 x\nConvolution c 1 1\n")
    with pytest.raises(CheckpointError, match=r"line 4: cannot parse layer"):
        load_ncnn(p)
    p.write_text("7767517\n3 2\nInput in 0 1 x\nReLU r 1 1 x y\n")
    with pytest.raises(CheckpointError, match="declares 3 layers but lists 2"):
        load_ncnn(p)


def test_int8_weights_refused(tmp_path):
    (tmp_path / "q.param").write_text("7767517\n2 2\nInput in 0 1 x\nConvolution c 1 1 x y 0=2 1=1 6=4\n")
    (tmp_path / "q.bin").write_bytes((0x000D4B38).to_bytes(4, "little") + bytes(4))
    with pytest.raises(CheckpointError, match=r"layer 'c' \(Convolution\): int8-quantized weights are not supported"):
        load_ncnn(tmp_path / "q.param")


# ------------------------------------------------------------------ recognised architectures


def rrdb_param(nf: int = 8, gc: int = 4, blocks: int = 1) -> str:
    """An ncnn RRDBNet x4 graph in the topology of Real-ESRGAN's ncnn export."""
    lines, n = ["Input input 0 1 data"], 0

    def conv(src: str, cin: int, cout: int, act: bool) -> str:
        nonlocal n
        n += 1
        a = " 9=2 -23310=1,2.000000e-01" if act else ""
        lines.append(f"Convolution conv{n} 1 1 {src} t{n} 0={cout} 1=3 4=1 5=1 6={cout * cin * 9}{a}")
        return f"t{n}"

    def split(src: str, k: int) -> list[str]:
        nonlocal n
        n += 1
        outs = [f"s{n}_{i}" for i in range(k)]
        lines.append(f"Split split{n} 1 {k} {src} {' '.join(outs)}")
        return outs

    def add(a: str, b: str, kind: str = "Eltwise", extra: str = " 0=1 -23301=2,2.000000e-01,1.000000e+00") -> str:
        nonlocal n
        n += 1
        lines.append(f"{kind} add{n} 2 1 {a} {b} t{n}{extra}")
        return f"t{n}"

    def concat(srcs: list[str]) -> str:
        nonlocal n
        n += 1
        lines.append(f"Concat cat{n} {len(srcs)} 1 {' '.join(srcs)} t{n}")
        return f"t{n}"

    first, skip = split(conv("data", 3, nf, False), 2)
    feat = first
    for _ in range(blocks):
        block_in, block_skip = split(feat, 2)
        x = block_in
        for _ in range(3):
            x, res = split(x, 2)
            feats = [x]
            for j in range(1, 5):
                uses = [split(f, 2) for f in feats]
                feats = [u[0] for u in uses]
                feats.append(conv(concat([u[1] for u in uses]), nf + (j - 1) * gc, gc, True))
            x = add(conv(concat(feats), nf + 4 * gc, nf, False), res)
        feat = add(x, block_skip)
    x = add(skip, conv(feat, nf, nf, False), "BinaryOp", "")
    for _ in range(2):
        n += 1
        lines.append(f"Interp up{n} 1 1 {x} t{n} 0=1 1=2.000000e+00 2=2.000000e+00")
        x = conv(f"t{n}", nf, nf, True)
    conv(conv(x, nf, nf, True), nf, 3, False)
    return f"7767517\n{len(lines)} 999\n" + "\n".join(lines) + "\n"


def test_rrdbnet_graph_converts_exactly():
    graph = fill_weights(build("ncnn-graph", layers=parse_param(rrdb_param(blocks=2)))).eval()
    net = convert_graph(graph)
    assert net is not None and net.arch_name == "rrdbnet"
    assert net.init_kwargs == {
        "num_in_ch": 3, "num_out_ch": 3, "scale": 4, "num_feat": 8, "num_block": 2, "num_grow_ch": 4
    }
    x = torch.rand(1, 3, 9, 7, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        np.testing.assert_allclose(net(x).numpy(), graph(x).numpy(), atol=1e-5)
    assert net.state_dict()["body.1.rdb3.conv5.weight"].shape == (8, 24, 3, 3)


def srvgg_param(nf: int = 8, convs: int = 2, up: int = 4, downscale: bool = False) -> str:
    lines = ["Input input 0 1 data", "Split sp 1 2 data x0 skip"]
    src, cin = "x0", 3
    for i in range(convs + 1):
        lines.append(f"Convolution c{i} 1 1 {src} c{i} 0={nf} 1=3 4=1 5=1 6={nf * cin * 9}")
        lines.append(f"PReLU p{i} 1 1 c{i} p{i} 0={nf}")
        src, cin = f"p{i}", nf
    lines.append(f"Convolution last 1 1 {src} last 0={3 * up * up} 1=3 4=1 5=1 6={3 * up * up * nf * 9}")
    lines.append(f"PixelShuffle ps 1 1 last ps 0={up}")
    lines.append(f"Interp base 1 1 skip base 0=1 1={up}.000000e+00 2={up}.000000e+00")
    lines.append(f"BinaryOp add 2 1 ps base {'sum' if downscale else 'output'}")
    if downscale:
        lines.append("Interp down 1 1 sum output 0=3 1=5.000000e-01 2=5.000000e-01")
    return f"7767517\n{len(lines)} 99\n" + "\n".join(lines) + "\n"


def test_srvgg_graph_converts_and_downscaled_variant_does_not():
    graph = fill_weights(build("ncnn-graph", layers=parse_param(srvgg_param()))).eval()
    net = convert_graph(graph)
    assert net is not None and net.arch_name == "srvgg" and net.scale == 4
    assert net.init_kwargs["num_conv"] == 2 and net.init_kwargs["act_type"] == "prelu"
    x = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        np.testing.assert_allclose(net(x).numpy(), graph(x).numpy(), atol=1e-5)
    x2 = build("ncnn-graph", layers=parse_param(srvgg_param(downscale=True)))
    assert convert_graph(x2) is None  # x4 net + bicubic downscale (animevideov3-x2) stays a graph


def test_scale_is_inferred(tmp_path):
    graph = fill_weights(build("ncnn-graph", layers=parse_param(srvgg_param(downscale=True))))
    write_ncnn(graph, tmp_path / "v.param", tmp_path / "v.bin", fp16=True)
    ck = load_checkpoint(tmp_path / "v.param")
    assert ck.format_id == "ncnn" and ck.meta["scale"] == 2 and ck.primary.scale == 2


UPCONV = """7767517
4 4
Input in 0 1 x
Convolution c1 1 1 x a 0=4 1=3 5=1 6=108 9=2 -23310=1,1.000000e-01
Convolution c2 1 1 a b 0=4 1=3 5=1 6=144
Deconvolution d 1 1 b y 0=3 1=4 3=2 4=3 5=1 6=192
"""


def test_unpadded_graph_gets_prepad(tmp_path):
    """A waifu2x-like graph (valid convs, out = 2*in - 12) is padded so out = 2*in exactly."""
    graph = fill_weights(build("ncnn-graph", layers=parse_param(UPCONV)))
    write_ncnn(graph, tmp_path / "u.param", tmp_path / "u.bin")
    ck = load_checkpoint(tmp_path / "u.param")
    assert {k: ck.meta[k] for k in ("scale", "border", "prepad", "size_multiple")} == {
        "scale": 2, "border": -12, "prepad": 3, "size_multiple": 1
    }
    net = ck.primary
    x = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        y = net(x)
        manual = net.run({"x": torch.nn.functional.pad(x, (3, 3, 3, 3), mode="replicate")})["y"]
    assert y.shape == (1, 3, 10, 14) and torch.equal(y, manual)
    assert net.init_kwargs["prepad"] == 3  # kept when saved in our format


# ------------------------------------------------------------------ the shipped model


@pytest.mark.skipif(not SHIPPED.exists(), reason="models/realesrgan-x4plus.safetensors not made")
def test_shipped_realesrgan_x4plus_matches_ncnn():
    net = load_checkpoint(SHIPPED).primary
    assert net.arch_name == "rrdbnet" and net.scale == 4 and net.num_block == 23
    crop = np.asarray(Image.open(DATA / "x4plus_crop16.png").convert("RGB"), np.float32) / 255
    x = torch.from_numpy(crop.transpose(2, 0, 1).copy())[None]
    with torch.inference_mode():
        y = net(x)[0].numpy()
    golden = np.load(DATA / "x4plus_crop16_ncnn.npy")
    assert y.shape == golden.shape == (3, 64, 64)
    assert np.abs(y - golden).max() < 2e-5
    q = lambda a: np.round(np.clip(a, 0, 1) * 255)  # noqa: E731
    assert np.abs(q(y) - q(golden)).max() <= 1
