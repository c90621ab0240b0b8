"""``ganeditor translate CHECKPOINT INPUT OUTPUT``: image translation (CycleGAN) of a file or a folder.

Also holds the options and batch driver that ``ganeditor upscale`` shares.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from ganeditor.cli.common import add_device_option, add_overwrite_option, guard_outputs, progress_task
from ganeditor.core.device import pick_device
from ganeditor.core.imageio import DEFAULT_MAX_PIXELS, LoadedImage
from ganeditor.core.model_store import resolve_model
from ganeditor.core.progress import Task
from ganeditor.core.provenance import record
from ganeditor.core.errors import GanEditorError
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.pipelines.image2image import (BatchReport, Image2ImageOptions, check_model, plan_batch, run_batch,
                                             translate)


def _positive(text: str) -> int:
    try:
        v = int(text)
        if v <= 0:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    return v


def add_common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tile", type=_positive, default=None, help="tile size in pixels (default: from free memory)")
    add_device_option(p)
    p.add_argument("--fast", action="store_true", help="bf16/fp16 autocast + channels_last (small drift)")
    add_overwrite_option(p)
    p.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_PIXELS / 1e6,
                   help=f"refuse larger inputs (decompression-bomb guard, default {DEFAULT_MAX_PIXELS / 1e6:g})")


def select_role(ckpt: Checkpoint, net: str | None, direction: str | None) -> str | None:
    """The network role asked for by --net or --direction (CycleGAN runs hold G_A: A->B and G_B: B->A)."""
    if net is None and direction is not None:
        if direction == "AtoB":
            net = "G_A" if "G_A" in ckpt.nets else None
        elif "G_B" in ckpt.nets:
            net = "G_B"
        else:
            raise GanEditorError("--direction BtoA needs a checkpoint holding G_B (this one has "
                                 f"{', '.join(ckpt.nets)}); junyanz files hold one direction each", ckpt.path)
    if net is not None and net not in ckpt.nets:
        raise GanEditorError(f"no network {net!r} in the checkpoint (it has {', '.join(ckpt.nets)})", ckpt.path)
    return net


def run_image2image(args: argparse.Namespace, kind: str,
                    fn: Callable[[Checkpoint, LoadedImage, Task], LoadedImage], settings: dict) -> int:
    """Load the model, check its kind, process INPUT -> OUTPUT (``settings`` are recorded in each
    output's provenance); exit 2 if any file failed."""
    srcs, dsts = plan_batch(args.input, args.output)
    model = resolve_model(args.checkpoint)
    guard_outputs([*srcs, model], dsts, args.overwrite)
    device = pick_device(args.device)
    ckpt = load_checkpoint(model, device)
    role = select_role(ckpt, getattr(args, "net", None), getattr(args, "direction", None))
    if role is not None:
        ckpt.nets = {role: ckpt.nets[role]}
    check_model(ckpt, kind)
    step = record(kind, ckpt.path, {"network": ckpt.primary_role, **settings, "tile": args.tile, "fast": args.fast})
    with progress_task(kind, len(srcs), graceful="cancelling (the image in progress is not written)") as task:
        report = run_batch(srcs, dsts, lambda img, t: fn(ckpt, img, t), task, int(args.max_megapixels * 1e6), step)
    return print_report(report, srcs, dsts, args.output)


def print_report(report: BatchReport, srcs: list[Path], dsts: list[Path], output: str) -> int:
    """Notes and failures of a batch on stderr, what was written on stdout; the exit status (2 if any failed)."""
    for note in dict.fromkeys(report.notes):
        print(f"note: {note}", file=sys.stderr)
    for _src, msg in report.failed:
        print(f"ganeditor: error: {msg}", file=sys.stderr)
    if report.failed:
        if len(srcs) == 1:
            return 2
        print(f"ganeditor: {len(report.failed)} of {len(srcs)} files failed", file=sys.stderr)
        return 2
    print(f"wrote {len(report.written)} image(s)" + (f" to {output}" if len(srcs) > 1 else f": {dsts[0]}"))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate photos with a CycleGAN generator (e.g. day to night)")
    p.add_argument("checkpoint", help="generator checkpoint (.pth, .safetensors) or model name")
    p.add_argument("input", help="image file or folder of images")
    p.add_argument("output", help="output image file or folder (created)")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default=None,
                   help="which generator of a two-way CycleGAN (e.g. day->night is AtoB in our demo model)")
    p.add_argument("--net", default=None, help="network role to use, e.g. G_B (overrides --direction)")
    add_common_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = Image2ImageOptions(tile=args.tile, fast=args.fast)
    return run_image2image(args, "translate", lambda ckpt, img, task: translate(ckpt, img, options, task=task), {})
