"""Speed of the procedural worlds, and a contact sheet to look at them.

Usage: python bench/bench_worlds.py [--threads 1] [--preview /tmp/worlds_preview.png]
Prints images/s (wall and CPU time; CPU time is the fairer figure on a shared machine) for
portraits at 64/128/256 px (batched), day/night scenes at 256², and synthetic night on 512×384.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganeditor.worlds.portraits import render_portraits  # noqa: E402
from ganeditor.worlds.scenes import paired, render_scene, scene_for_seed  # noqa: E402
from ganeditor.worlds.synthetic_night import synthetic_night  # noqa: E402


def _rate(fn, n_items: int, repeats: int = 3) -> tuple[float, float]:
    """Best-of-``repeats`` (wall, cpu) items per second of ``fn`` after a warm-up call."""
    fn(0)
    best_w = best_c = 0.0
    for r in range(1, repeats + 1):
        w, c = time.perf_counter(), time.process_time()
        fn(r)
        best_w = max(best_w, n_items / (time.perf_counter() - w))
        best_c = max(best_c, n_items / max(time.process_time() - c, 1e-9))
    return best_w, best_c


def preview(path: Path) -> None:
    """16 portraits (128 px) and 4 day/night pairs (256×128) side by side in one PNG."""
    imgs, _, _ = render_portraits(list(range(16)), 128)
    left = np.concatenate([np.concatenate(list(imgs[r * 4:(r + 1) * 4]), 1) for r in range(4)], 0)
    pairs = [np.concatenate(paired(s, (256, 128)), 0) for s in range(4)]
    right = np.concatenate([np.concatenate(pairs[:2], 1), np.concatenate(pairs[2:], 1)], 0)
    from PIL import Image

    Image.fromarray(np.concatenate([left, right], 1)).save(path)
    print(f"preview written to {path}")


def main() -> int:
    """Run the benchmarks and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--preview", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), portrait batch {args.batch}")
    print(f"{'work':40s} {'wall img/s':>10s} {'cpu img/s':>10s}")
    b = args.batch
    for size in (64, 128, 256):
        n = b * (4 if size <= 64 else 2 if size <= 128 else 1)
        fn = lambda r, size=size, n=n: [render_portraits(range(r * n + i, r * n + i + b), size)  # noqa: E731
                                        for i in range(0, n, b)]
        w, c = _rate(fn, n)
        print(f"{f'portraits {size}px':40s} {w:10.1f} {c:10.1f}")
    for time_ in ("day", "night"):
        params = [scene_for_seed(s) for s in range(8)]
        w, c = _rate(lambda r: [render_scene(p, (256, 256), time_) for p in params], len(params))
        print(f"{f'scene 256x256 {time_}':40s} {w:10.1f} {c:10.1f}")
    day = render_scene(scene_for_seed(0), (512, 384), "day")
    w, c = _rate(lambda r: synthetic_night(day, seed=r), 1)
    print(f"{'synthetic_night 512x384':40s} {w:10.1f} {c:10.1f}")
    if args.preview:
        preview(args.preview)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
