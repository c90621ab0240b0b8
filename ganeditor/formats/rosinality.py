"""rosinality stylegan2-pytorch ``.pt`` checkpoints: read into our StyleGAN2 (NVlabs names), write back.

The layout (facts from rosinality/stylegan2-pytorch @bef283a1, written anew here):
``{'g_ema': sd, 'latent_avg': [style_dim]}`` from ``convert_weight.py``; ``train.py`` snapshots
hold ``g, d, g_ema, g_optim, d_optim, args (argparse.Namespace), ada_aug_p`` and no latent_avg.
Both rosinality and NVlabs flip TensorFlow's up-conv kernels, so weights map one to one.
"""

from __future__ import annotations

import argparse
import io
import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import torch
import torch.nn as nn

from ganeditor.archs import ARCHS
from ganeditor.core.atomic import atomic_write
from ganeditor.core.errors import CheckpointError
from ganeditor.formats.base import TORCH_ZIP_MAGIC, Checkpoint, FormatReader, register_reader, torch_pickle_bytes
from ganeditor.formats.bounded import build_checked
from ganeditor.formats.torch_load import torch_load

FORMAT_ID = "rosinality-pt"
FORMAT_NAME = "rosinality stylegan2-pytorch checkpoint"
G_ARCH = "stylegan2-generator"
D_ARCH = "stylegan2-discriminator"
W_AVG_SAMPLES = 4096  # as rosinality's generate.py --truncation_mean
W_AVG_SEED = 0
_SNIFF_BYTES = 1 << 20  # legacy torch files keep their key names near the start
_MARKERS = (b"style.1.weight", b"conv1.conv.weight", b"input.input")
_STD_KERNEL = [1, 3, 3, 1]

StateDict = dict[str, torch.Tensor]


class _Pair(NamedTuple):
    rosi: str  # rosinality key
    ours: str  # our (NVlabs) key
    kind: str  # how the rosinality shape relates to ours: a key of _ROSI_SHAPE


_ROSI_SHAPE = {  # rosinality shape of a tensor from its shape in our net, by pair kind
    "same": lambda s: tuple(s),
    "lead1": lambda s: (1, *s),  # conv weight [1,O,I,k,k], const [1,C,4,4]
    "lead11": lambda s: (1, 1, *s),  # noise buffer [1,1,r,r]
    "scalar": lambda s: (1,),  # noise strength [1]
    "bias4d": lambda s: (1, *s, 1, 1),  # to_rgb bias [1,3,1,1]
}


def _styled(rosi: str, ours: str) -> Iterator[_Pair]:
    yield _Pair(f"{rosi}.conv.weight", f"{ours}.weight", "lead1")
    yield _Pair(f"{rosi}.conv.modulation.weight", f"{ours}.affine.weight", "same")
    yield _Pair(f"{rosi}.conv.modulation.bias", f"{ours}.affine.bias", "same")
    yield _Pair(f"{rosi}.noise.weight", f"{ours}.noise_strength", "scalar")
    yield _Pair(f"{rosi}.activate.bias", f"{ours}.bias", "same")


def _torgb(rosi: str, ours: str) -> Iterator[_Pair]:
    yield _Pair(f"{rosi}.bias", f"{ours}.bias", "bias4d")
    yield _Pair(f"{rosi}.conv.weight", f"{ours}.weight", "lead1")
    yield _Pair(f"{rosi}.conv.modulation.weight", f"{ours}.affine.weight", "same")
    yield _Pair(f"{rosi}.conv.modulation.bias", f"{ours}.affine.bias", "same")


