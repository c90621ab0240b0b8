"""``ganeditor invert --network CKPT PHOTO --outdir DIR``: find the latent of a photo.

Writes ``projected_w.npz`` (NVlabs layout: key 'w' [1, num_ws, w_dim], plus the optimised noise
maps as 'noise.<buffer>'), ``reconstruction.png``, ``target.png`` and, for PTI, the tuned
generator as ``pti_delta.safetensors``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ganeditor.cli.common import add_device_option, add_overwrite_option, guard_outputs, progress_task
from ganeditor.core.device import pick_device
from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import write_image
from ganeditor.core.model_store import companion
from ganeditor.core.provenance import generated, record
from ganeditor.pipelines.edit import save_latent
from ganeditor.pipelines.invert import METHODS, ProjectOptions, invert, run_inversion
from ganeditor.pipelines.invert_loss import make_inversion_loss
from ganeditor.pipelines.invert_pti import PTIOptions, save_pti_delta
from ganeditor.pipelines.portrait import load_encoder, load_stylegan, prepare_photo


def parse_align(text: str) -> str | np.ndarray:
    """'auto' | 'none' | 'x1,y1,x2,y2,...' (landmark points)."""
    if text in ("auto", "none"):
        return text
    try:
        v = np.array([float(t) for t in text.split(",")], dtype=np.float64)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--align: expected auto, none or x1,y1,x2,y2,..., got {text!r}") from None
    if len(v) < 4 or len(v) % 2:
        raise argparse.ArgumentTypeError("--align: give an even number of coordinates (at least two points)")
    return v.reshape(-1, 2)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("invert", help="find the latent (and optionally tuned weights) reproducing a photo")
    p.add_argument("photo", help="photo to invert")
    p.add_argument("--network", required=True, help="StyleGAN checkpoint or model name")
    p.add_argument("--outdir", required=True, help="output folder (created)")
    p.add_argument("--method", choices=METHODS, default="wplus", help="inversion method (default wplus)")
    p.add_argument("--steps", type=int, default=500, help="optimisation steps (default 500)")
    p.add_argument("--pti-steps", type=int, default=350, help="generator tuning steps for pti/progressive")
    p.add_argument("--encoder", default=None,
                   help="encoder checkpoint (role 'E') for encoder/progressive (default: NETWORK-encoder if it exists)")
    p.add_argument("--align", type=parse_align, default=None,
                   help="auto (detect the face), none (centre crop) or landmark points x1,y1,x2,y2,...")  # fmt: skip
    p.add_argument("--face", type=int, default=0, help="with several faces in the photo: which one (0 = largest)")
    p.add_argument("--loss", choices=("auto", "lpips", "discriminator", "pixel"), default="auto",
                   help="reconstruction loss (auto: LPIPS if VGG16 weights exist, else D features, else pixel+SSIM)")  # fmt: skip
    p.add_argument("--seed", type=int, default=303, help="seed of the noise initialisation")
    add_device_option(p)
    add_overwrite_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.steps < 1 or args.pti_steps < 1:
        raise GanEditorError("--steps and --pti-steps must be positive")
    outs = [Path(args.outdir) / n for n in ("target.png", "reconstruction.png", "projected_w.npz", "pti_delta.safetensors")]
    guard_outputs([args.photo, args.network, args.encoder], outs, args.overwrite)
    device = pick_device(args.device)
    ckpt, G = load_stylegan(args.network, device)
    encoder = args.encoder
    if encoder is None and args.method in ("encoder", "progressive"):
        encoder = companion(args.network, "encoder")  # the encoder shipped for this generator, if any
        if encoder is not None:
            print(f"encoder: {encoder.name} (made for {Path(args.network).stem})")
        elif args.method == "encoder":
            raise GanEditorError("--method encoder needs --encoder (no encoder was found beside the generator)")
    E = load_encoder(str(encoder), G, device) if encoder else None
    align = args.align if args.align is not None else "auto"
    target = prepare_photo(args.photo, G.img_resolution, align, device, face=args.face)
    outdir = Path(args.outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GanEditorError(f"cannot create output folder ({e.strerror})", outdir) from None
    loss = make_inversion_loss(G, ckpt, device, args.loss)
    with progress_task(f"invert ({args.method})", 1.0) as task:
        result = run_inversion(invert(G, target, loss, args.method, E=E, task=task,
                                      projection=ProjectOptions(steps=args.steps, seed=args.seed),
                                      pti=PTIOptions(steps=args.pti_steps, seed=args.seed)))
    write_image(outdir / "target.png", target)
    step = record("invert", ckpt.path, {"method": args.method, "steps": args.steps, "loss": result.loss_name,
                                        "encoder": Path(str(encoder)).stem if encoder else None})  # fmt: skip
    write_image(outdir / "reconstruction.png", result.image, provenance=generated(step))
    save_latent(outdir / "projected_w.npz", result.ws, result.noise)
    if result.G_tuned is not None:
        save_pti_delta(outdir / "pti_delta.safetensors", G, result.G_tuned)
    print(f"loss: {result.loss_name}")
    for s in result.stages:
        flag = " (cancelled: best so far)" if s.cancelled else ""
        print(f"{s.method:>8}: PSNR {s.psnr:6.2f} dB  SSIM {s.ssim:.4f}  {s.seconds:7.1f} s  {s.steps_done}/{s.steps} steps{flag}")
    print(f"wrote {outdir}/projected_w.npz, reconstruction.png, target.png"
          + (", pti_delta.safetensors" if result.G_tuned is not None else ""))  # fmt: skip
    return 0
