"""ncnn models: the ``.param`` text (magic 7767517) and the ``.bin`` weights beside it.

The ``.param`` is parsed into a JSON-able layer list; weights are read in layer order as ncnn's
``ModelBin`` does: "type 0" arrays start with a 4-byte tag (0x01306B47 fp16, 0x0002C056 or zero
fp32, other non-zero: a 256-entry float table + 8-bit indices; 0x000D4B38 int8 is refused) and
are padded to 4 bytes; "type 1" arrays (biases, slopes, ...) are raw fp32.  The result is an
``ncnn-graph`` network, or the proper architecture when the graph is a recognised one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganeditor.archs import build
from ganeditor.archs.ncnn_graph import SUPPORTED, NcnnGraph, weight_shapes
from ganeditor.core.atomic import atomic_write
from ganeditor.core.errors import CheckpointError
from ganeditor.core.files import check_input_file
from ganeditor.formats.base import Checkpoint, FormatReader, register_reader
from ganeditor.formats.ncnn_convert import convert_graph

MAGIC = b"7767517"
TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32 = 0x0002C056


def ncnn_float(token: str) -> float:
    """Parse a number exactly as ncnn's ``vstr_to_float`` does (double accumulate, then float32)."""
    s, i = token, 0
    negative = s[:1] == "-"
    if s[:1] in ("+", "-"):
        i = 1
    j = i
    while j < len(s) and s[j].isdigit():
        j += 1
    v = float(int(s[i:j]) % 2**32) if j > i else 0.0
    if j < len(s) and s[j] == ".":
        k = j + 1
        while k < len(s) and s[k].isdigit():
            k += 1
        digits = s[j + 1 : k]
        if digits:
            v += (int(digits) % 2**32) / float(10 ** len(digits) % 2**32 or 1)
        j = k
    if j < len(s) and s[j] in "eE":
        j += 1
        down = s[j : j + 1] == "-"
        if s[j : j + 1] in ("+", "-"):
            j += 1
        k = j
        while k < len(s) and s[k].isdigit():
            k += 1
        e = int(s[j:k]) if k > j else 0
        scale = 1.0
        while e >= 8:
            scale *= 1e8
            e -= 8
        while e > 0:
            scale *= 10.0
            e -= 1
        v = v / scale if down else v * scale
    return float(np.float32(-v if negative else v))


def _value(token: str) -> int | float | str:
    if token[:1].isalpha() or token[:1] == '"':
        return token.strip('"')
    if "." in token[:15] or "e" in token[:15].lower():
        return ncnn_float(token)
    return int(token)


