"""``ganeditor convert IN OUT.safetensors``: any supported checkpoint -> our format."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ganeditor.cli.common import add_overwrite_option, guard_outputs
from ganeditor.core.errors import GanEditorError
from ganeditor.core.model_store import resolve_model
from ganeditor.formats import load_checkpoint
from ganeditor.formats.native import save_checkpoint


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a checkpoint to GAN Editor's safetensors format")
    p.add_argument("input", help="checkpoint file (.pkl, .pt, .pth, .param, .safetensors) or model name")
    p.add_argument("output", help="output .safetensors file")
    p.add_argument("--fp16", action="store_true", help="store weights as fp16 (half the size)")
    p.add_argument("--only", default=None, help="keep only these networks, e.g. 'G_ema' or 'G_ema,D'")
    add_overwrite_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise GanEditorError("output must end with .safetensors", out)
    if not out.parent.exists():
        raise GanEditorError("output folder does not exist", out.parent)
    src = resolve_model(args.input)
    guard_outputs([src], [out], args.overwrite)
    ckpt = load_checkpoint(src)
    if args.only:
        roles = [r.strip() for r in args.only.split(",") if r.strip()]
        missing = [r for r in roles if r not in ckpt.nets]
        if missing:
            raise GanEditorError(f"no network {missing[0]!r} in the checkpoint (has {', '.join(ckpt.nets)})", args.input)
        ckpt.nets = {r: ckpt.nets[r] for r in roles}
    save_checkpoint(ckpt, out, dtype=torch.float16 if args.fp16 else None)
    print(f"wrote {out} ({', '.join(ckpt.nets)} from {ckpt.format_name})")
    return 0
