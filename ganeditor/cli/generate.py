"""``ganeditor generate``: images from seeds (options as NVlabs gen_images.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ganeditor.cli.common import add_device_option, add_overwrite_option, guard_outputs, parse_range, parse_vec2, progress_task
from ganeditor.core.device import pick_device
from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import write_image
from ganeditor.core.model_store import resolve_model
from ganeditor.core.provenance import generated, record
from ganeditor.pipelines.generate import generate
from ganeditor.pipelines.portrait import load_stylegan


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate images from seeds with a GAN generator")
    p.add_argument("--network", required=True, help="generator checkpoint or model name")
    p.add_argument("--seeds", type=parse_range, required=True, help="seeds, e.g. 0-7 or 0,3,5")
    p.add_argument("--trunc", type=float, default=1.0, dest="truncation_psi", help="truncation psi (default 1)")
    p.add_argument("--noise-mode", choices=("const", "random", "none"), default="const", help="noise mode (default const)")
    p.add_argument("--class", type=int, default=None, dest="class_idx", help="class label (conditional networks)")
    p.add_argument("--translate", type=parse_vec2, default=(0.0, 0.0), help="StyleGAN3 input translation 'X,Y'")
    p.add_argument("--rotate", type=float, default=0.0, help="StyleGAN3 input rotation in degrees")
    p.add_argument("--outdir", required=True, help="output folder (created)")
    add_device_option(p)
    add_overwrite_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    network = resolve_model(args.network)
    guard_outputs([network], [Path(args.outdir) / f"seed{s:04d}.png" for s in args.seeds], args.overwrite)
    device = pick_device(args.device)
    ckpt, G = load_stylegan(network, device)
    outdir = Path(args.outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GanEditorError(f"cannot create output folder ({e.strerror})", outdir) from None
    with progress_task("generate", len(args.seeds)) as task:
        for seed, img in generate(G, args.seeds, args.truncation_psi, args.noise_mode, args.class_idx,
                                  args.translate, args.rotate, task):
            step = record("generate", ckpt.path, {"seed": seed, "truncation": args.truncation_psi,
                                                  "noise": args.noise_mode, "class": args.class_idx,
                                                  "translate": args.translate if any(args.translate) else None,
                                                  "rotate": args.rotate or None})  # fmt: skip
            write_image(outdir / f"seed{seed:04d}.png", img, provenance=generated(step))
    print(f"wrote {len(args.seeds)} image(s) to {outdir}")
    return 0
