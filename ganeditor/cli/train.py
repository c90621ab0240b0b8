"""``ganeditor train RECIPE --data ... --out RUN_DIR``: train or resume in the terminal."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ganeditor.cli.common import add_device_option, progress_task
from ganeditor.core.errors import Cancelled, GanEditorError
from ganeditor.pipelines.train.engine import RECIPES, TrainConfig, train
from ganeditor.pipelines.train.health import describe_space
from ganeditor.pipelines.train.run_dir import RunDir


def _kv(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a CycleGAN, SRGAN, StyleGAN2 or inversion encoder (also under torchrun)",
        description="Train in the terminal; checkpoints go to RUN_DIR and --resume continues exactly. "
        "Under 'torchrun --nproc_per_node N' the same command trains on N processes.",
    )
    p.add_argument("recipe", choices=sorted(RECIPES), help="what to train")
    p.add_argument("--data", nargs="*", default=[], help="image folder(s): cyclegan takes two (A and B)")
    p.add_argument("--out", required=True, help="run folder (config, checkpoints, samples, model.safetensors)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--steps", type=int, default=None, help="total optimisation steps")
    p.add_argument("--batch", type=int, default=None, help="global batch size (split over processes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="auto: fp16 AMP on CUDA, bf16 on CPUs with native bf16, else fp32")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument("--sample-every", type=int, default=None, help="steps between sample grids (0: never)")
    p.add_argument("--log-every", type=int, default=None, help="steps between metric records")
    p.add_argument("--validate-every", type=int, default=None, help="steps between validations (0: never)")
    p.add_argument("--eval-every", type=int, default=None,
                   help="steps between health measurements: FID/KID (Inception weights on disk, else a named fallback "
                        "feature space), precision/recall, attribute coverage, SWD, and the mode-collapse alarm (0: never)")
    p.add_argument("--eval-count", type=int, default=None, help="generated and real images per health measurement")
    p.add_argument("--inception", default=None, metavar="FILE",
                   help="FID Inception weights (pt_inception-2015-12-05-6726825d.pth); default: $GANEDITOR_INCEPTION "
                        "or the torch hub cache")
    p.add_argument("--keep", type=int, default=None, help="checkpoints to keep")
    p.add_argument("--init", default=None, help="checkpoint to fine-tune from")
    p.add_argument("--set", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="recipe option, e.g. --set lr=1e-4 --set ngf=32 (repeatable)")
    add_device_option(p)
    p.set_defaults(func=run)


def print_health(ev) -> None:
    """One line of health figures (and any mode-collapse alarm) for the terminal log."""
    m = ev.metrics
    shown = " ".join(f"{k}={v:.3g}" for k, v in m.items()
                     if isinstance(v, float) and not k.startswith("coverage/") and k != "time")
    print(f"step {ev.step}: health [{describe_space(m['feature_space'])}] {shown}", file=sys.stderr, flush=True)
    for a in ev.alarms:
        print(f"step {ev.step}: WARNING {a.text()}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    cfg = TrainConfig(
        recipe=args.recipe,
        out=args.out,
        data=list(args.data),
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        options=dict(args.set),
        eval_inception=args.inception,
        **{k: getattr(args, k) for k in ("steps", "batch", "checkpoint_every", "sample_every", "log_every",
                                          "validate_every", "eval_every", "eval_count", "keep")
           if getattr(args, k) is not None},
    )
    if args.resume and args.steps is None:
        cfg.steps = 0  # keep the run's own number of steps
    if args.init:
        cfg.options["init"] = args.init
    if (cfg.steps < 1 and not args.resume) or cfg.batch < 1:
        raise GanEditorError("--steps and --batch must be positive")
    last = None
    # Ctrl-C writes a checkpoint first (single process; under torchrun the launcher stops every rank)
    graceful = None if int(os.environ.get("WORLD_SIZE", "1")) > 1 else "stopping: keeping the last whole step"
    with progress_task(f"train {args.recipe}", cfg.steps or None, graceful=graceful) as task:
        try:
            for ev in train(cfg, task, resume=args.resume):
                last = ev
                if "feature_space" in ev.metrics:
                    print_health(ev)
        except Cancelled:
            saved = RunDir(args.out).latest_step()
            print("stopped before the first checkpoint" if saved is None else
                  f"stopped; checkpoint at step {saved} in {args.out} (continue with --resume)", file=sys.stderr)
            raise
    if last is not None:
        losses = " ".join(f"{k}={v:.4g}" for k, v in last.losses.items())
        print(f"step {last.step}/{last.steps}: {losses}; {last.images_per_s:.2f} images/s")
    print(f"model: {args.out}/model.safetensors")
    return 0
