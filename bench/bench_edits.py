"""Edit entanglement per direction source, measured with the attribute regressor (σ units).

    python bench/bench_edits.py --generator models/portrait-stylegan2.safetensors \\
        [--library models/portrait-stylegan2-directions.safetensors] [--n 64] [--alpha 3] [--out bench/edits.md]
    python bench/bench_edits.py --tiny          # smoke run on a random 16 px generator

For N latents (seeds as NVlabs), every direction moves ws by ±step on its layers, where step =
alpha × W's typical per-dimension σ (the same Euclidean norm for every direction, whatever its
units); both ends are rendered and scored.  The change of an attribute is the mean over latents of
half the difference, in population σ of that attribute.  Per attribute and source (InterFaceGAN,
conditional InterFaceGAN, SeFa, GANSpace) the best direction is shown: the one fitted for the
attribute, or for unsupervised sources the component with the largest |Δtarget|.  Each best
direction is re-measured at the step that should give Δtarget = 2σ (capped at 4× the step): the
issue's goal is Δtarget ≥ 2σ with every other attribute < 0.3σ.  Without --library the directions
are built on the fly (``make_direction_library.build_library``).  A ground-truth check of the
regressor (procedural people re-rendered with one attribute moved by 1σ) is printed too.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganeditor.archs import build  # noqa: E402
from ganeditor.core.atomic import atomic_write  # noqa: E402
from ganeditor.formats import load_checkpoint  # noqa: E402
from ganeditor.pipelines.attributes import build_portrait_regressor, load_regressor  # noqa: E402
from ganeditor.pipelines.direction_io import load_directions  # noqa: E402
from ganeditor.pipelines.directions import Direction  # noqa: E402
from ganeditor.pipelines.edit_quality import (  # noqa: E402
    entanglement_rows, ground_truth_edit_check, gt_check_markdown, rows_markdown,
)  # fmt: skip

SOURCE_ORDER = ("interfacegan", "interfacegan-conditional", "sefa", "ganspace")


def tiny_generator(seed: int = 0) -> torch.nn.Module:
    """A random 16 px StyleGAN2 (z/w 16) for smoke runs and tests."""
    torch.manual_seed(seed)
    return build("stylegan2-generator", z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                 mapping_kwargs={"num_layers": 2}, synthesis_kwargs={"channel_base": 256, "channel_max": 32}).eval()  # fmt: skip


def group_sources(directions: list[Direction]) -> dict[str, list[Direction]]:
    """Directions by source, in the table's order (unknown sources last)."""
    groups: dict[str, list[Direction]] = defaultdict(list)
    for d in directions:
        groups[d.source or "other"].append(d)
    order = [s for s in SOURCE_ORDER if s in groups] + sorted(set(groups) - set(SOURCE_ORDER))
    return {s: groups[s] for s in order}


def summary_markdown(rows: list[dict[str, object]], goal_target: float = 2.0, goal_other: float = 0.3) -> str:
    """Per source: attributes meeting the goal, median Δtarget and median max-other at the 2σ step."""
    lines = ["| source | attributes | goal met (Δtarget ≥ 2σ, others < 0.3σ) | median Δtarget @ 2σ step | "
             "median max other @ 2σ step |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    by: dict[str, list[dict[str, object]]] = defaultdict(list)
    for r in rows:
        by[str(r["source"])].append(r)
    for src, rs in by.items():
        met = sum(r["target_cal"] >= goal_target and r["others_max_cal"] < goal_other for r in rs)
        lines.append(f"| {src} | {len(rs)} | {met} | {np.nanmedian([r['target_cal'] for r in rs]):.2f} "
                     f"| {np.nanmedian([r['others_max_cal'] for r in rs]):.2f} |")  # fmt: skip
    return "\n".join(lines)


def run_bench(G, regressor, directions, n: int, alpha: float, batch: int, gt_n: int) -> tuple[str, list[dict]]:
    """Measure; return (markdown report, rows)."""
    t0 = time.perf_counter()
    sources = group_sources(directions)
    rows = entanglement_rows(G, regressor, sources, n=n, alpha=alpha, batch=batch)
    secs = time.perf_counter() - t0
    parts = [
        "# Edit entanglement (attribute regressor, σ units)\n",
        f"{n} latents, step = {alpha:g} × W's per-dimension σ on each direction's layers, "
        f"{sum(len(v) for v in sources.values())} directions ({', '.join(f'{k}: {len(v)}' for k, v in sources.items())}); "
        f"{secs:.0f} s on {platform.machine()} with {torch.get_num_threads()} threads.\n",
        summary_markdown(rows) + "\n",
        rows_markdown(rows) + "\n",
    ]
    if gt_n and hasattr(regressor, "conditions") and "smile" in regressor.attributes:
        gt = ground_truth_edit_check(regressor, n=gt_n)
        parts += ["## Regressor on ground-truth edits (procedural people, one attribute moved by 1σ)\n",
                  gt_check_markdown(gt) + "\n"]  # fmt: skip
    return "\n".join(parts), rows


def _library_builder():
    path = ROOT / "models" / "make_direction_library.py"
    spec = importlib.util.spec_from_file_location("make_direction_library", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build_library


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator", help="portrait StyleGAN2 checkpoint")
    p.add_argument("--library", help="direction library (default: build every source on the fly)")
    p.add_argument("--regressor", default=str(ROOT / "models" / "portrait-attributes.safetensors"))
    p.add_argument("--tiny", action="store_true", help="random 16 px generator and an untrained regressor (smoke run)")
    p.add_argument("--n", type=int, default=64, help="latents sampled")
    p.add_argument("--alpha", type=float, default=3.0, help="step norm in W's per-dimension σ")
    p.add_argument("--samples", type=int, default=3000, help="labelled samples when building boundaries on the fly")
    p.add_argument("--gt-check", type=int, default=100, help="people per attribute in the ground-truth check (0: skip)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "bench" / "edits.md"), help="markdown report to write")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.tiny:
        G, reg = tiny_generator(), build_portrait_regressor(sigmas=[1.0] * 15).eval()
        args.n, args.samples, args.gt_check = min(args.n, 16), min(args.samples, 400), 0
    elif not args.generator:
        p.error("--generator is required (or --tiny)")
    else:
        G, reg = load_checkpoint(args.generator).primary, load_regressor(args.regressor)
    if args.library:
        lib = load_directions(args.library)
        if lib.w_dim != G.w_dim:
            p.error(f"the library has w_dim {lib.w_dim}, the generator {G.w_dim}")
        directions = lib.directions
    else:
        lib = _library_builder()(G, reg, samples=args.samples)
        directions = lib.directions
    report, _ = run_bench(G, reg, directions, args.n, args.alpha, args.batch, args.gt_check)
    print(report)
    with atomic_write(args.out, "w") as f:
        f.write(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
