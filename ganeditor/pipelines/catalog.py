"""The model catalogue: what each model in the model store is for, and what a checkpoint holds.

Our safetensors files name their architectures in the header, so a model's kind (generator,
translator, upscaler, encoder, direction library) is known without loading it (``classify``).  Other
formats are classified by suffix where that is unambiguous, else marked 'unknown' until loaded.
``describe`` loads a checkpoint and lists its networks' facts; ``ganeditor info`` and the window's
Models panel both show it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import safe_open

from ganeditor.core.errors import CheckpointError
from ganeditor.archs.generator_api import is_stylegan
from ganeditor.core.model_store import companion, list_models
from ganeditor.formats import load_checkpoint
from ganeditor.formats.base import PRIMARY_ROLES

KINDS = ("generator", "translator", "upscaler", "restorer", "encoder", "directions", "other", "unknown")
ARCH_KINDS = {
    "stylegan2-generator": "generator",
    "stylegan3-generator": "generator",
    "cyclegan-resnet-generator": "translator",
    "rrdbnet": "upscaler",
    "srvgg": "upscaler",
    "msrresnet": "upscaler",
    "ncnn-graph": "upscaler",
    "latent-encoder": "encoder",
    "scratch-detector": "restorer",
    "inpaint-unet": "restorer",
    "restore-unet": "restorer",
    "colorize-unet": "restorer",
}
SPANDREL_KINDS = {"upscaler": "upscaler", "restorer": "restorer", "face restorer": "restorer", "inpainter": "restorer"}
ROLES = ("generator", "translator", "upscaler")  # the kinds a user chooses one model of


@dataclass
class ModelEntry:
    """One model file: name, path, kind, primary architecture and header metadata."""

    name: str
    path: Path
    kind: str
    arch: str = ""
    roles: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def size_mb(self) -> float:
        try:
            return self.path.stat().st_size / 1e6
        except OSError:
            return 0.0


def _header(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - a damaged file is shown as 'unknown'
        return {}


def classify(name: str, path: Path) -> ModelEntry:
    """A ModelEntry for ``path``; reads only the safetensors header."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        md = _header(path)
        if "ganeditor.directions" in md:
            return ModelEntry(name, path, "directions", "direction library", [], _json(md.get("library")))
        if "ganeditor.nets" in md:
            nets = _json(md["ganeditor.nets"])
            roles = list(nets)
            primary = next((r for r in PRIMARY_ROLES if r in nets), roles[0] if roles else "")
            arch = nets.get(primary, {}).get("arch", "") if primary else ""
            return ModelEntry(name, path, ARCH_KINDS.get(arch, "other"), arch, roles, _json(md.get("ganeditor.meta")))
        return ModelEntry(name, path, "unknown")
    if suffix == ".pkl":
        return ModelEntry(name, path, "generator", "NVlabs pickle")
    if suffix == ".param":
        return ModelEntry(name, path, "upscaler", "ncnn")
    return ModelEntry(name, path, "unknown", suffix[1:])


def _identified(entry: ModelEntry, ckpt) -> ModelEntry:
    """``entry`` with the kind, architecture and roles of its loaded checkpoint."""
    net = ckpt.primary
    arch = getattr(net, "arch_name", type(net).__name__)
    kind = ARCH_KINDS.get(arch) or SPANDREL_KINDS.get(getattr(net, "kind", ""), "")
    if not kind:
        kind = "generator" if is_stylegan(net) else ("upscaler" if getattr(net, "io_convention", None) == "unit"
                                                     else "other")
    meta = dict(entry.meta, **{k: ckpt.meta[k] for k in ("kind", "scale", "purpose") if k in ckpt.meta})
    return ModelEntry(entry.name, entry.path, kind, arch, list(ckpt.nets), meta)


def identify(entry: ModelEntry, device: str = "cpu") -> ModelEntry:
    """``entry`` with its kind found by loading the file through the safe readers (for files ``classify``
    cannot place from their name or header, e.g. .pth files only spandrel knows); unreadable: unchanged."""
    try:
        ckpt = load_checkpoint(entry.path, device)
    except Exception:  # noqa: BLE001 - an unreadable file stays 'unknown' (its description says why)
        return entry
    return _identified(entry, ckpt)


