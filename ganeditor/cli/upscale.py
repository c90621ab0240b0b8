"""``ganeditor upscale CHECKPOINT INPUT OUTPUT``: super-resolution of a file or a folder."""

from __future__ import annotations

import argparse

from ganeditor.cli.translate import add_common_options, run_image2image
from ganeditor.pipelines.image2image import Image2ImageOptions, upscale


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upscale", help="upscale photos with an SR model (ESRGAN, Real-ESRGAN, SRResNet)")
    p.add_argument("checkpoint", help="SR checkpoint (.pth, .safetensors) or model name, e.g. realesrgan-x4plus")
    p.add_argument("input", help="image file or folder of images")
    p.add_argument("output", help="output image file or folder (created)")
    p.add_argument("--outscale", type=float, default=None, help="final scale (default: the model's); Lanczos resize")
    p.add_argument("--tile-pad", type=int, default=None,
                   help="context around tiles (default: exact, the network's receptive field; 10 = RealESRGANer)")
    p.add_argument("--pre-pad", type=int, default=0,
                   help="reflect padding at the bottom/right before the network, cropped after (RealESRGANer's pre_pad)")
    add_common_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = Image2ImageOptions(tile=args.tile, tile_pad=args.tile_pad, pre_pad=args.pre_pad, outscale=args.outscale,
                                 fast=args.fast)
    return run_image2image(args, "upscale", lambda ckpt, img, task: upscale(ckpt, img, options, task=task),
                           {"outscale": args.outscale, "tile_pad": args.tile_pad, "pre_pad": args.pre_pad})
