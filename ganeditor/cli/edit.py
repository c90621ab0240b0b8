"""``ganeditor edit --network CKPT --latent FILE --direction LIB:NAME=ALPHA ... --out OUT.png``."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ganeditor.cli.common import add_device_option, add_overwrite_option, guard_outputs, parse_range
from ganeditor.cli.invert import parse_align
from ganeditor.core.device import pick_device
from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import read_image, write_image
from ganeditor.core.model_store import companion, resolve_model
from ganeditor.core import provenance
from ganeditor.pipelines.direction_io import generator_fingerprint, load_directions
from ganeditor.pipelines.edit import apply_edits, load_latent, style_mix, truncate
from ganeditor.pipelines.generate import to_uint8
from ganeditor.pipelines.invert import with_noise
from ganeditor.pipelines.invert_pti import apply_pti_delta
from ganeditor.pipelines.portrait import load_stylegan


def parse_direction(text: str) -> tuple[str, str | None, float]:
    """'LIB:NAME=ALPHA' or 'FILE=ALPHA' -> (file, name or None, alpha)."""
    spec, sep, alpha = text.rpartition("=")
    try:
        if not sep or not spec:
            raise ValueError
        value = float(alpha)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--direction: expected LIB:NAME=ALPHA or FILE.npy=ALPHA, got {text!r}") from None
    if Path(spec).is_file() or ":" not in spec:
        return spec, None, value
    file, _, name = spec.rpartition(":")
    return file, name, value


def direction_file(spec: str, name: str | None, network: str) -> tuple[Path, str | None]:
    """(file, direction name) for a --direction: a file, a model name, or just a direction NAME of the
    library made for the network (``<network>-directions``, as the demo models ship)."""
    if Path(spec).is_file():
        return Path(spec), name
    try:
        return resolve_model(spec), name
    except GanEditorError:
        lib = companion(network, "directions") if name is None else None
        if lib is None:
            raise
        return lib, spec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("edit", help="render a latent moved along named directions")
    p.add_argument("--network", required=True, help="StyleGAN checkpoint or model name")
    p.add_argument("--latent", required=True, help="latent .npz (key 'w') or .npy: [1, w_dim] (W) or [1, num_ws, w_dim] (W+)")
    p.add_argument("--direction", type=parse_direction, action="append", default=[], metavar="LIB:NAME=ALPHA",
                   help="direction and strength (repeatable): LIB:NAME=ALPHA (LIB a file or model name), NAME=ALPHA "
                        "(the library made for the network, NETWORK-directions) or FILE.npy=ALPHA (InterFaceGAN)")  # fmt: skip
    p.add_argument("--mode", choices=("relative", "distance"), default="relative",
                   help="relative shift (default) or InterFaceGAN's absolute distance to the boundary")  # fmt: skip
    p.add_argument("--pti-delta", default=None, help="tuned weights from 'invert --method pti'")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi towards w_avg (default 1: none)")
    p.add_argument("--mix", default=None, help="second latent for style mixing")
    p.add_argument("--mix-layers", type=parse_range, default=None, help="layers taken from --mix, e.g. 8-17")
    p.add_argument("--paste-back", default=None, metavar="PHOTO", help="paste the edited face back into PHOTO")
    p.add_argument("--align", type=parse_align, default="auto", help="with --paste-back: auto or the x1,y1,... given to invert")
    p.add_argument("--face", type=int, default=0, help="with --paste-back: the --face given to invert (0 = largest)")
    p.add_argument("--blend", choices=("auto", "replace", "detail"), default="auto",
                   help="with --paste-back: put the edited face in (replace), or add only the edit's change and keep "
                        "the photo's detail (detail); auto: detail when the face is over twice the generator's size")  # fmt: skip
    p.add_argument("--out", default="edit.png", help="output image (default edit.png)")
    add_device_option(p)
    add_overwrite_option(p)
    p.set_defaults(func=run)


def paste_back_hook(args: argparse.Namespace, image: np.ndarray, reconstruction: np.ndarray | None = None) -> np.ndarray:
    """Where paste-back plugs in: returns the image to write (the aligned crop when no --paste-back).
    ``reconstruction`` is the unedited rendering (for the 'diff' part of the mask and the detail blend)."""
    if args.paste_back is None:
        return image
    from ganeditor.pipelines.align import align_face  # the photo is re-aligned as 'invert' aligned it
    from ganeditor.pipelines.paste_back import paste_back

    photo = read_image(args.paste_back).pixels
    aligned = align_face(photo, landmarks=args.align, output_size=image.shape[0], device=pick_device(args.device),
                         face_index=getattr(args, "face", 0))
    return paste_back(photo, image, aligned, reconstruction=reconstruction, device=pick_device(args.device),
                      blend=getattr(args, "blend", "auto"))


def run(args: argparse.Namespace) -> int:
    inputs = [args.network, args.latent, args.pti_delta, args.mix, args.paste_back]
    guard_outputs(inputs + [spec for spec, _, _ in args.direction], [args.out], args.overwrite)
    device = pick_device(args.device)
    ckpt, G = load_stylegan(args.network, device)
    fp = generator_fingerprint(G)
    ws, noise = load_latent(args.latent, G)
    edits = []
    for spec, name, alpha in args.direction:
        file, name = direction_file(spec, name, args.network)
        lib = load_directions(file)
        lib.check_generator(fp, G.w_dim, file)
        if name is None:
            if len(lib.directions) != 1:
                raise GanEditorError(f"library has {len(lib.directions)} directions: name one as {file}:NAME=ALPHA")
            d = lib.directions[0]
        else:
            d = lib[name]
        edits.append((d, alpha))
    if args.pti_delta:
        G = apply_pti_delta(G, args.pti_delta)
    elif noise:
        G = with_noise(G, {k: v.to(device) for k, v in noise.items()})
    ws = ws.to(device)
    if args.mix:
        if not args.mix_layers:
            raise GanEditorError("--mix needs --mix-layers (e.g. 8-17)")
        if max(args.mix_layers) >= G.num_ws:
            raise GanEditorError(f"--mix-layers must be within 0-{G.num_ws - 1}")
        other, _ = load_latent(args.mix, G)
        ws = style_mix(ws, other.to(device), args.mix_layers)
    if args.trunc != 1.0:
        ws = truncate(ws, G.mapping.w_avg.view(1, 1, -1), args.trunc)
    edited = apply_edits(ws, edits, args.mode)
    with torch.no_grad():
        img = to_uint8(G.synthesis(edited, noise_mode="const"))[0]
        recon = to_uint8(G.synthesis(ws, noise_mode="const"))[0] if args.paste_back and edits else img
    img = paste_back_hook(args, img, recon)
    settings = {"directions": [f"{d.name}={a:g}" for d, a in edits] or None, "mode": args.mode,
                "truncation": args.trunc if args.trunc != 1.0 else None, "mix": Path(args.mix).name if args.mix else None,
                "pti": bool(args.pti_delta)}  # fmt: skip
    if args.paste_back:  # the photo with an edited face: its metadata is kept
        photo = read_image(args.paste_back)
        step = provenance.record("paste-back", ckpt.path, {**settings, "blend": args.blend})
        write_image(args.out, img, bit_depth=16 if img.dtype == np.uint16 else 8, icc_profile=photo.icc_profile,
                    exif=photo.exif, xmp=photo.xmp, provenance=provenance.edited(step, source=args.paste_back))  # fmt: skip
    else:
        write_image(args.out, img, provenance=provenance.generated(provenance.record("edit", ckpt.path, settings)))
    print(f"wrote {args.out}")
    return 0
