"""Restoration through the real command and in fresh processes: what the malloc setting costs small
images, and how fast Ctrl-C stops ``ganeditor restore``.

    python bench/bench_restore_cli.py --malloc-ab       # CPU seconds, glibc default vs 4 MiB mmap threshold
    python bench/bench_restore_cli.py --cancel          # Ctrl-C after a few seconds: time to exit, output?

malloc-ab: ``core.tiling_common.large_allocations_mapped`` (glibc: blocks >= 4 MiB get their own
mappings, returned when freed) changes process-wide state, so each side runs in its own process
(``--child``): models loaded, one warm-up, then CPU seconds (user + system, ``time.process_time``) of
each workload -- the default restore stages on a 640x480 held-out photo, 2 faces of a StyleGAN2 256
(random weights: the window's main work) -- sides interleaved, medians.  Sides: as shipped (a
640x480 run is under ``MAPPED_FROM``), after a large run has set and reset the thresholds, and the
4 MiB threshold for the whole process (what ``ganeditor restore`` did before).

cancel: a 1500x1000 degraded held-out photo through ``python -m ganeditor restore IN OUT`` (default
stages) in its own process; SIGINT after each ``--after`` seconds (model loading, detection, filling,
global restoration); seconds from the signal to the process's exit (wall), the exit status, and what
the output folder holds afterwards (nothing, or the file was written before the signal).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIDES = {"now": "as shipped (small runs leave malloc alone)",
         "after": "after a large run (thresholds reset to glibc's grown ones)",
         "process-wide": "4 MiB threshold for the whole process (the CLI before)"}


def degraded_photo(short: int) -> np.ndarray:
    """The first held-out natural photo, short side ``short``, through the old-photo degradation."""
    from bench_restore import degrade, load_photo  # the same data as the restore tables

    from ganeditor.worlds.photos import photo_paths

    clean = load_photo(photo_paths("heldout", "natural")[0], short)
    return degrade(clean, 999)[0]


def child(side: str, reps: int) -> None:
    """One side of the A/B in this process: prints {workload: [CPU seconds per rep]} as JSON."""
    import torch
    from bench_generator import make_generator

    from ganeditor.core.imageio import LoadedImage
    from ganeditor.core.tiling_common import MAPPED_FROM, M_MMAP_THRESHOLD, MMAP_THRESHOLD, _mallopt
    from ganeditor.core.tiling_common import large_allocations_mapped
    from ganeditor.pipelines.generate import generate
    from ganeditor.pipelines.restore import DEFAULT_STAGES, RestoreModels, RestoreOptions, restore

    torch.set_num_threads(1)
    if side == "process-wide":
        assert _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    elif side == "after":
        with large_allocations_mapped(MAPPED_FROM) as on:
            assert on
    img = LoadedImage(degraded_photo(480))
    models = RestoreModels.load(DEFAULT_STAGES, {}, "cpu")
    opts = RestoreOptions(stages=DEFAULT_STAGES)
    G = make_generator(256)  # StyleGAN2-ADA 256 config, random weights (bench_generator)
    work = {"restore 640x480 (default stages)": lambda: restore(img, models, opts),
            "StyleGAN2 256 px, 2 faces": lambda: list(generate(G, range(2)))}
    out: dict[str, list[float]] = {}
    with torch.no_grad():
        for name, fn in work.items():
            fn()  # warm-up
            out[name] = []
            for _ in range(reps):
                t0 = time.process_time()
                fn()
                out[name].append(time.process_time() - t0)
    print(json.dumps(out))


def malloc_ab(rounds: int, reps: int) -> None:
    """Interleave the sides in fresh processes; print the medians and the ratios to the shipped side."""
    got: dict[str, dict[str, list[float]]] = {s: {} for s in SIDES}
    load0 = os.getloadavg()[0]
    for r in range(rounds):
        for side in SIDES:
            p = subprocess.run([sys.executable, __file__, "--child", side, "--reps", str(reps)], capture_output=True,
                               text=True, check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
            for k, v in json.loads(p.stdout.strip().splitlines()[-1]).items():
                got[side].setdefault(k, []).extend(v)
            print(f"round {r + 1} {side}: " + ", ".join(f"{k} {min(v):.2f}" for k, v in got[side].items()), flush=True)
    print(f"\nload average {load0:.1f} -> {os.getloadavg()[0]:.1f}; one thread; {rounds} rounds x {reps} reps, medians\n")
    print("| workload | " + " | ".join(f"{SIDES[s]}: CPU s" for s in SIDES) + " |")
    print("|---|" + "---|" * len(SIDES))
    for k in got["now"]:
        a = statistics.median(got["now"][k])
        cells = [f"{statistics.median(got[s][k]):.2f} ({statistics.median(got[s][k]) / a:.2f}x)" for s in SIDES]
        print(f"| {k} | " + " | ".join(cells) + " |")


def cancel(afters: list[float], size: tuple[int, int], repeats: int) -> None:
    """SIGINT to ``ganeditor restore`` after each of ``afters`` seconds; time to exit, status, files left."""
    from PIL import Image

    from ganeditor.core.imageio import write_image

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        img = degraded_photo(min(size))
        img = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))
        src = Path(tmp) / "in" / "scan.png"
        src.parent.mkdir()
        write_image(src, img, None, 8)
        for k, after in enumerate(a for a in afters for _ in range(repeats)):
            out = Path(tmp) / f"out{k}"
            out.mkdir()
            dst = out / "restored.png"
            proc = subprocess.Popen([sys.executable, "-m", "ganeditor", "restore", str(src), str(dst)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=dict(os.environ, PYTHONPATH=str(ROOT)))
            time.sleep(after)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _o, err = proc.communicate()
            secs = time.monotonic() - t0
            left = sorted(p.name for p in out.iterdir())
            rows.append([f"{after:.0f}", f"{secs:.2f}", str(proc.returncode), ", ".join(left) or "nothing",
                         (err.strip().splitlines() or [""])[-1]])
            print("| " + " | ".join(rows[-1]) + " |", flush=True)
    print(f"\n{size[0]}x{size[1]}, default stages, load average {os.getloadavg()[0]:.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--malloc-ab", action="store_true")
    ap.add_argument("--cancel", action="store_true")
    ap.add_argument("--child", choices=sorted(SIDES), help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--after", type=float, nargs="+", default=[6.0, 15.0, 30.0],
                    help="cancel: seconds from the start to SIGINT, one run each (x --rounds; default 6 15 30)")
    ap.add_argument("--size", default="1500x1000", help="cancel: WxH of the photo (default 1500x1000)")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.reps)
    if args.malloc_ab:
        malloc_ab(args.rounds, args.reps)
    if args.cancel:
        print("| SIGINT after (s) | seconds to exit | exit status | files in the output folder | last line on stderr |")
        print("|---|---|---|---|---|")
        cancel(args.after, tuple(int(v) for v in args.size.lower().split("x")), args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
