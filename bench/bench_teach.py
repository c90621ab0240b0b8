"""Teach-a-slider with the attribute regressor standing in for the user: directions taught from 10, 20
and 40 marks vs the shipped InterFaceGAN boundary (fitted on 5,000 regressor-labelled samples).

    python bench/bench_teach.py [--attributes smile age hair_colour glasses mouth_open bg_brightness]
                                [--labels 10 20 40] [--reps 3] [--pool 64] [--n 24] [--out bench/out/teach.md]

The "user" sees a grid of ``--pool`` generated faces (seeds as NVlabs, truncation 0.7, a fresh grid per
repetition) and marks the k faces the regressor scores highest as "more" and the k lowest as "less"
(k = labels / 2): the clearest examples, as a person would pick.  Each set of marks is fitted as the
window does (``pipelines.teach.teach_direction``: InterFaceGAN's logistic boundary on the marks),
plain and conditioned on the shipped boundaries of every other attribute (projected out), and, for
comparison, as a Fisher discriminant with the generator's own W covariance.  Every direction — taught or shipped — is then measured like
the sliders' check (``pipelines.sliders``): ``--n`` seeded latents moved to the slider's ends
(α = ±3 in the direction's σ units), rendered and scored; the target's movement and the largest
movement of any other attribute (leakage), in population σ, averaged over the repetitions (± the
spread across them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganeditor.core.atomic import atomic_write  # noqa: E402
from ganeditor.formats import load_checkpoint  # noqa: E402
from ganeditor.pipelines.attributes import load_regressor, score_array  # noqa: E402
from ganeditor.pipelines.direction_io import load_library  # noqa: E402
from ganeditor.pipelines.edit_quality import direction_effects, sample_ws  # noqa: E402
from ganeditor.pipelines.sliders import SLIDER_RANGE  # noqa: E402
from ganeditor.pipelines.teach import Marks, sample_grid, teach_direction  # noqa: E402


def movement(G, reg, ws, d, attr: str) -> tuple[float, float, str]:
    """(target σ, largest other |σ|, which) at the slider's full range."""
    eff = direction_effects(G, reg, ws, [d], SLIDER_RANGE * float(np.linalg.norm(d.step())))[0]
    names = list(reg.attributes)
    i = names.index(attr)
    skip = {attr} | {a for a, c in reg.conditions.items() if c == attr}
    others = {a: abs(float(eff[j])) for j, a in enumerate(names) if a not in skip and np.isfinite(eff[j])}
    worst = max(others, key=others.get)
    return float(eff[i]), others[worst], worst


def scored_grid(G, reg, pool: int, rep: int) -> tuple[np.ndarray, np.ndarray]:
    """A fresh grid of ``pool`` faces (repetition ``rep``): (W [pool, w_dim], regressor scores [pool, A])."""
    w, imgs = sample_grid(G, list(range(10_000 + rep * pool, 10_000 + (rep + 1) * pool)))
    return w, score_array(reg, imgs)


def user_marks(reg, grid: tuple[np.ndarray, np.ndarray], attr: str, k: int) -> Marks:
    """The grid's k highest and k lowest scored faces for ``attr``."""
    w, scores = grid
    order = np.argsort(scores[:, list(reg.attributes).index(attr)], kind="stable")
    return Marks(more=w[order[-k:]], less=w[order[:k]])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", default=str(ROOT / "models" / "portrait-stylegan2.safetensors"))
    p.add_argument("--regressor", default=str(ROOT / "models" / "portrait-attributes.safetensors"))
    p.add_argument("--attributes", nargs="+", default=["hair_colour", "glasses", "mouth_open", "smile"])
    p.add_argument("--labels", type=int, nargs="+", default=[10, 20, 40])
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--other-labels", type=int, nargs="*", default=[20], help="label counts also fitted as a Fisher discriminant")
    p.add_argument("--pool", type=int, default=64, help="faces in the grid the user marks from")
    p.add_argument("--n", type=int, default=16, help="latents for measuring each direction")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "teach.md")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    G = load_checkpoint(args.network).primary.eval()
    reg = load_regressor(args.regressor)
    lib = load_library(Path(args.network).with_name(Path(args.network).stem + "-directions.safetensors"))
    shipped = {d.name: d for d in lib.directions if d.source == "interfacegan"}
    ws = sample_ws(G, args.n, seed=0)
    grids = [scored_grid(G, reg, args.pool, rep) for rep in range(args.reps)]
    lines = ["| attribute | direction | labels | target (σ) | largest other (σ) | which |", "|---|---|---:|---:|---:|---|"]
    for attr in args.attributes:
        t, o, which = movement(G, reg, ws, shipped[attr], attr)
        lines.append(f"| {attr} | shipped InterFaceGAN | 5,000 (regressor) | {t:+.2f} | {o:.2f} | {which} |")
        others = [d for n, d in shipped.items() if d.info.get("attribute") != attr]
        for kind, method, cond, counts in (("taught", "logistic", False, args.labels),
                                           ("taught, conditioned", "logistic", True, args.labels),
                                           ("taught, Fisher fit", "fisher", False, args.other_labels)):  # fmt: skip
            for labels in counts:
                res = []
                for rep in range(args.reps):
                    marks = user_marks(reg, grids[rep], attr, labels // 2)
                    d = teach_direction(G, attr, marks, others if cond else (), method=method)
                    res.append(movement(G, reg, ws, d, attr))
                tt, oo = np.array([r[0] for r in res]), np.array([r[1] for r in res])
                which = max(set(r[2] for r in res), key=[r[2] for r in res].count)
                lines.append(f"| {attr} | {kind} | {labels} | {tt.mean():+.2f} ± {tt.std():.2f} | {oo.mean():.2f} ± {oo.std():.2f} | {which} |")
                print(lines[-1], flush=True)
    head = (f"Teach-a-slider, the regressor as the user: {args.reps} repetitions (fresh grid of {args.pool} faces each), "
            f"measured on {args.n} latents at the slider's ends (α = ±{SLIDER_RANGE:g}); {time.perf_counter() - t0:.0f} s, "
            f"{torch.get_num_threads()} threads.\n\n")  # fmt: skip
    text = head + "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, "w") as f:
        f.write(text)
    print("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
