"""``ganeditor restore INPUT OUTPUT``: old-photo restoration of a file or a folder.

Stages (``--stages``, run in this order whatever the order given): scratches (dust and scratches
found and filled), global (noise, blur, JPEG, fading, colour cast), colour (colourisation, off by
default), upscale (``--upscale 2|4`` turns it on), faces.  ``--strength STAGE=X`` (0..1) and
``--model STAGE=CKPT`` (also ``inpaint=...``) per stage; any checkpoint spandrel recognises works
where it fits (SCUNet, NAFNet, FBCNN for global; LaMa for inpaint; GFPGAN, RestoreFormer for faces;
any SR model for upscale).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ganeditor.cli.common import guard_outputs, progress_task
from ganeditor.cli.translate import add_common_options, print_report
from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import LoadedImage, read_image, write_image
from ganeditor.core.progress import Task
from ganeditor.pipelines.image2image import BatchReport, plan_batch, run_batch
from ganeditor.pipelines.restore import (DEFAULT_STAGES, MODEL_SLOTS, STAGE_ORDER, RestoreModels, RestoreOptions,
                                         canonical_stage, parse_stages, restore)


def _stage_value(text: str, kind=float) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected STAGE=VALUE, got {text!r}")
    try:
        return canonical_stage(key), kind(value)
    except (GanEditorError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e) if isinstance(e, GanEditorError) else f"bad value in {text!r}") from None


def _stages(text: str) -> tuple[str, ...]:
    try:
        return parse_stages(text)
    except GanEditorError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restore", help="restore old photos: dust and scratches, noise and fading, faces, colour, size",
                       description=__doc__.split("\n\n", 1)[1].replace("``", "'"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="image file or folder of images (scans: PNG, TIFF incl. 16-bit, JPEG...)")
    p.add_argument("output", help="output image file or folder (created); 16-bit in -> 16-bit out")
    p.add_argument("--stages", type=_stages, default=DEFAULT_STAGES,
                   help=f"comma-separated, from {','.join(STAGE_ORDER)}; 'all' or 'none' "
                        f"(default: {','.join(DEFAULT_STAGES)})")
    p.add_argument("--strength", type=_stage_value, action="append", default=[], metavar="STAGE=X",
                   help="how much of a stage's change to keep, 0..1 (default 1), e.g. --strength global=0.6")
    p.add_argument("--model", type=lambda t: _stage_value(t, str), action="append", default=[], metavar="STAGE=CKPT",
                   help=f"model file or name for a stage ({', '.join(MODEL_SLOTS)}), e.g. --model faces=GFPGANv1.4.pth")
    p.add_argument("--upscale", type=float, default=None, metavar="N",
                   help="enlarge N times (2 or 4; adds the upscale stage; default model realesrgan-x4plus)")
    p.add_argument("--fidelity", type=float, default=0.7,
                   help="faces: share of the photo's own face, 0..1 (default 0.7; 0 = the face model's alone)")
    p.add_argument("--face-steps", type=int, default=0,
                   help="faces with the StyleGAN prior: W+ optimisation steps after the encoder (default 0)")
    p.add_argument("--mask", default=None, help="damage mask image (white = damaged) used instead of detection")
    p.add_argument("--save-mask", action="store_true", help="also write OUTPUT-mask.png: the damage that was filled")
    add_common_options(p)
    p.set_defaults(func=run)


def _read_mask(path: str | None) -> np.ndarray | None:
    if path is None:
        return None
    m = read_image(path).pixels
    return m.max(axis=2) > (m.dtype.type(np.iinfo(m.dtype).max) // 2)


def _mask_path(dst: Path) -> Path:
    return dst.with_name(dst.stem + "-mask.png")


def run(args: argparse.Namespace) -> int:
    stages = tuple(args.stages)
    if args.upscale is not None and "upscale" not in stages:
        stages += ("upscale",)
    options = RestoreOptions(stages=stages, strength=dict(args.strength), upscale=args.upscale or 4.0,
                             fidelity=args.fidelity, face_steps=args.face_steps, mask=_read_mask(args.mask),
                             tile=args.tile, fast=args.fast)
    if not options.stages:
        raise GanEditorError("no stage to run (--stages none)")
    srcs, dsts = plan_batch(args.input, args.output)
    guard_outputs([*srcs, args.mask], [*dsts, *(_mask_path(d) for d in dsts if args.save_mask)], args.overwrite)
    if options.mask is not None and len(srcs) > 1:
        raise GanEditorError("--mask is for one photo, not a folder", args.mask)
    models = RestoreModels.load(options.stages, dict(args.model), args.device, options.face_steps)
    steps = models.provenance(options)
    report = BatchReport()
    with progress_task("restore", len(srcs), graceful="cancelling (the image in progress is not written)") as task:
        for k, (src, dst) in enumerate(zip(srcs, dsts)):
            masks: list[np.ndarray] = []

            def one(img: LoadedImage, t: Task) -> LoadedImage:
                res = restore(img, models, options, task=t)
                masks.extend([] if res.mask is None else [res.mask])
                res.image.notes = res.notes
                return res.image

            r = run_batch([src], [dst], one, task.sub(k, 1, len(srcs)), int(args.max_megapixels * 1e6), steps)
            report.written += r.written
            report.failed += r.failed
            report.notes += r.notes
            if args.save_mask and r.written and masks:
                write_image(_mask_path(dst), masks[0][:, :, None].astype(np.uint8) * np.uint8(255), None, 8)
    return print_report(report, srcs, dsts, args.output)
