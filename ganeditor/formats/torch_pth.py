"""Image-to-image ``.pth`` files: junyanz CycleGAN state dicts and the ESRGAN family (BasicSR /
Real-ESRGAN ``{'params'|'params_ema': ...}``, ESRGAN 2019 and 2018 RRDBNet key names,
SRVGGNetCompact, MSRResNet, the SR discriminators).

The architecture and its sizes are read from the keys and shapes (as chaiNNer does); nothing in
the file is executed (``torch.load(weights_only=True)``).  Files holding rosinality keys
(``g_ema``, ``style.1.weight``) are left to the rosinality reader.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ganeditor.core.errors import CheckpointError
from ganeditor.formats.base import Checkpoint, FormatReader, register_reader, torch_pickle_bytes
from ganeditor.formats.bounded import build_checked
from ganeditor.formats.spandrel_io import checkpoint_from_object
from ganeditor.formats.torch_load import torch_load

FORMAT_ID = "torch-pth-i2i"
_SNIFF_BYTES = 4 << 20
_FOREIGN = (b"g_ema", b"style.1.weight", b"latent_avg")  # rosinality stylegan2-pytorch
_OURS = (
    b"conv_first.weight", b"RRDB_trunk.", b"model.1.sub.", b"body.0.weight", b"body.0.conv1.weight",
    b"model.1.weight", b"model.0.weight", b"conv0_0.weight", b"conv1.weight_orig", b"params_ema", b"params",
)  # fmt: skip
_STAT_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")

StateDict = dict[str, torch.Tensor]


class UnknownLayout(CheckpointError):
    """None of our key layouts matches (the file is then offered to spandrel)."""


# ---------------------------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------------------------


def _sniff(path: Path, head: bytes) -> bool:
    data = torch_pickle_bytes(path, head, _SNIFF_BYTES)
    if data is None or any(m in data for m in _FOREIGN):
        return False
    return path.suffix.lower() == ".pth" or any(m in data for m in _OURS)


def unwrap(obj: Any, path: Path | None = None) -> tuple[StateDict, str]:
    """The state dict inside a loaded file (prefers ``params_ema`` over ``params``), ``module.``
    prefixes stripped, non-tensor entries (``_metadata``) dropped; plus where it was found."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"not an image-to-image model: the file holds a {type(obj).__name__}, not a state dict", path)
    where = "state dict"
    for key in ("params_ema", "params", "state_dict", "model_state_dict"):
        if isinstance(obj.get(key), dict):
            obj, where = obj[key], f"'{key}'"
            break
    sd: StateDict = OrderedDict()
    for k, v in obj.items():
        if isinstance(k, str) and isinstance(v, torch.Tensor):
            sd[k[7:] if k.startswith("module.") else k] = v
    if not sd:
        raise CheckpointError("not an image-to-image model: no tensors found", path)
    return sd, where


def _indices(sd: StateDict, pattern: str) -> list[int]:
    """Sorted integers captured by ``pattern`` (one group) over the keys."""
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in sd if (m := rx.fullmatch(k))})


# ---------------------------------------------------------------------------------------------
# Key layouts -> BasicSR names
# ---------------------------------------------------------------------------------------------


