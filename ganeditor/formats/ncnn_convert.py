"""Recognise known architectures in imported ncnn graphs and convert them to their proper modules
(BasicSR key names).  (The command that makes ``models/realesrgan-x4plus.safetensors`` from a PyPI
wheel is ``models/make_ncnn_model.py``.)

Recognised: Real-ESRGAN RRDBNet (x4plus, x4plus-anime) -> "rrdbnet"; SRVGGNetCompact
(realesr-animevideov3-x4) -> "srvgg".  The animevideov3 x2/x3 files are the x4 network followed by
a bicubic downscale, so they stay ncnn graphs.  Every conversion is checked numerically against the
graph on a small random input before it is returned.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
import torch.nn as nn

from ganeditor.archs import ARCHS, build
from ganeditor.archs.ncnn_graph import NcnnGraph
from ganeditor.core.errors import CheckpointError

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
