"""``ganeditor info CHECKPOINT``: what a checkpoint holds."""

from __future__ import annotations

import argparse
import json

from ganeditor.core.model_store import resolve_model
from ganeditor.formats import load_checkpoint


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a checkpoint (format, architecture, sizes)")
    p.add_argument("checkpoint", help="checkpoint file or model name")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def describe_checkpoint(path) -> dict:
    """A JSON-able description of every network in a checkpoint."""
    ckpt = load_checkpoint(resolve_model(path))
    nets = {}
    for role, net in ckpt.nets.items():
        info = {"architecture": getattr(net, "arch_name", type(net).__name__)}
        if hasattr(net, "describe"):
            info.update(net.describe())
        info["parameters"] = sum(p.numel() for p in net.parameters())
        nets[role] = info
    return {
        "file": str(ckpt.path),
        "format": ckpt.format_name,
        "primary": ckpt.primary_role,
        "networks": nets,
        "has_discriminator": any(r in ckpt.nets for r in ("D", "D_A", "D_B")) or bool(ckpt.meta.get("has_discriminator")),
        "meta": ckpt.meta,
    }


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def run(args: argparse.Namespace) -> int:
    d = describe_checkpoint(args.checkpoint)
    if args.json:
        print(json.dumps(d, indent=2, default=str))
        return 0
    print(f"file:      {d['file']}")
    print(f"format:    {d['format']}")
    print(f"networks:  {', '.join(d['networks'])} (inference uses {d['primary']})")
    print(f"discriminator present: {'yes' if d['has_discriminator'] else 'no'}")
    for role, info in d["networks"].items():
        print(f"[{role}]")
        for k, v in info.items():
            print(f"  {k + ':':<20} {_fmt(v)}")
    return 0
