"""Legacy TensorFlow StyleGAN2(-ADA) network pickles: ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network``.

Each network's state is ``{version, name, static_kwargs, components, build_module_src,
build_func_name, variables: [(name, ndarray)]}``; ``build_module_src`` is never run.  The
conversion to our StyleGAN2 networks follows the rules of NVlabs' ``legacy.py`` (kwarg names and
defaults, variable names, layouts): TF conv weights are ``[kh, kw, in, out]`` -> ``(3, 2, 0, 1)``
(up-convs and generator skips also flipped), dense ``[in, out]`` transposed, ``affine.bias =
mod_bias + 1``, ``dlatent_avg`` -> ``w_avg``, ``channel_base = fmap_base * 2``, ``ToRGB_lod*`` /
``FromRGB_lod*`` variables mean architecture 'orig'.  Each rule is invertible, which the tests'
writer (``tests/writers/nvlabs_tf_write.py``) uses to make such pickles.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.errors import CheckpointError
from ganeditor.formats.base import Checkpoint
from ganeditor.formats.bounded import build_checked

Rule = tuple[str, Callable[..., str], str]  # (our key regex, TF name from groups, transform)


def _noise(r: str, k: int) -> str:
    return f"synthesis/noise{int(np.log2(int(r))) * 2 - k}"


G_RULES: list[Rule] = [
    (r"mapping\.w_avg", lambda: "dlatent_avg", "id"),
    (r"mapping\.embed\.weight", lambda: "mapping/LabelEmbed/weight", "dense"),
    (r"mapping\.embed\.bias", lambda: "mapping/LabelEmbed/bias", "id"),
    (r"mapping\.fc(\d+)\.weight", lambda i: f"mapping/Dense{i}/weight", "dense"),
    (r"mapping\.fc(\d+)\.bias", lambda i: f"mapping/Dense{i}/bias", "id"),
    (r"synthesis\.b4\.const", lambda: "synthesis/4x4/Const/const", "batch"),
    (r"synthesis\.b4\.conv1\.noise_const", lambda: "synthesis/noise0", "noise"),
    (r"synthesis\.b4\.conv1\.(weight|bias|noise_strength|affine\.weight|affine\.bias)", lambda p: f"synthesis/4x4/Conv/{p}", "layer"),
    (r"synthesis\.b(\d+)\.conv0\.noise_const", lambda r: _noise(r, 5), "noise"),
    (r"synthesis\.b(\d+)\.conv0\.(weight)", lambda r, p: f"synthesis/{r}x{r}/Conv0_up/{p}", "conv_flip"),
    (r"synthesis\.b(\d+)\.conv0\.(bias|noise_strength|affine\.weight|affine\.bias)", lambda r, p: f"synthesis/{r}x{r}/Conv0_up/{p}", "layer"),
    (r"synthesis\.b(\d+)\.conv1\.noise_const", lambda r: _noise(r, 4), "noise"),
    (r"synthesis\.b(\d+)\.conv1\.(weight|bias|noise_strength|affine\.weight|affine\.bias)", lambda r, p: f"synthesis/{r}x{r}/Conv1/{p}", "layer"),
    (r"synthesis\.b(\d+)\.torgb\.(weight|bias|affine\.weight|affine\.bias)", lambda r, p: f"synthesis/{r}x{r}/ToRGB/{p}", "layer"),
    (r"synthesis\.b(\d+)\.skip\.weight", lambda r: f"synthesis/{r}x{r}/Skip/weight", "conv_flip"),
]  # fmt: skip
D_RULES: list[Rule] = [
    (r"b(\d+)\.fromrgb\.weight", lambda r: f"{r}x{r}/FromRGB/weight", "conv"),
    (r"b(\d+)\.fromrgb\.bias", lambda r: f"{r}x{r}/FromRGB/bias", "id"),
    (r"b(\d+)\.conv0\.weight", lambda r: f"{r}x{r}/Conv0/weight", "conv"),
    (r"b(\d+)\.conv0\.bias", lambda r: f"{r}x{r}/Conv0/bias", "id"),
    (r"b(\d+)\.conv1\.weight", lambda r: f"{r}x{r}/Conv1_down/weight", "conv"),
    (r"b(\d+)\.conv1\.bias", lambda r: f"{r}x{r}/Conv1_down/bias", "id"),
    (r"b(\d+)\.skip\.weight", lambda r: f"{r}x{r}/Skip/weight", "conv"),
    (r"mapping\.embed\.weight", lambda: "LabelEmbed/weight", "dense"),
    (r"mapping\.embed\.bias", lambda: "LabelEmbed/bias", "id"),
    (r"mapping\.fc(\d+)\.weight", lambda i: f"Mapping{i}/weight", "dense"),
    (r"mapping\.fc(\d+)\.bias", lambda i: f"Mapping{i}/bias", "id"),
    (r"b4\.conv\.weight", lambda: "4x4/Conv/weight", "conv"),
    (r"b4\.conv\.bias", lambda: "4x4/Conv/bias", "id"),
    (r"b4\.fc\.weight", lambda: "4x4/Dense0/weight", "dense"),
    (r"b4\.fc\.bias", lambda: "4x4/Dense0/bias", "id"),
    (r"b4\.out\.weight", lambda: "Output/weight", "dense"),
    (r"b4\.out\.bias", lambda: "Output/bias", "id"),
]  # fmt: skip
_TF_PARAM = {"weight": "weight", "bias": "bias", "noise_strength": "noise_strength",
             "affine.weight": "mod_weight", "affine.bias": "mod_bias"}  # fmt: skip


def _transform(kind: str, key: str, v: np.ndarray, to_tf: bool) -> np.ndarray:
    if kind == "layer":  # a synthesis layer's parameter: the last path element says which
        kind = {"weight": "conv", "mod_weight": "dense", "mod_bias": "modbias"}.get(key.rsplit("/", 1)[-1], "id")
    if kind == "conv":
        return v.transpose(2, 3, 1, 0) if to_tf else v.transpose(3, 2, 0, 1)
    if kind == "conv_flip":
        return v.transpose(2, 3, 1, 0)[::-1, ::-1] if to_tf else v[::-1, ::-1].transpose(3, 2, 0, 1)
    if kind == "dense":
        return v.T
    if kind == "modbias":
        return v - 1 if to_tf else v + 1
    if kind == "batch":
        return v[None] if to_tf else v[0]
    if kind == "noise":
        return v[None, None] if to_tf else v[0, 0]
    return v


def _tf_name(rules: list[Rule], key: str) -> tuple[str, str] | None:
    for pattern, name_fn, kind in rules:
        m = re.fullmatch(pattern, key)
        if m:
            groups = list(m.groups())
            if kind == "layer":
                groups[-1] = _TF_PARAM[groups[-1]]
            return name_fn(*groups), kind
    return None  # e.g. resample_filter: fixed buffers, not variables


def _collect(net: Any, prefix: str = "") -> dict[str, np.ndarray]:
    st = net.state if hasattr(net, "state") else {}
    out = {}
    for item in st.get("variables") or []:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], (np.ndarray, np.generic))):
            raise CheckpointError("malformed TensorFlow variable list")
        out[prefix + str(item[0])] = np.asarray(item[1])
    for name, comp in (st.get("components") or {}).items():
        out.update(_collect(comp, f"{prefix}{name}/"))
    return out


def _kwargs(tf: dict[str, Any], spec: dict[str, Any], ignore: tuple[str, ...]) -> dict[str, Any]:
    """NVlabs kwargs from TF static_kwargs; spec maps our name -> (tf name, default[, value if None])."""
    known = set(ignore)

    def conv(s: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in s.items():
            if isinstance(v, dict):
                out[k] = conv(v)
                continue
            tf_name, default, *none = v
            known.add(tf_name)
            val = tf.get(tf_name, default)
            val = (none[0] if none else None) if val is None else val
            out[k] = val * 2 if k == "channel_base" else val
        return out

    out = conv(spec)
    unknown = sorted(set(tf) - known)
    if unknown:
        raise CheckpointError(f"unknown TensorFlow network setting '{unknown[0]}'")
    return out


G_SPEC = {
    "z_dim": ("latent_size", 512), "c_dim": ("label_size", 0), "w_dim": ("dlatent_size", 512),
    "img_resolution": ("resolution", 1024), "img_channels": ("num_channels", 3),
    "mapping_kwargs": {"num_layers": ("mapping_layers", 8), "embed_features": ("label_fmaps", None),
                       "layer_features": ("mapping_fmaps", None), "activation": ("mapping_nonlinearity", "lrelu"),
                       "lr_multiplier": ("mapping_lrmul", 0.01), "w_avg_beta": ("w_avg_beta", 0.995, 1)},
    "synthesis_kwargs": {"channel_base": ("fmap_base", 16384), "channel_max": ("fmap_max", 512),
                         "num_fp16_res": ("num_fp16_res", 0), "conv_clamp": ("conv_clamp", None),
                         "architecture": ("architecture", "skip"), "resample_filter": ("resample_kernel", [1, 3, 3, 1]),
                         "use_noise": ("use_noise", True), "activation": ("nonlinearity", "lrelu")},
}  # fmt: skip
D_SPEC = {
    "c_dim": ("label_size", 0), "img_resolution": ("resolution", 1024), "img_channels": ("num_channels", 3),
    "architecture": ("architecture", "resnet"), "channel_base": ("fmap_base", 16384), "channel_max": ("fmap_max", 512),
    "num_fp16_res": ("num_fp16_res", 0), "conv_clamp": ("conv_clamp", None), "cmap_dim": ("mapping_fmaps", None),
    "block_kwargs": {"activation": ("nonlinearity", "lrelu"), "resample_filter": ("resample_kernel", [1, 3, 3, 1]),
                     "freeze_layers": ("freeze_layers", 0)},
    "mapping_kwargs": {"num_layers": ("mapping_layers", 0), "embed_features": ("mapping_fmaps", None),
                       "layer_features": ("mapping_fmaps", None), "activation": ("nonlinearity", "lrelu"),
                       "lr_multiplier": ("mapping_lrmul", 0.1)},
    "epilogue_kwargs": {"mbstd_group_size": ("mbstd_group_size", None), "mbstd_num_channels": ("mbstd_num_features", 1),
                        "activation": ("nonlinearity", "lrelu")},
}  # fmt: skip


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    return v.item() if isinstance(v, np.generic) else v


def convert_tf_network(tf_net: Any, kind: str) -> nn.Module:
    """Our StyleGAN2 generator ('G') or discriminator ('D') from a TF network record."""
    st = tf_net.state
    if not isinstance(st.get("version"), int) or st["version"] < 4:
        raise CheckpointError("TensorFlow network pickle version too low (StyleGAN1 or early StyleGAN2)")
    static = _plain(st.get("static_kwargs") or {})
    params = _collect(tf_net)
    if kind == "G":
        kwargs = _kwargs(static, G_SPEC, ("truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure"))
        lod = re.compile(r"synthesis/ToRGB_lod(\d+)/(.*)")
        arch, rules, prefix = "stylegan2-generator", G_RULES, "synthesis/{r}x{r}/ToRGB/"
    else:
        kwargs = _kwargs(static, D_SPEC, ("structure",))
        lod = re.compile(r"FromRGB_lod(\d+)/(.*)")
        arch, rules, prefix = "stylegan2-discriminator", D_RULES, "{r}x{r}/FromRGB/"
    for name, value in list(params.items()):
        m = lod.fullmatch(name)
        if m:
            r = kwargs["img_resolution"] // 2 ** int(m.group(1))
            params[prefix.format(r=r) + m.group(2)] = value
            (kwargs["synthesis_kwargs"] if kind == "G" else kwargs)["architecture"] = "orig"
    stored = sum(int(np.asarray(v).nbytes) for v in params.values())
    net = build_checked(arch, kwargs, None, stored, None, f"TensorFlow network {kind!r}")
    sd = net.state_dict()
    for key, ref in sd.items():
        found = _tf_name(rules, key)
        if found is None:
            if key.endswith("resample_filter"):
                continue  # fixed filter taps, not variables
            raise CheckpointError(f"no TensorFlow variable is known for '{key}'")
        name, how = found
        if name not in params:
            raise CheckpointError(f"TensorFlow pickle lacks variable '{name}' (for '{key}')")
        value = np.array(_transform(how, name, params[name], to_tf=False), order="C")
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(f"TensorFlow variable '{name}' has shape {list(value.shape)}, expected {list(ref.shape)}")
        ref.copy_(torch.from_numpy(value.astype(np.float32)))
    net.load_state_dict(sd)
    return net


def convert_tf_pickle(data: tuple, path: Path) -> Checkpoint:
    """Checkpoint with roles G_ema (from Gs), G and D from a TF ``(G, D, Gs)`` tuple."""
    tf_G, tf_D, tf_Gs = data
    try:
        nets = {"G_ema": convert_tf_network(tf_Gs, "G"), "G": convert_tf_network(tf_G, "G"),
                "D": convert_tf_network(tf_D, "D")}  # fmt: skip
    except CheckpointError as e:
        raise CheckpointError(str(e), path) from None
    meta = {"layout": "tf", "family": "StyleGAN2 (TensorFlow)", "classes": {"G_ema": "Network", "G": "Network", "D": "Network"},
            "training_set_kwargs": None, "augment_pipe": None}  # fmt: skip
    return Checkpoint("nvlabs-pkl", "NVlabs network pickle (StyleGAN2, TensorFlow)", nets, meta)
