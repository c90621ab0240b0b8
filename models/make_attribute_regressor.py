"""Train the portrait attribute regressor and write models/portrait-attributes.safetensors + its card.

    nice -n 5 python models/make_attribute_regressor.py            # the shipped model (a few CPU minutes)
    python models/make_attribute_regressor.py --steps 100 --out /tmp/r.safetensors --card /tmp/r.md

Training portraits are seeds 50,000,000 + k (each sample a fresh face); held-out metrics use seeds
1,500,000,000 + k, never seen in training.  The ground-truth edit check re-renders held-out people
with one attribute moved by 1σ and reports what the regressor sees.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganeditor.core.atomic import atomic_write  # noqa: E402
from ganeditor.core.progress import Task  # noqa: E402
from ganeditor.pipelines.attributes import (  # noqa: E402
    HELDOUT_SEED_BASE, TRAIN_SEED_BASE, build_portrait_regressor, evaluate_regressor, load_regressor,
    save_regressor, train_regressor,
)  # fmt: skip
from ganeditor.pipelines.edit_quality import ground_truth_edit_check, gt_check_markdown  # noqa: E402

SIZES = (64, 64, 80, 128)  # render size drawn per step (half at 64 px)


def metrics_markdown(metrics: dict[str, dict[str, float]]) -> str:
    """Held-out metrics as a markdown table."""
    lines = ["| attribute | σ (population) | MAE | MAE / σ | R² | accuracy | n |", "|---|---:|---:|---:|---:|---:|---:|"]
    for a, m in metrics.items():
        acc = f"{m['accuracy']:.3f}" if "accuracy" in m else ""
        lines.append(f"| {a} | {m['sigma']:.3f} | {m['mae']:.4f} | {m['mae_sigma']:.3f} | {m['r2']:.3f} | {acc} | {m['n']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "models" / "portrait-attributes.safetensors"))
    p.add_argument("--card", default=None, help="model card (default: --out with .md)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--heldout", type=int, default=2000, help="held-out portraits for the metrics")
    p.add_argument("--gt-check", type=int, default=100, help="people per attribute in the ground-truth edit check")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training loop")
    p.add_argument("--workers", type=int, default=1, help="rendering processes beside the training loop")
    p.add_argument("--channels", default="24,48,96,160", help="channels of the four stages")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-fast", action="store_true", help="plain fp32 (default: bf16 autocast + channels_last)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    card = Path(args.card) if args.card else out.with_suffix(".md")

    def show(ev) -> None:
        if int(ev.done) % 100 == 0 or ev.done == ev.total:
            print(f"  {ev.message}", flush=True)

    t0 = time.perf_counter()
    channels = [int(c) for c in args.channels.split(",")]
    model = build_portrait_regressor(args.input_size, channels)
    history = train_regressor(Task(show, min_interval=0), model, args.steps, args.batch, args.lr, SIZES,
                              device=args.device, fast=not args.no_fast, workers=args.workers)  # fmt: skip
    train_s = time.perf_counter() - t0
    model.to("cpu").to(memory_format=torch.contiguous_format)
    recipe = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "input_size": args.input_size,
              "train_seeds": [TRAIN_SEED_BASE, TRAIN_SEED_BASE + args.steps * args.batch],
              "render_sizes": sorted(set(SIZES)), "channels": channels, "fast": not args.no_fast,
              "threads": args.threads, "workers": args.workers}  # fmt: skip
    save_regressor(model, out, {"recipe": recipe, "train_seconds": round(train_s, 1)})
    model = load_regressor(out)  # measure the shipped fp16 weights
    metrics = {s: evaluate_regressor(model, args.heldout, size=s) for s in (64, 128)}
    gt = ground_truth_edit_check(model, n=args.gt_check)
    total_s = time.perf_counter() - t0
    save_regressor(model, out, {"recipe": recipe, "train_seconds": round(train_s, 1), "history": history[-1],
                                "heldout_metrics_64px": metrics[64], "ground_truth_edit_check": gt})  # fmt: skip
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    cmd = "nice -n 5 python models/make_attribute_regressor.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    text = f"""# portrait-attributes

Attribute regressor for the procedural portraits (arch `attribute-regressor`, {sum(q.numel() for q in model.parameters()):,}
parameters, fp16 safetensors, {out.stat().st_size / 1e6:.2f} MB, SHA-256 `{sha}`). It scores any image
(resized to {args.input_size} px inside) for the {len(model.attributes)} attributes of `ganeditor/worlds/portraits.py`, in their own units:
`glasses` is a probability, `bg_hue` is circular (period 1), `glasses_darkness` is meaningful on faces with glasses.
It labels generated samples for InterFaceGAN boundaries and measures edits in population-σ units
(`sigmas` in the network's kwargs).  Licence: MIT (trained here on procedural data).

## Reproduce

    {cmd}

Data: procedural portraits streamed from seeds {TRAIN_SEED_BASE:,} + k ({args.steps * args.batch:,} faces, each seen once),
rendered at 64, 80 or 128 px, with mild blur and noise augmentation. Recipe: {json.dumps(recipe)}.
Training took {train_s:.0f} s wall ({args.threads} threads, {platform.processor() or platform.machine()}, shared CPU); whole command {total_s:.0f} s.

## Held-out quality ({args.heldout} portraits, seeds {HELDOUT_SEED_BASE:,} + k)

Rendered at 64 px:

{metrics_markdown(metrics[64])}

Rendered at 128 px (resized inside):

{metrics_markdown(metrics[128])}

## Ground-truth edit check

Held-out people re-rendered with one attribute moved by 1σ (`render_from_attributes`; glasses: off → on);
the regressor should see the truth on the target and about 0 elsewhere (mean signed change, σ units):

{gt_check_markdown(gt)}
"""
    with atomic_write(card, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