def rrdb_from_2019(sd: StateDict) -> StateDict:
    """ESRGAN 2019 names (``RRDB_trunk``, ``trunk_conv``, ``upconvN``, ``HRconv``) -> BasicSR."""
    out: StateDict = OrderedDict()
    for k, v in sd.items():
        k = re.sub(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.", r"body.\1.rdb\2.", k)
        k = re.sub(r"^trunk_conv\.", "conv_body.", k)
        k = re.sub(r"^upconv(\d+)\.", r"conv_up\1.", k)
        k = re.sub(r"^HRconv\.", "conv_hr.", k)
        out[k] = v
    return out


def rrdb_from_2018(sd: StateDict, path: Path | None = None) -> StateDict:
    """ESRGAN 2018 sequential names (``model.0``, ``model.1.sub.N...``, ``model.3`` ...) -> BasicSR."""
    blocks = _indices(sd, r"model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight")
    nb = len(blocks)
    tail = _indices(sd, r"model\.(\d+)\.weight")
    tail = [i for i in tail if i >= 2]
    if nb == 0 or f"model.1.sub.{nb}.weight" not in sd or len(tail) < 2:
        raise CheckpointError("unsupported ESRGAN 2018 layout (trunk or tail convs missing)", path)
    names = {0: "conv_first", tail[-2]: "conv_hr", tail[-1]: "conv_last"}
    names.update({i: f"conv_up{n + 1}" for n, i in enumerate(tail[:-2])})
    out: StateDict = OrderedDict()
    for k, v in sd.items():
        m = re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", k)
        if m:
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = v
            continue
        m = re.fullmatch(r"model\.1\.sub\.(\d+)\.(weight|bias)", k)
        if m and int(m[1]) == nb:
            out[f"conv_body.{m[2]}"] = v
            continue
        m = re.fullmatch(r"model\.(\d+)\.(weight|bias)", k)
        if m and int(m[1]) in names:
            out[f"{names[int(m[1])]}.{m[2]}"] = v
            continue
        raise CheckpointError(f"unsupported ESRGAN 2018 layout (unexpected key {k!r})", path)
    return out


# ---------------------------------------------------------------------------------------------
# Architecture inference: each returns (arch name, kwargs, converted state dict, description)
# ---------------------------------------------------------------------------------------------

Detected = tuple[str, dict[str, Any], StateDict, str]


def _rrdbnet(sd: StateDict, layout: str, path: Path | None) -> Detected:
    first, last = sd["conv_first.weight"], sd["conv_last.weight"]
    num_feat, cin, num_out = first.shape[0], first.shape[1], last.shape[0]
    num_upconv = len(_indices(sd, r"conv_up(\d+)\.weight"))
    unshuffle = next((u for u in (1, 2, 4) if cin == num_out * u * u), None)
    if unshuffle is None:
        if cin not in (1, 3, 4):
            raise CheckpointError(f"RRDBNet with {cin} input channels to conv_first is not supported", path)
        unshuffle = 1
    for i in range(1, num_upconv + 1):
        if sd[f"conv_up{i}.weight"].shape[0] != num_feat:
            raise CheckpointError("RRDBNet variant with pixel-shuffle upsampling is not supported", path)
    kwargs = {
        "num_in_ch": cin // (unshuffle * unshuffle),
        "num_out_ch": num_out,
        "scale": 2**num_upconv // unshuffle,
        "num_feat": num_feat,
        "num_block": len(_indices(sd, r"body\.(\d+)\.rdb1\.conv1\.weight")),
        "num_grow_ch": sd["body.0.rdb1.conv1.weight"].shape[0] if "body.0.rdb1.conv1.weight" in sd else 32,
        "num_upconv": num_upconv,
    }
    return "rrdbnet", kwargs, sd, layout


def _srvgg(sd: StateDict, path: Path | None) -> Detected:
    convs = [i for i in _indices(sd, r"body\.(\d+)\.weight") if sd[f"body.{i}.weight"].ndim == 4]
    lastw, firstw = sd[f"body.{convs[-1]}.weight"], sd["body.0.weight"]
    num_in, num_feat = firstw.shape[1], firstw.shape[0]
    s2, rem = divmod(lastw.shape[0], num_in)
    upscale = round(s2**0.5)
    if rem or upscale * upscale != s2:
        raise CheckpointError(f"SRVGGNetCompact last conv has {lastw.shape[0]} channels, not 3*scale^2", path)
    act = "prelu" if "body.1.weight" in sd else "relu"
    kwargs = {
        "num_in_ch": num_in,
        "num_out_ch": num_in,  # assumed: 3*s^2 output channels cannot tell in from out
        "num_feat": num_feat,
        "num_conv": convs[-1] // 2 - 1,
        "upscale": upscale,
        "act_type": act,  # PReLU has weights; ReLU and LeakyReLU cannot be told apart: 'relu'
    }
    return "srvgg", kwargs, sd, "Real-ESRGAN SRVGGNetCompact"


def _msrresnet(sd: StateDict, path: Path | None) -> Detected:
    num_feat = sd["conv_first.weight"].shape[0]
    if "upconv2.weight" in sd:
        upscale = 4
    else:
        upscale = round((sd["upconv1.weight"].shape[0] / num_feat) ** 0.5)
    kwargs = {
        "num_in_ch": sd["conv_first.weight"].shape[1],
        "num_out_ch": sd["conv_last.weight"].shape[0],
        "num_feat": num_feat,
        "num_block": len(_indices(sd, r"body\.(\d+)\.conv1\.weight")),
        "upscale": upscale,
    }
    return "msrresnet", kwargs, sd, "BasicSR MSRResNet"


def _junyanz_generator(sd: StateDict, path: Path | None) -> Detected:
    first = sd["model.1.weight"]
    if "model.2.weight" in sd:
        norm = "batch"
    elif "model.1.bias" in sd:
        norm = "instance"
    else:
        norm = "none"
    if norm != "batch":  # pre-0.4 InstanceNorm files carry stats that upstream drops on load
        sd = OrderedDict((k, v) for k, v in sd.items() if not k.endswith(_STAT_SUFFIXES))
    blocks = _indices(sd, r"model\.(\d+)\.conv_block\.\d+\.weight")
    zero_pad = bool(blocks) and f"model.{blocks[0]}.conv_block.0.weight" in sd
    dropout = bool(blocks) and _is4d(sd, f"model.{blocks[0]}.conv_block.{4 if zero_pad else 6}.weight")
    last = _indices(sd, r"model\.(\d+)\.weight")[-1]
    kwargs = {
        "input_nc": first.shape[1],
        "output_nc": sd[f"model.{last}.weight"].shape[0],
        "ngf": first.shape[0],
        "norm": norm,
        "use_dropout": dropout,
        "n_blocks": len(blocks),
        "padding_type": "zero" if zero_pad else "reflect",
    }
    return "cyclegan-resnet-generator", kwargs, sd, "junyanz CycleGAN ResNet generator"


def _junyanz_discriminator(sd: StateDict, path: Path | None) -> Detected:
    convs = [i for i in _indices(sd, r"model\.(\d+)\.weight") if sd[f"model.{i}.weight"].ndim == 4]
    norm = "batch" if "model.3.weight" in sd else ("instance" if "model.2.bias" in sd else "none")
    if norm != "batch":
        sd = OrderedDict((k, v) for k, v in sd.items() if not k.endswith(_STAT_SUFFIXES))
    first = sd["model.0.weight"]
    kwargs = {"input_nc": first.shape[1], "ndf": first.shape[0], "n_layers": len(convs) - 2, "norm": norm}
    return "patchgan-discriminator", kwargs, sd, "junyanz PatchGAN discriminator"


def _is4d(sd: StateDict, key: str, k: int | None = None) -> bool:
    t = sd.get(key)
    return t is not None and t.ndim == 4 and (k is None or t.shape[-1] == k)


def detect(sd: StateDict, path: Path | None = None) -> Detected:
    """Which network a state dict holds, with its kwargs, in our key names."""
    if "conv_first.weight" in sd and "body.0.rdb1.conv1.weight" in sd:
        return _rrdbnet(sd, "BasicSR key names", path)
    if "conv_first.weight" in sd and "RRDB_trunk.0.RDB1.conv1.weight" in sd:
        return _rrdbnet(rrdb_from_2019(sd), "ESRGAN 2019 key names", path)
    if "model.0.weight" in sd and "model.1.sub.0.RDB1.conv1.0.weight" in sd:
        return _rrdbnet(rrdb_from_2018(sd, path), "ESRGAN 2018 key names", path)
    if "conv_first.weight" in sd and "body.0.conv1.weight" in sd and "upconv1.weight" in sd:
        return _msrresnet(sd, path)
    if _is4d(sd, "body.0.weight", 3) and all(k.startswith("body.") for k in sd):
        return _srvgg(sd, path)
    if _is4d(sd, "model.1.weight", 7):
        return _junyanz_generator(sd, path)
    if _is4d(sd, "model.0.weight", 4) and not _is4d(sd, "model.1.weight"):
        return _junyanz_discriminator(sd, path)
    if "conv0_0.weight" in sd and "linear1.weight" in sd:
        f = sd["conv0_0.weight"]
        size = 256 if "conv5_0.weight" in sd else 128
        kwargs = {"num_in_ch": f.shape[1], "num_feat": f.shape[0], "input_size": size}
        return "vgg-discriminator", kwargs, sd, "BasicSR VGG-style discriminator"
    if "conv0.weight" in sd and "conv1.weight_orig" in sd:
        f = sd["conv0.weight"]
        kwargs = {"num_in_ch": f.shape[1], "num_feat": f.shape[0], "skip_connection": True}
        return "unet-discriminator-sn", kwargs, sd, "Real-ESRGAN U-Net discriminator (SN)"
    if "model.model.0.weight" in sd:
        raise CheckpointError("not an image-to-image model we support: junyanz U-Net generator (pix2pix)", path)
    sample = ", ".join(list(sd)[:3])
    raise UnknownLayout(f"not an image-to-image model: unrecognised keys ({sample}, ...)", path)


def load_into(net: nn.Module, sd: StateDict, path: Path | None = None) -> None:
    """Strict load; only BatchNorm ``num_batches_tracked`` (absent before torch 0.4) may be missing."""
    try:
        res = net.load_state_dict(sd, strict=False)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln]
        detail = lines[0] if lines else str(e).splitlines()[0]
        raise CheckpointError(f"tensor shapes do not match the inferred {type(net).__name__}: {detail[:200]}", path) from None
    missing = [k for k in res.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or res.unexpected_keys:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {res.unexpected_keys[0]!r}"
        n = len(missing) + len(res.unexpected_keys)
        raise CheckpointError(f"keys do not match the inferred {type(net).__name__}: {what} ({n} mismatches)", path)


_DISCRIMINATORS = ("patchgan-discriminator", "vgg-discriminator", "unet-discriminator-sn")
_JUNYANZ = {
    "cyclegan-resnet-generator": "junyanz CycleGAN .pth (ResnetGenerator state dict)",
    "patchgan-discriminator": "junyanz CycleGAN .pth (NLayerDiscriminator state dict)",
}


def network_from_state_dict(sd: StateDict, path: Path | None = None) -> tuple[str, nn.Module, dict[str, Any]]:
    """Build and fill the network a state dict holds: (role, net, meta)."""
    arch, kwargs, sd, layout = detect(sd, path)
    stored = sum(t.numel() * t.element_size() for t in sd.values())
    try:
        net = build_checked(arch, kwargs, path, stored, {k: tuple(v.shape) for k, v in sd.items()}, layout)
    except ValueError as e:
        raise CheckpointError(f"unsupported {layout}: {e}", path) from None
    load_into(net, sd, path)
    net.source_layout = layout
    role = "D" if arch in _DISCRIMINATORS else ("G" if arch == "cyclegan-resnet-generator" else "net")
    return role, net, {"layout": layout, "arch": arch, "kwargs": kwargs}


def _load(path: Path) -> Checkpoint:
    obj = torch_load(path)
    sd, where = unwrap(obj, path)
    try:
        role, net, meta = network_from_state_dict(sd, path)
    except UnknownLayout:
        return checkpoint_from_object(obj, path, ours="not an ESRGAN-family or CycleGAN layout")
    meta["container"] = where
    if isinstance(obj, dict) and "params_ema" in obj and "params" in obj:
        meta["container"] = "'params_ema' (preferred over 'params')"
    arch = meta["arch"]
    if arch in _JUNYANZ:
        fid, name = "junyanz-cyclegan-pth", _JUNYANZ[arch]
        m = re.search(r"net_([GD](?:_[AB])?)\.pth$", path.name)
        if m:  # e.g. latest_net_G_A.pth: generator A->B; the role stays 'G' / 'D'
            meta["junyanz_name"] = m.group(1)
    else:
        fid, name = "esrgan-pth", f"ESRGAN-family .pth ({meta['layout']}, {where})"
    return Checkpoint(format_id=fid, format_name=name, nets={role: net}, meta=meta)


READER = register_reader(FormatReader(FORMAT_ID, _sniff, _load))
