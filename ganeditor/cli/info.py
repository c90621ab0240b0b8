"""``ganeditor info CHECKPOINT``: what a checkpoint holds."""

from __future__ import annotations

import argparse
import dataclasses
import json

from ganeditor.core.model_store import resolve_model
from ganeditor.pipelines.catalog import describe, format_fact
from ganeditor.pipelines.direction_io import is_library, load_library


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a checkpoint (format, architecture, sizes) or a direction library")
    p.add_argument("checkpoint", help="checkpoint or direction library: file or model name")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def describe_library(path) -> dict:
    """A JSON-able description of a direction library: its generator and every direction."""
    lib = load_library(path)
    dirs = []
    for d in lib.directions:
        a, b = d.layer_range(lib.num_ws)
        info = {("factorised_layers" if k == "layers" else k): v for k, v in d.info.items()}  # SeFa's list of layers
        dirs.append({"name": d.name, "source": d.source, "layers": [a, b - 1], "unit": d.unit, "sigma": d.sigma, **info})
    return {"file": str(path), "format": "GAN Editor direction library", "w_dim": lib.w_dim, "num_ws": lib.num_ws,
            "generator": lib.generator, "provenance": lib.provenance, "directions": dirs}  # fmt: skip


def _print_library(d: dict) -> None:
    print(f"file:      {d['file']}")
    print(f"format:    {d['format']}")
    print(f"for:       w_dim {d['w_dim']}, {d['num_ws']} ws, generator {d['generator'] or 'any'}"
          + (f" ({d['provenance']['generator']})" if d["provenance"].get("generator") else ""))
    print(f"{'direction':<24} {'source':<26} {'layers':<8} {'sigma':>8}  slider check (σ at full range)")
    for x in d["directions"]:
        layers = f"{x['layers'][0]}-{x['layers'][1]}"
        print(f"{x['name']:<24} {x['source']:<26} {layers:<8} {x['sigma']:8.4g}  {_check_text(x.get('check'))}")


def _check_text(check: dict | None) -> str:
    """'passes: smile +1.4 (next: age 0.3)', 'fails: ...', or the strongest effects of an unnamed direction."""
    if not check:
        return "not checked"
    if check.get("target"):
        verdict = "passes" if check["passed"] else "fails"
        return f"{verdict}: {check['target']} {check['target_sigma']:+.2f} (largest other: {check['worst']} {check['worst_sigma']:.2f})"
    eff = sorted(((abs(v), a) for a, v in check.get("effects", {}).items()), reverse=True)[:2]
    return "moves " + ", ".join(f"{a} {v:.2f}" for v, a in eff)


def run(args: argparse.Namespace) -> int:
    path = resolve_model(args.checkpoint)
    if is_library(path):
        d = describe_library(path)
        print(json.dumps(d, indent=2, default=str)) if args.json else _print_library(d)
        return 0
    d = describe(path)
    if args.json:
        print(json.dumps(dataclasses.asdict(d), indent=2, default=str))
        return 0
    print(f"file:      {d.file}")
    print(f"format:    {d.format}")
    print(f"networks:  {', '.join(d.networks)} (inference uses {d.primary})")
    print(f"discriminator present: {'yes' if d.has_discriminator else 'no'}")
    for role, info in d.networks.items():
        print(f"[{role}]")
        for k, v in info.items():
            print(f"  {k + ':':<20} {format_fact(v)}")
    return 0
