"""``ganeditor directions --network CKPT --method sefa|ganspace|import|check --out LIB.safetensors``.

``--method check --from LIB --regressor R`` measures every direction of LIB at the sliders' full range
with an attribute regressor and writes LIB with the verdicts (the window names only passing sliders).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganeditor.cli.common import add_device_option, add_overwrite_option, guard_outputs, parse_range, progress_task
from ganeditor.core.device import pick_device
from ganeditor.core.errors import GanEditorError
from ganeditor.core.model_store import resolve_model
from ganeditor.pipelines.attributes import load_regressor
from ganeditor.pipelines.direction_io import generator_fingerprint, load_directions, save_library
from ganeditor.pipelines.directions import DirectionLibrary, ganspace, sefa
from ganeditor.pipelines.portrait import load_stylegan
from ganeditor.pipelines.sliders import check_directions, check_summary


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("directions", help="build a direction library (SeFa, GANSpace, or import a file)")
    p.add_argument("--network", required=True, help="StyleGAN checkpoint or model name")
    p.add_argument("--method", choices=("sefa", "ganspace", "import", "check"), default="sefa",
                   help="how to find directions; 'check': measure the directions of --from with --regressor")
    p.add_argument("--num", type=int, default=10, help="directions kept (default 10)")
    p.add_argument("--layers", type=parse_range, default=None, help="ws layers, e.g. 0-5 (default: all)")
    p.add_argument("--samples", type=int, default=20000, help="W samples for GANSpace / σ units (default 20000)")
    p.add_argument("--from", dest="source", default=None, help="file to import (InterFaceGAN .npy, GANSpace .npz, factor .pt)")
    p.add_argument("--regressor", default="portrait-attributes", help="attribute regressor for --method check")
    p.add_argument("--check-n", type=int, default=32, help="latents per direction for --method check")
    p.add_argument("--out", required=True, help="library file to write (.safetensors)")
    add_device_option(p)
    add_overwrite_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.num < 1:
        raise GanEditorError("--num must be positive")
    guard_outputs([args.network, args.source], [args.out], args.overwrite)
    device = pick_device(args.device)
    ckpt, G = load_stylegan(args.network, device)
    layers = args.layers
    if layers is not None and (min(layers) < 0 or max(layers) >= G.num_ws):
        raise GanEditorError(f"--layers must be within 0-{G.num_ws - 1}")
    span = (min(layers), max(layers) + 1) if layers else None
    if args.method == "check":
        return _check(args, G)
    if args.method == "sefa":
        dirs = sefa(G, layers, args.num, min(args.samples, 5000))
    elif args.method == "ganspace":
        dirs = ganspace(G, args.num, span, args.samples)
    else:
        if not args.source:
            raise GanEditorError("--method import needs --from FILE")
        lib = load_directions(args.source)
        if lib.w_dim != G.w_dim:
            raise GanEditorError(f"directions have w_dim {lib.w_dim}, the generator has {G.w_dim}", args.source)
        dirs = lib.directions[: args.num] if lib.provenance.get("imported") != "interfacegan" else lib.directions
        if span:
            for d in dirs:
                d.start, d.end = span
    prov = {"method": args.method, "network": str(ckpt.path), "layers": layers, "samples": args.samples}
    lib = DirectionLibrary(dirs, G.w_dim, G.num_ws, generator_fingerprint(G), prov)
    save_library(lib, args.out)
    for d in dirs:
        a, b = d.layer_range(G.num_ws)
        print(f"{d.name:>14}  layers {a}-{b - 1}  unit {d.unit}  sigma {d.sigma:.4g}")
    print(f"wrote {len(dirs)} direction(s) to {args.out}")
    return 0


def _check(args: argparse.Namespace, G) -> int:
    """--method check: verdicts for every direction of --from, written to --out."""
    if not args.source:
        raise GanEditorError("--method check needs --from LIBRARY")
    lib = load_directions(args.source)
    lib.check_generator(generator_fingerprint(G), G.w_dim, args.source)
    model = load_regressor(resolve_model(args.regressor), next(G.parameters()).device)
    with progress_task("checking directions", len(lib.directions)) as task:
        check_directions(G, model, lib.directions, n=args.check_n, task=task)
    lib.provenance["check"] = {"n": args.check_n, "regressor": Path(resolve_model(args.regressor)).name}
    save_library(lib, args.out)
    print(check_summary(lib.directions))
    print(f"wrote {args.out}")
    return 0
