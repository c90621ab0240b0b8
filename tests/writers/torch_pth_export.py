"""Test-only writer (not part of the app): our image-to-image networks as ``.pth`` files in the official layouts, so the original
programs (junyanz ``test.py``, Real-ESRGAN ``RealESRGANer``, ESRGAN ``test.py``) load them:

- ``save_basicsr``: ``{'params': sd}`` or ``{'params': sd, 'params_ema': sd}`` (BasicSR / Real-ESRGAN)
- ``save_esrgan``: RRDBNet as a bare state dict with ESRGAN 2019 or 2018 key names
- ``save_junyanz``: a bare ``net.state_dict()`` (with its ``_metadata``), as junyanz ``save_networks``;
  ``legacy_instance_stats=True`` adds the InstanceNorm running stats that pre-0.4 files carried
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn

from ganeditor.core.atomic import atomic_write

StateDict = "OrderedDict[str, torch.Tensor]"


def _save(obj: object, path: str | Path, legacy: bool = False) -> None:
    with atomic_write(path) as f:
        torch.save(obj, f, _use_new_zipfile_serialization=not legacy)


def _cpu_state(net: nn.Module) -> "OrderedDict[str, torch.Tensor]":
    sd = net.state_dict()
    out = OrderedDict((k, v.detach().cpu().clone()) for k, v in sd.items())
    meta = getattr(sd, "_metadata", None)
    if meta is not None:
        out._metadata = meta  # type: ignore[attr-defined]  # torch.save keeps it, as upstream files have it
    return out


def save_basicsr(
    net: nn.Module,
    path: str | Path,
    ema: nn.Module | None = None,  # written as 'params_ema'
    both: bool = False,  # write 'params_ema' = 'params' when there is no separate EMA net
    legacy: bool = False,  # old non-zip torch.save stream
) -> None:
    """BasicSR layout: ``{'params': sd}``; with ``ema`` (or ``both``) also ``'params_ema'``."""
    obj: dict[str, object] = {"params": _cpu_state(net)}
    if ema is not None or both:
        obj["params_ema"] = _cpu_state(ema if ema is not None else net)
    _save(obj, path, legacy)


def esrgan_2019_state_dict(net: nn.Module) -> "OrderedDict[str, torch.Tensor]":
    """RRDBNet state dict with ESRGAN 2019 names (``RRDB_trunk``, ``trunk_conv``, ``upconvN``, ``HRconv``)."""
    out = OrderedDict()
    for k, v in _cpu_state(net).items():
        if k.startswith("body."):
            i, rdb, rest = k[5:].split(".", 2)
            k = f"RRDB_trunk.{i}.RDB{rdb[3:]}.{rest}"
        elif k.startswith("conv_body."):
            k = "trunk_conv." + k[10:]
        elif k.startswith("conv_up"):
            k = "upconv" + k[7:]
        elif k.startswith("conv_hr."):
            k = "HRconv." + k[8:]
        out[k] = v
    return out


def esrgan_2018_state_dict(net: nn.Module) -> "OrderedDict[str, torch.Tensor]":
    """RRDBNet state dict with ESRGAN 2018 sequential names (``model.0``, ``model.1.sub.N.RDBk.convj.0``,
    ``model.1.sub.{nb}``, upsampling convs ``model.3``, ``model.6``…, then HR and last convs)."""
    nb, nu = net.num_block, net.num_upconv
    names = {"conv_first": "model.0", "conv_body": f"model.1.sub.{nb}"}
    names.update({f"conv_up{i}": f"model.{3 * i}" for i in range(1, nu + 1)})
    names.update({"conv_hr": f"model.{3 * nu + 2}", "conv_last": f"model.{3 * nu + 4}"})
    out = OrderedDict()
    for k, v in _cpu_state(net).items():
        mod, _, leaf = k.rpartition(".")
        if mod.startswith("body."):
            i, rdb, conv = mod[5:].split(".")
            out[f"model.1.sub.{i}.RDB{rdb[3:]}.{conv}.0.{leaf}"] = v
        else:
            out[f"{names[mod]}.{leaf}"] = v
    return out


def save_esrgan(net: nn.Module, path: str | Path, layout: str = "2019", legacy: bool = False) -> None:
    """RRDBNet as an ESRGAN state dict: ``layout`` '2019' (xinntao/ESRGAN master) or '2018'."""
    if getattr(net, "unshuffle", 1) != 1:
        raise ValueError("ESRGAN layouts have no pixel-unshuffle models; use save_basicsr")
    sd = esrgan_2019_state_dict(net) if layout == "2019" else esrgan_2018_state_dict(net)
    _save(sd, path, legacy)


def save_junyanz(net: nn.Module, path: str | Path, legacy_instance_stats: bool = False, legacy: bool = False) -> None:
    """A junyanz ``latest_net_G.pth``: the bare state dict.  ``legacy_instance_stats`` adds, for every
    InstanceNorm, the ``running_mean``/``running_var``/``num_batches_tracked`` entries old files have."""
    sd = _cpu_state(net)
    if legacy_instance_stats:
        out = OrderedDict()
        for name, mod in net.named_modules():
            if isinstance(mod, nn.InstanceNorm2d):
                out[f"{name}.running_mean"] = torch.zeros(mod.num_features)
                out[f"{name}.running_var"] = torch.ones(mod.num_features)
                out[f"{name}.num_batches_tracked"] = torch.tensor(0)
        merged = OrderedDict(sd)
        merged.update(out)
        merged._metadata = getattr(sd, "_metadata", OrderedDict())  # type: ignore[attr-defined]
        sd = merged
    _save(sd, path, legacy)