def generator_pairs(size: int, n_mlp: int) -> list[_Pair]:
    """Rosinality generator keys (learned tensors and noise buffers, in their order) -> ours."""
    pairs = []
    for i in range(n_mlp):
        pairs += [_Pair(f"style.{i + 1}.{p}", f"mapping.fc{i}.{p}", "same") for p in ("weight", "bias")]
    pairs.append(_Pair("input.input", "synthesis.b4.const", "lead1"))
    pairs += _styled("conv1", "synthesis.b4.conv1")
    pairs += _torgb("to_rgb1", "synthesis.b4.torgb")
    resolutions = [2**i for i in range(3, int(math.log2(size)) + 1)]
    for k, res in enumerate(resolutions):
        pairs += _styled(f"convs.{2 * k}", f"synthesis.b{res}.conv0")
        pairs += _styled(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1")
    for k, res in enumerate(resolutions):
        pairs += _torgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb")
    pairs.append(_Pair("noises.noise_0", "synthesis.b4.conv1.noise_const", "lead11"))
    for k, res in enumerate(resolutions):
        pairs.append(_Pair(f"noises.noise_{2 * k + 1}", f"synthesis.b{res}.conv0.noise_const", "lead11"))
        pairs.append(_Pair(f"noises.noise_{2 * k + 2}", f"synthesis.b{res}.conv1.noise_const", "lead11"))
    return pairs


def _kernel_keys(size: int) -> list[str]:
    """Rosinality's fixed FIR buffers (``make_kernel([1,3,3,1]) * 4``): blur of up-convs, skip upsample."""
    n = int(math.log2(size)) - 2
    return [f"convs.{2 * k}.conv.blur.kernel" for k in range(n)] + [f"to_rgbs.{k}.upsample.kernel" for k in range(n)]


def _std_kernel() -> torch.Tensor:
    k = torch.outer(torch.tensor(_STD_KERNEL, dtype=torch.float32), torch.tensor(_STD_KERNEL, dtype=torch.float32))
    return k / k.sum() * 4  # rosinality's make_kernel([1,3,3,1]) * 4 == our resample_filter * 4


# ----------------------------------------------------------------------------------------------
# shape inference


def infer_generator_config(sd: StateDict, path: Path | None = None) -> dict[str, Any]:
    """Size, style_dim, n_mlp and per-resolution channels of a rosinality generator state dict."""
    for key in ("style.1.weight", "input.input", "conv1.conv.weight", "to_rgb1.conv.weight"):
        if key not in sd:
            raise CheckpointError(f"not a rosinality generator: missing key {key!r}", path)
    style_dim = int(sd["style.1.weight"].shape[1])
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
    if (rgb_out := int(sd["to_rgb1.conv.weight"].shape[1])) != 3:
        raise CheckpointError(f"to_rgb1 has {rgb_out} outputs, not 3 (SWAGAN and other variants unsupported)", path)
    n_up = 0
    while f"to_rgbs.{n_up}.conv.weight" in sd:
        n_up += 1
    size = 4 * 2**n_up
    channels = {4: int(sd["input.input"].shape[1])}
    for k in range(n_up):
        key = f"convs.{2 * k}.conv.weight"
        if key not in sd:
            raise CheckpointError(f"rosinality generator incomplete: missing key {key!r}", path)
        channels[8 * 2**k] = int(sd[key].shape[1])
    return {"size": size, "style_dim": style_dim, "n_mlp": n_mlp, "channels": channels}


def channel_kwargs(channels: dict[int, int]) -> dict[str, int] | None:
    """``channel_base``/``channel_max`` with ``min(base // res, max) == channels[res]``, or None."""
    cmax = max(channels.values())
    top = max(channels)
    base = channels[top] * top
    if all(min(base // r, cmax) == c for r, c in channels.items()):
        return {"channel_base": base, "channel_max": cmax}
    return None


def channel_multiplier(channels: dict[int, int]) -> int | None:
    """Rosinality's ``channel_multiplier`` when the widths are theirs (512 up to 32 px), else None."""
    if 64 not in channels or any(c != 512 for r, c in channels.items() if r <= 32):
        return None
    cm = channels[64] // 256
    ok = cm >= 1 and all(c == 16384 * cm // r for r, c in channels.items() if r >= 64)
    return cm if ok else None


def generator_kwargs(cfg: dict[str, Any], path: Path | None = None) -> dict[str, Any]:
    """Constructor kwargs of our StyleGAN2 generator reproducing a rosinality generator."""
    ck = channel_kwargs(cfg["channels"])
    if ck is None:  # rosinality channel_multiplier >= 3: wider at 64 px than at 32 px
        widths = ", ".join(f"{r}: {c}" for r, c in sorted(cfg["channels"].items()))
        raise CheckpointError(f"channel widths {{{widths}}} cannot be expressed by our StyleGAN2 (not supported)", path)
    return {
        "z_dim": cfg["style_dim"],
        "c_dim": 0,
        "w_dim": cfg["style_dim"],
        "img_resolution": cfg["size"],
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": cfg["n_mlp"], "lr_multiplier": 0.01},
        "synthesis_kwargs": {"architecture": "skip", "conv_clamp": None, "num_fp16_res": 0, **ck},
    }


# ----------------------------------------------------------------------------------------------
# discriminator (rosinality's ResBlock D has the layout of NVlabs' 'resnet' D)


_D_BLOCK = (  # rosinality ResBlock -> NVlabs DiscriminatorBlock (resnet)
    ("conv1.0.weight", "conv0.weight"), ("conv1.1.bias", "conv0.bias"), ("conv2.1.weight", "conv1.weight"),
    ("conv2.2.bias", "conv1.bias"), ("skip.1.weight", "skip.weight"),
)  # fmt: skip
_D_EPILOGUE = (
    ("final_conv.0.weight", "b4.conv.weight"), ("final_conv.1.bias", "b4.conv.bias"),
    ("final_linear.0.weight", "b4.fc.weight"), ("final_linear.0.bias", "b4.fc.bias"),
    ("final_linear.1.weight", "b4.out.weight"), ("final_linear.1.bias", "b4.out.bias"),
)  # fmt: skip


def discriminator_pairs(size: int) -> list[_Pair]:
    """Rosinality discriminator keys -> NVlabs resnet discriminator keys."""
    pairs = [_Pair(f"convs.0.{i}.{p}", f"b{size}.fromrgb.{p}", "same") for i, p in ((0, "weight"), (1, "bias"))]
    for j, res in enumerate(2**i for i in range(int(math.log2(size)), 2, -1)):
        pairs += [_Pair(f"convs.{j + 1}.{r}", f"b{res}.{o}", "same") for r, o in _D_BLOCK]
    return pairs + [_Pair(r, o, "same") for r, o in _D_EPILOGUE]


def _discriminator_kwargs(sd: StateDict, path: Path | None) -> dict[str, Any]:
    if "convs.0.0.weight" not in sd:
        raise CheckpointError("rosinality discriminator: missing key 'convs.0.0.weight'", path)
    n = 0
    while f"convs.{n + 1}.conv2.1.weight" in sd:
        n += 1
    size = 4 * 2**n
    channels = {size: int(sd["convs.0.0.weight"].shape[0])}
    for j in range(n):
        channels[size // 2 ** (j + 1)] = int(sd[f"convs.{j + 1}.conv2.1.weight"].shape[0])
    ck = channel_kwargs(channels)
    if ck is None:
        raise CheckpointError("rosinality discriminator widths cannot be expressed by our StyleGAN2 D", path)
    return {"c_dim": 0, "img_resolution": size, "img_channels": 3, "architecture": "resnet", **ck}


def load_discriminator(sd: StateDict, path: Path | None = None) -> nn.Module:
    """Our StyleGAN2 'resnet' discriminator from a rosinality discriminator state dict."""
    D = build_checked(D_ARCH, _discriminator_kwargs(sd, path), path, _nbytes(sd), None, "rosinality 'd'")
    blocks = range(1, int(math.log2(D.img_resolution)) - 1)
    kernels = [f"convs.{j}.{m}.0.kernel" for j in blocks for m in ("conv2", "skip")]
    _map_into(D, sd, discriminator_pairs(D.img_resolution), kernels, "'d'", path)
    _check_kernels(sd, kernels, _std_kernel() / 4, "'d'", path)
    return D


# ----------------------------------------------------------------------------------------------
# loading


def _map_into(net: nn.Module, sd: StateDict, pairs: list[_Pair], fixed: list[str], what: str, path: Path | None):
    """Copy rosinality tensors ``sd`` into ``net`` (``fixed``: known buffers not copied); errors name the key."""
    ours = net.state_dict()
    new = {}
    for p in pairs:
        if p.rosi not in sd:
            raise CheckpointError(f"{what}: missing key {p.rosi!r}", path)
        if p.ours not in ours:
            raise CheckpointError(f"{what}: our network has no {p.ours!r} (for {p.rosi!r})", path)
        t, want = sd[p.rosi], ours[p.ours].shape
        if tuple(t.shape) != _ROSI_SHAPE[p.kind](want):
            expected = list(_ROSI_SHAPE[p.kind](want))
            raise CheckpointError(f"{what}: {p.rosi!r} has shape {list(t.shape)}, expected {expected}", path)
        new[p.ours] = t.detach().reshape(want).to(ours[p.ours].dtype)
    known = {p.rosi for p in pairs} | set(fixed)
    extra = [k for k in sd if k not in known]
    if extra:
        raise CheckpointError(f"{what}: unexpected key {extra[0]!r} (a variant this reader does not know)", path)
    net.load_state_dict({**ours, **new}, strict=True)


def _check_kernels(sd: StateDict, keys: list[str], expected: torch.Tensor, what: str, path: Path | None) -> None:
    for k in keys:
        if k in sd and not torch.equal(sd[k].float(), expected):
            raise CheckpointError(f"{what}: {k!r} is not the standard [1,3,3,1] blur kernel (not supported)", path)


@torch.no_grad()
def mean_w(G: nn.Module, n: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED) -> torch.Tensor:
    """Mean mapped latent of ``n`` standard-normal z (rosinality's ``mean_latent``), seeded."""
    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))
    return G.mapping(z, torch.zeros([n, G.c_dim]), truncation_psi=1)[:, 0].mean(0)


def load_generator(
    sd: StateDict,  # rosinality generator state dict
    latent_avg: torch.Tensor | None,  # [style_dim] (or [1, style_dim]); None = compute from the mapping
    what: str = "'g_ema'",  # name of the entry, for error messages
    path: Path | None = None,  # file, for error messages
) -> tuple[nn.Module, dict[str, Any], str]:
    """Our StyleGAN2 generator from a rosinality generator; returns (G, inferred config, w_avg source)."""
    cfg = infer_generator_config(sd, path)
    G = build_checked(G_ARCH, generator_kwargs(cfg, path), path, _nbytes(sd), None, f"rosinality {what}")
    _map_into(G, sd, generator_pairs(cfg["size"], cfg["n_mlp"]), _kernel_keys(cfg["size"]), what, path)
    _check_kernels(sd, _kernel_keys(cfg["size"]), _std_kernel(), what, path)
    if latent_avg is not None:
        la = latent_avg.detach().float().reshape(-1)
        if la.numel() != cfg["style_dim"]:
            raise CheckpointError(f"latent_avg has {la.numel()} values, expected {cfg['style_dim']}", path)
        G.mapping.w_avg.copy_(la)
        source = "latent_avg"
    else:
        G.mapping.w_avg.copy_(mean_w(G))
        source = f"computed: mean of {W_AVG_SAMPLES} mapped z (torch seed {W_AVG_SEED})"
    return G, cfg, source


def _nbytes(sd: StateDict) -> int:
    return sum(t.numel() * t.element_size() for t in sd.values() if isinstance(t, torch.Tensor))


def _sniff(path: Path, head: bytes) -> bool:
    data = torch_pickle_bytes(path, head, _SNIFF_BYTES)
    return data is not None and all(m in data for m in _MARKERS)


def _json_safe(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)) and all(x is None or isinstance(x, (bool, int, float, str)) for x in v):
        return list(v)
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return v.item()
    return repr(v)[:200]


def _load(path: Path) -> Checkpoint:
    with open(path, "rb") as f:
        head = f.read(8)
    obj = torch_load(path, allow=[argparse.Namespace], mmap=head.startswith(TORCH_ZIP_MAGIC))  # train.py args
    if isinstance(obj, dict) and "style.1.weight" in obj:  # a bare generator state dict
        obj = {"g_ema": obj}
    if not isinstance(obj, dict) or not any(isinstance(obj.get(k), dict) for k in ("g_ema", "g")):
        raise CheckpointError("rosinality checkpoint without 'g_ema' or 'g'", path)
    nets: dict[str, nn.Module] = {}
    meta: dict[str, Any] = {"roles_in_file": sorted(str(k) for k in obj), "w_avg_source": {}}
    for key, role in (("g_ema", "G_ema"), ("g", "G")):
        if isinstance(obj.get(key), dict):
            la = obj.get("latent_avg") if key == "g_ema" else None
            G, cfg, source = load_generator(obj[key], la, f"{key!r}", path)
            nets[role] = G
            meta["w_avg_source"][role] = source
            meta.update(
                resolution=cfg["size"], z_dim=cfg["style_dim"], w_dim=cfg["style_dim"], n_mlp=cfg["n_mlp"],
                channels={str(r): c for r, c in sorted(cfg["channels"].items())},
                channel_multiplier=channel_multiplier(cfg["channels"]),
            )  # fmt: skip
    meta["has_discriminator"] = isinstance(obj.get("d"), dict)
    meta["discriminator_loaded"] = meta["has_discriminator"] and D_ARCH in ARCHS
    if meta["discriminator_loaded"]:
        nets["D"] = load_discriminator(obj["d"], path)
    if isinstance(obj.get("args"), argparse.Namespace):
        meta["train_args"] = {k: _json_safe(v) for k, v in sorted(vars(obj["args"]).items())}
    if "ada_aug_p" in obj:
        meta["ada_aug_p"] = _json_safe(obj["ada_aug_p"])
    return Checkpoint(FORMAT_ID, FORMAT_NAME, nets, meta)


READER = register_reader(FormatReader(FORMAT_ID, _sniff, _load))


# ----------------------------------------------------------------------------------------------
# writing


def rosinality_state_dict(G: nn.Module) -> "OrderedDict[str, torch.Tensor]":
    """Our StyleGAN2 generator's tensors under rosinality's key names, in their order."""
    if G.img_channels != 3 or G.c_dim != 0 or G.z_dim != G.w_dim:
        raise CheckpointError("only unconditional RGB generators with z_dim == w_dim fit the rosinality layout")
    ours = G.state_dict()
    n_mlp = sum(1 for k in ours if re.fullmatch(r"mapping\.fc\d+\.weight", k))
    fcs = [getattr(G.mapping, f"fc{i}") for i in range(n_mlp)]
    if any(fc.weight.shape != (G.w_dim, G.w_dim) or abs(fc.bias_gain - 0.01) > 1e-9 for fc in fcs):
        raise CheckpointError("rosinality's mapping needs w_dim x w_dim layers with lr_multiplier 0.01")
    if any(not torch.equal(v.cpu(), _std_kernel() / 4) for k, v in ours.items() if k.endswith("resample_filter")):
        raise CheckpointError("rosinality's layout needs the standard [1,3,3,1] resampling filter")
    size = int(G.img_resolution)
    kernel = _std_kernel()
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for p in generator_pairs(size, n_mlp):
        if p.ours not in ours:
            raise CheckpointError(f"network has no {p.ours!r}; not a StyleGAN2 'skip' generator")
        t = ours[p.ours]
        out[p.rosi] = t.detach().cpu().float().reshape(_ROSI_SHAPE[p.kind](t.shape)).clone()
        m = re.fullmatch(r"convs\.(\d+)\.conv\.weight", p.rosi)
        if m and int(m.group(1)) % 2 == 0:
            out[f"convs.{m.group(1)}.conv.blur.kernel"] = kernel.clone()
        m = re.fullmatch(r"to_rgbs\.(\d+)\.bias", p.rosi)
        if m:
            out[f"to_rgbs.{m.group(1)}.upsample.kernel"] = kernel.clone()
    return out


def save_rosinality_pt(path: str | Path, G: nn.Module, latent_avg: torch.Tensor | None = None) -> None:
    """Write ``{'g_ema': sd, 'latent_avg': t}`` in rosinality's layout (atomically); t = w_avg by default.

    A ``conv_clamp`` of ``G`` is not representable there (rosinality never clamps)."""
    sd = rosinality_state_dict(G)
    la = G.mapping.w_avg if latent_avg is None else latent_avg
    la = la.detach().cpu().float().reshape(-1).clone()
    assert la.shape == (G.w_dim,), f"latent_avg {list(la.shape)}, expected [{G.w_dim}]"
    buf = io.BytesIO()
    torch.save({"g_ema": sd, "latent_avg": la}, buf)
    with atomic_write(path) as f:
        f.write(buf.getvalue())