def check_model(path: str | Path) -> ModelEntry:
    """A ModelEntry for a file from anywhere (drop, Open model, a training run), checked by loading it:
    CheckpointError when it is broken or holds nothing the app can use."""
    path = Path(path)
    entry = classify(model_name(path), path)
    if entry.kind == "directions":
        return entry
    found = _identified(entry, load_checkpoint(path))
    if found.kind == "other":
        raise CheckpointError(f"holds a {found.arch} ({', '.join(found.roles)}), not a generator, translator, "
                              "upscaler, restorer or inversion encoder", path)  # fmt: skip
    return found


def model_name(path: Path) -> str:
    """The name a file goes by in the library: its stem, or its folder's name for ``<run>/model.safetensors``."""
    return path.parent.name if path.name == "model.safetensors" and path.parent.name else path.stem


def _json(text: str | None) -> dict:
    try:
        v = json.loads(text or "{}")
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}


def catalog() -> list[ModelEntry]:
    """Every model in the store, classified, sorted by name."""
    return [classify(n, p) for n, p in sorted(list_models().items())]


def of_kind(entries: list[ModelEntry], kind: str) -> list[ModelEntry]:
    """Entries of ``kind`` followed by 'unknown' ones (they may turn out to be of that kind)."""
    return [e for e in entries if e.kind == kind] + [e for e in entries if e.kind == "unknown"]


def directions_for(entries: list[ModelEntry], generator: ModelEntry) -> ModelEntry | None:
    """The direction library made for ``generator`` (``<name>-directions``, as the CLI finds it), if listed."""
    path = companion(generator.path, "directions")
    return next((e for e in entries if e.kind == "directions" and path is not None and e.path == path), None)


def translation_directions(entry_meta: dict, roles: list[str]) -> list[tuple[str, str]]:
    """(role, label) for each generator of a CycleGAN file, e.g. ('G_A', 'day → night')."""
    data = entry_meta.get("data") or []
    names = [_data_name(d) for d in data] if len(data) == 2 else []
    out = []
    for role in roles:
        if role == "G_A":
            out.append((role, f"{names[0]} → {names[1]}" if names else "A → B"))
        elif role == "G_B":
            out.append((role, f"{names[1]} → {names[0]}" if names else "B → A"))
    return out or [(r, r) for r in roles[:1]]


def _data_name(spec: str) -> str:
    """'world:scenes-day?n=4' -> 'day'; '/photos/summer' -> 'summer'."""
    s = str(spec).split("?")[0].rstrip("/")
    s = s.split(":")[-1].split("/")[-1]
    return s.split("-")[-1] if s.startswith("scenes-") else s


@dataclass(frozen=True)
class CheckpointFacts:
    """What a checkpoint holds: format, networks by role with their facts, discriminator, metadata."""

    file: str
    format: str
    primary: str  # the role inference uses
    networks: dict[str, dict[str, Any]]  # role -> {architecture, describe() facts..., parameters}
    has_discriminator: bool
    meta: dict[str, Any]


def describe(path: str | Path, device: str = "cpu") -> CheckpointFacts:
    """Load ``path`` (any supported format) and describe every network in it."""
    ckpt = load_checkpoint(path, device)
    nets: dict[str, dict[str, Any]] = {}
    for role, net in ckpt.nets.items():
        facts: dict[str, Any] = {"architecture": getattr(net, "arch_name", type(net).__name__)}
        if hasattr(net, "describe"):
            facts.update(net.describe())
        facts["parameters"] = sum(p.numel() for p in net.parameters())
        nets[role] = facts
    has_d = any(r in ckpt.nets for r in ("D", "D_A", "D_B")) or bool(ckpt.meta.get("has_discriminator"))
    return CheckpointFacts(str(ckpt.path), ckpt.format_name, ckpt.primary_role, nets, has_d, dict(ckpt.meta))


def format_fact(value: object) -> str:
    """A fact value as short text."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and abs(value) >= 10000:
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_fact(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(format_fact(v) for v in value)
    return str(value)