def parse_param(text: str, path: str | Path | None = None) -> list[dict[str, Any]]:
    """Parse ncnn ``.param`` text into layer dicts {type, name, bottoms, tops, params{"id": value}}."""
    lines = [(n, ln.split()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines or lines[0][1][0] != "7767517":
        raise CheckpointError("not an ncnn .param file (magic 7767517 missing)", path)
    if len(lines) < 2 or len(lines[1][1]) < 2:
        raise CheckpointError("ncnn .param: layer and blob counts missing on line 2", path)
    try:
        layer_count = int(lines[1][1][0])
    except ValueError:
        raise CheckpointError(f"ncnn .param line {lines[1][0]}: bad layer count", path) from None
    layers = []
    for n, tok in lines[2:]:
        try:
            kind, name, nb, nt = tok[0], tok[1], int(tok[2]), int(tok[3])
            bottoms, tops = tok[4 : 4 + nb], tok[4 + nb : 4 + nb + nt]
            if len(bottoms) != nb or len(tops) != nt:
                raise ValueError("fewer blob names than counted")
            params: dict[str, Any] = {}
            for item in tok[4 + nb + nt :]:
                key, _, val = item.partition("=")
                k = int(key)
                if k <= -23300:  # old-style array: -233xx=count,v1,v2,...
                    parts = val.split(",")
                    count = int(parts[0])
                    values = [_value(v) for v in parts[1 : 1 + count]]
                    if len(values) != count:
                        raise ValueError(f"array {key} has fewer than {count} values")
                    params[str(-k - 23300)] = values
                elif "," in val:
                    params[str(k)] = [_value(v) for v in val.split(",") if v]
                else:
                    params[str(k)] = _value(val)
        except (ValueError, IndexError) as e:
            raise CheckpointError(f"ncnn .param line {n}: cannot parse layer ({e})", path) from None
        layers.append({"type": kind, "name": name, "bottoms": bottoms, "tops": tops, "params": params})
    if len(layers) != layer_count:
        raise CheckpointError(f"ncnn .param declares {layer_count} layers but lists {len(layers)}", path)
    for spec in layers:
        if spec["type"] not in SUPPORTED:
            raise CheckpointError(f"unsupported ncnn layer type {spec['type']!r} (layer {spec['name']!r})", path)
        check_layer_limits(spec, path)
    return layers


MAX_SCALE = 16  # the largest up-scaling of one layer, and of the whole graph
_LIMITS = {  # layer type -> {param id: (lo, hi)} for ints; -233/-234 are ncnn's "same" markers
    "Convolution": {0: (1, 16384), 1: (1, 64), 11: (1, 64), 2: (1, 64), 12: (1, 64), 3: (1, 64), 13: (1, 64),
                    4: (-234, 1024), 14: (-234, 1024), 15: (-234, 1024), 16: (-234, 1024)},
    "Deconvolution": {0: (1, 16384), 1: (1, 64), 11: (1, 64), 2: (1, 64), 12: (1, 64), 3: (1, MAX_SCALE),
                      13: (1, MAX_SCALE), 18: (0, 64), 19: (0, 64), 20: (0, 16384), 21: (0, 16384)},
    "PixelShuffle": {0: (1, MAX_SCALE)},
    "Padding": {0: (0, 4096), 1: (0, 4096), 2: (0, 4096), 3: (0, 4096), 7: (0, 4096), 8: (0, 4096)},
    "Interp": {3: (0, 16384), 4: (0, 16384)},
    "Pooling": {8: (-233, 16384), 18: (-233, 16384)},
    "InnerProduct": {0: (1, 1 << 20)},
}  # fmt: skip
for _k in ("ConvolutionDepthWise", "DeconvolutionDepthWise"):
    _LIMITS[_k] = _LIMITS[_k.replace("DepthWise", "")]


def check_layer_limits(spec: dict[str, Any], path: str | Path | None = None) -> None:
    """Refuse layer settings that would make images (or weights) absurdly large: CheckpointError."""
    p, kind = spec["params"], spec["type"]

    def refuse(what: str) -> None:
        raise CheckpointError(f"ncnn layer {spec['name']!r} ({kind}): {what}; refused", path)

    for key, (lo, hi) in _LIMITS.get(kind, {}).items():
        v = p.get(str(key))
        if v is not None and (not isinstance(v, int) or not lo <= v <= hi):
            refuse(f"parameter {key}={v!r} outside {lo}..{hi}")
    if kind == "Interp":
        for key in ("1", "2"):
            s = p.get(key, 1.0)
            if not isinstance(s, (int, float)) or not 0 < s <= MAX_SCALE:
                refuse(f"scale {key}={s!r} outside (0, {MAX_SCALE}]")


def _read_array(
    data: memoryview, pos: int, count: int, load_type: int, stats: dict[str, int]
) -> tuple[np.ndarray, int]:
    """One ``ModelBin::load(count, type)`` from ``data`` at ``pos``; returns (float32 array, new pos)."""

    def take(nbytes: int) -> memoryview:
        if pos + nbytes > len(data):
            raise EOFError(f"needs {nbytes} bytes at offset {pos}, the file has {len(data)}")
        return data[pos : pos + nbytes]

    if load_type == 1:
        arr = np.frombuffer(take(4 * count), "<f4").copy()
        stats["fp32"] += 1
        return arr, pos + 4 * count
    tag_bytes = bytes(take(4))
    tag = int.from_bytes(tag_bytes, "little")
    pos += 4
    if tag == TAG_FP16:
        size = (2 * count + 3) // 4 * 4
        arr = np.frombuffer(take(size), "<f2")[:count].astype(np.float32)
        stats["fp16"] += 1
        return arr, pos + size
    if tag == TAG_INT8:
        raise ValueError("int8-quantized weights are not supported")
    if tag == TAG_FP32 or sum(tag_bytes) == 0:
        arr = np.frombuffer(take(4 * count), "<f4").copy()
        stats["fp32"] += 1
        return arr, pos + 4 * count
    table = np.frombuffer(take(1024), "<f4")
    pos += 1024
    size = (count + 3) // 4 * 4
    idx = np.frombuffer(take(size), np.uint8)[:count]
    stats["table8"] += 1
    return table[idx].astype(np.float32), pos + size


def read_weights(
    layers: list[dict[str, Any]], data: bytes, path: Path | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """Read the ``.bin`` in layer order; return ({"<layer>\\0<weight>": tensor}, storage stats)."""
    view = memoryview(data)
    stats = {"fp16": 0, "fp32": 0, "table8": 0}
    tensors: dict[str, torch.Tensor] = {}
    pos = 0
    for spec in layers:
        try:
            shapes = weight_shapes(spec["type"], spec["params"])
            for name, shape, load_type in shapes:
                arr, pos = _read_array(view, pos, int(np.prod(shape)), load_type, stats)
                tensors[f"{spec['name']}\0{name}"] = torch.from_numpy(arr.reshape(shape))
        except EOFError as e:
            raise CheckpointError(f"truncated ncnn .bin: layer {spec['name']!r} {e}", path) from None
        except ValueError as e:
            raise CheckpointError(f"ncnn layer {spec['name']!r} ({spec['type']}): {e}", path) from None
    stats["trailing_bytes"] = len(data) - pos
    return tensors, stats


def infer_geometry(net: NcnnGraph) -> dict[str, Any]:
    """Output size as ``scale * in + border`` and the input sides the graph accepts, found by runs
    on empty batches (shapes only, no arithmetic); ``prepad`` makes the output ``scale`` x the input."""
    channels = next((s["params"].get("2", 3) for s in net.specs if s["type"] == "Input"), 3)
    channels = channels if isinstance(channels, int) and channels > 0 else 3

    def out(n: int) -> int | None:
        try:
            with torch.inference_mode():
                y = net.run({net.input_names[0]: torch.empty(0, channels, n, n)})[net.output_names[-1]]
            return int(y.shape[-1]) if y.dim() == 4 else None
        except Exception:  # sizes the graph cannot take
            return None

    for m in (1, 2, 4, 8, 16):
        sizes = [out(64 + m * j) for j in range(4)]
        if None in sizes:
            continue
        scale, rem = divmod(sizes[1] - sizes[0], m)
        if rem or scale <= 0 or any(sizes[j] - sizes[0] != scale * m * j for j in range(4)):
            continue  # sizes off the grid may be floored inside: try a coarser grid
        border = sizes[0] - 64 * scale
        prepad, rem = divmod(-border, 2 * scale)
        prepad = prepad if border <= 0 and not rem else 0
        return {"scale": scale, "border": border, "prepad": prepad, "size_multiple": m}
    return {"scale": None, "border": 0, "prepad": 0, "size_multiple": 1}


def load_ncnn(param_path: str | Path, bin_path: str | Path | None = None, convert: bool = True) -> Checkpoint:
    """Load an ncnn model; with ``convert``, a recognised graph becomes its proper architecture."""
    param_path = Path(param_path)
    bin_path = Path(bin_path) if bin_path is not None else param_path.with_suffix(".bin")
    try:
        text = param_path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise CheckpointError(f"cannot read ({e.strerror or e})", param_path) from None
    layers = parse_param(text, param_path)
    if not bin_path.exists():
        raise CheckpointError(f"ncnn weights file {bin_path.name} not found beside the .param", param_path)
    check_input_file(bin_path, CheckpointError, "an ncnn .bin weights file")
    tensors, stats = read_weights(layers, bin_path.read_bytes(), bin_path)
    net = build("ncnn-graph", layers=layers, title=param_path.stem)
    state = {}
    for (spec, key) in zip(net.specs, net.keys):
        if key is None:
            continue
        for name, _, _ in weight_shapes(spec["type"], spec["params"]):
            state[f"layers.{key}.{name}"] = tensors[f"{spec['name']}\0{name}"]
    net.load_state_dict(state, strict=True)
    geo = infer_geometry(net)
    if geo["scale"] is not None and geo["scale"] > MAX_SCALE:
        raise CheckpointError(f"ncnn graph scales images by {geo['scale']} (at most {MAX_SCALE}); refused", param_path)
    net.set_geometry(geo["scale"], geo["prepad"], geo["size_multiple"])
    meta: dict[str, Any] = {"ncnn_param": param_path.name, "ncnn_bin": bin_path.name, "weight_arrays": stats}
    meta.update(geo)
    nets: dict[str, torch.nn.Module] = {"net": net}
    if convert:
        converted = convert_graph(net)
        if converted is not None:
            nets = {"net": converted}
            meta["converted_to"] = converted.arch_name
    return Checkpoint("ncnn", "ncnn model (.param + .bin)", nets, meta)


def _format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.8e}"  # at most 15 characters: what ncnn's parser reads of one value
    return str(v)


def _format_param(key: str, v: Any) -> str:
    if isinstance(v, list):
        return f"{-23300 - int(key)}={len(v)}," + ",".join(_format_value(x) for x in v)
    return f"{key}={_format_value(v)}"


def write_ncnn(net: NcnnGraph, param_path: str | Path, bin_path: str | Path, fp16: bool = False) -> None:
    """Write ``net`` as ncnn ``.param`` + ``.bin`` ("type 0" arrays fp16-tagged when ``fp16``)."""
    blobs = {b for s in net.specs for b in s["bottoms"] + s["tops"]}
    lines = ["7767517", f"{len(net.specs)} {len(blobs)}"]
    chunks = []
    for spec, key in zip(net.specs, net.keys):
        head = f"{spec['type']:<24} {spec['name']:<24} {len(spec['bottoms'])} {len(spec['tops'])}"
        items = [*spec["bottoms"], *spec["tops"], *(_format_param(k, v) for k, v in spec["params"].items())]
        lines.append(" ".join([head, *items]))
        for name, _, load_type in weight_shapes(spec["type"], spec["params"]):
            arr = getattr(net.layers[key], name).detach().cpu().float().numpy().ravel()
            if load_type == 1:
                chunks.append(arr.astype("<f4").tobytes())
            elif fp16:
                data = arr.astype("<f2").tobytes()
                chunks.append(TAG_FP16.to_bytes(4, "little") + data + b"\0" * (-len(data) % 4))
            else:
                chunks.append(b"\0\0\0\0" + arr.astype("<f4").tobytes())
    with atomic_write(param_path) as f:
        f.write(("\n".join(lines) + "\n").encode("utf-8"))
    with atomic_write(bin_path) as f:
        f.write(b"".join(chunks))


def _is_param(head: bytes) -> bool:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:7] == MAGIC


def _sniff(path: Path, head: bytes) -> bool:
    if _is_param(head):
        return True
    param = path.with_suffix(".param")  # the .bin named instead of its .param
    if path.suffix.lower() == ".bin" and param.is_file():
        with open(param, "rb") as f:
            return _is_param(f.read(64))
    return False


def _load(path: Path) -> Checkpoint:
    with open(path, "rb") as f:
        head = f.read(64)
    return load_ncnn(path) if _is_param(head) else load_ncnn(path.with_suffix(".param"), path)


READER = register_reader(FormatReader("ncnn", _sniff, _load))
