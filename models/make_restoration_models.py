"""Train (or resume) one old-photo restoration demo model with our trainer, export it as fp16, measure it
on held-out photos and write its card.

Usage:
    python models/make_restoration_models.py restore-scratches|restore-inpaint|restore-global|restore-colorize [--resume]
    python models/make_restoration_models.py NAME --export-only      # export/measure/card from the run folder

Run folders: ``$GANEDITOR_RUNS/NAME`` (default ``~/ganeditor-runs/NAME``).  Data: the gathered real
photos (``photos:train``, from ``bench/gather_photos.py``), degraded on the fly by
``ganeditor.pipelines.train.degrade.old_photo``; measured on ``photos:heldout``, never trained on.
``--tiny`` runs a seconds-long version (tests).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ganeditor.core.errors import Cancelled, GanEditorError  # noqa: E402
from ganeditor.formats import Checkpoint, load_checkpoint  # noqa: E402
from ganeditor.formats.native import canonicalize_safetensors, save_checkpoint  # noqa: E402
from make_demo_models import PHOTO_LICENCE, _train_until, parse_args, run_stats, runs_root, sha256  # noqa: E402

_COMMON = dict(batch=8, seed=0, precision="bf16", checkpoint_every=100, sample_every=250, log_every=10, keep=2,
               validate_every=250)
_TINY = dict(steps=2, batch=2, checkpoint_every=1, sample_every=1, log_every=1, validate_every=2,
             data=["photos:train?short=64"],
             options=dict(channels=[4, 8], blocks=[1, 1], crop_size=32, val_count=2, val_size=32, d_feat=4,
                          pretrain_steps=1, val="photos:heldout?short=64"))

RECIPES: dict[str, dict] = {
    "restore-scratches": {
        "title": "Dust and scratch detector",
        "train": dict(recipe="scratches", data=["photos:train?short=768"], steps=1200, **_COMMON,
                      options=dict(crop_size=128, lr=5e-4, pos_weight=4.0)),
    },
    "restore-global": {
        "title": "Global old-photo restorer (GAN)",
        "train": dict(recipe="restore", data=["photos:train?short=768"], steps=1500, **dict(_COMMON, batch=6),
                      options=dict(crop_size=96, lr=3e-4, pretrain_steps=800, w_gan=0.005, w_perceptual=0.5)),
    },
    "restore-inpaint": {
        "title": "Dust and scratch inpainter (GAN)",
        "train": dict(recipe="inpaint", data=["photos:train?short=768"], steps=1000, **dict(_COMMON, batch=6),
                      options=dict(crop_size=96, lr=3e-4, pretrain_steps=300, w_gan=0.01, w_perceptual=0.5)),
    },
    "restore-colorize": {
        "title": "Colouriser (chroma from luma, GAN)",
        "train": dict(recipe="colorize", data=["photos:train?short=256"], steps=1200, **dict(_COMMON, batch=6),
                      options=dict(crop_size=96, lr=3e-4, pretrain_steps=600, w_gan=0.02)),
    },
}


def recipe_config(name: str, tiny: bool = False) -> dict:
    """The TrainConfig fields (and options) of a restoration demo model; ``tiny`` for tests."""
    if name not in RECIPES:
        raise GanEditorError(f"unknown restoration model {name!r} (choose from {', '.join(RECIPES)})")
    cfg = copy.deepcopy(RECIPES[name]["train"])
    if tiny:
        t = copy.deepcopy(_TINY)
        cfg["options"].update(t.pop("options"))
        cfg.update(t)
        cfg["precision"] = "fp32"
        if name == "restore-colorize":
            cfg["options"]["channels"], cfg["options"]["blocks"] = [4, 8, 8], [1, 1, 1]
    return cfg


def export(name: str, run: Path, out: Path) -> Checkpoint:
    """The run's EMA network as fp16 ``out`` with its provenance in the metadata; returns what was read."""
    src_path = run / "model.safetensors"
    if not src_path.is_file():
        raise GanEditorError("the run has no model.safetensors yet (no checkpoint written)", run)
    src = load_checkpoint(src_path)
    st = run_stats(run)
    meta = dict(src.meta, demo_model=name, steps=st["steps"], train_wall_s=st["wall_s"], data=st["config"]["data"],
                recipe=st["config"]["recipe"], options=st["config"]["options"])
    save_checkpoint(Checkpoint("ganeditor", src.format_name, {"net": src.nets["net"].eval()}, meta), out,
                    dtype=torch.float16)
    canonicalize_safetensors(out)
    return src


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    args = parse_args(list(RECIPES), __doc__.splitlines()[0], argv)
    run = args.run or runs_root() / args.name
    try:
        if not args.export_only:
            fields = recipe_config(args.name, args.tiny)
            if args.steps is not None:
                fields["steps"] = args.steps
            elif args.resume:
                fields["steps"] = 0  # keep the run's own number of steps
            _train_until(args.name, run, fields, args.resume)
        if args.no_export:
            return 0
        args.models_dir.mkdir(parents=True, exist_ok=True)
        out = args.models_dir / f"{args.name}.safetensors"
        t0 = time.monotonic()
        export(args.name, run, out)
        from restoration_card import measure, write_card

        quality = measure(args.name, out, args.tiny)
        card = write_card(args.name, RECIPES[args.name], run_stats(run), quality, out, sha256(out),
                          args.models_dir / f"{args.name}.md", PHOTO_LICENCE)
        print(json.dumps(quality, indent=1))
        print(f"wrote {out} ({out.stat().st_size:,} bytes) and {card} in {time.monotonic() - t0:.0f} s")
    except GanEditorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Cancelled:
        print("stopped; continue with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
