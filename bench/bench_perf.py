"""The combined speed table of issue 15: the original code vs ours on every case, in one run.

    python bench/bench_perf.py --originals /work/orig                 # every case
    python bench/bench_perf.py --originals /work/orig --cases sg3-R256 projector-256 --rounds 2
    python bench/bench_perf.py --originals /work/orig --cases i2i-cyclegan-4000x3000 --rounds 1 --warmup 0

One table: case | original | ours exact (×) | ours fast (×) | × floor | max 8-bit diff vs original |
peak RSS each side.  Every implementation of a case runs in its own child process and the rounds
are interleaved (``perf_common.measure``), so load from other jobs hits all sides alike; the
``uptime`` load is printed before and after, and per row in the footnotes.  ``--originals DIR``
holds checkouts of the original code named as on GitHub (``stylegan3``, ``stylegan2-ada-pytorch``,
``pytorch-CycleGAN-and-pix2pix``, ``Real-ESRGAN``, ``BasicSR``); a case whose original is missing
has no original column (the table says so).  Cases:

  sg2-1024          StyleGAN2-ADA config-f synthesis (bench_generator.py)
  preview-1024      slider preview through PreviewRenderer: a fine edit (the last 4 ws) and a middle one
                    (4 ws from the middle; ws 14-17 and 8-11 of a 1024 generator's 18);
                    its extra "full" column is our full synthesis, "draft512" our PreviewRenderer's draft
                    for a face shown at <= 512 px (res // 2), and preview ÷ full is printed for both
  sg3-T256, sg3-R256, sg3-T1024, sg3-R1024   StyleGAN3 synthesis (bench_stylegan3.py)
  projector-256     one projector step, NVlabs projector.py vs project() (bench_projector.py)
  i2i-NAME          bench_image2image.py's cases (the engine engineer's rows), e.g. i2i-cyclegan-768x576
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf_common as pc  # noqa: E402

DEFAULT_CASES = ["sg2-1024", "preview-1024", "sg3-T256", "sg3-R256", "sg3-R1024", "projector-256",
                 "i2i-cyclegan-768x576", "i2i-cyclegan-1024x768", "i2i-x4plus-160x120", "i2i-animev3-640x480",
                 "i2i-srgan-640x480"]  # fmt: skip
I2I_ORIGINALS = ("pytorch-CycleGAN-and-pix2pix", "Real-ESRGAN", "BasicSR")


def original(root: str | None, name: str) -> str | None:
    """The checkout ``root/name`` if it exists."""
    path = Path(root) / name if root else None
    return str(path) if path is not None and path.is_dir() else None


def cases_for(name: str, originals: str | None, tmp: str, threads: int) -> list[pc.Case]:
    """The table rows of one case name."""
    if name.startswith("sg2-") or name.startswith("preview-"):
        import bench_generator  # noqa: PLC0415  (imports torch and ours: only when asked for)

        res = int(name.split("-")[1])
        n = 2 * (res.bit_length() - 1) - 2  # ws of a StyleGAN2 generator of this resolution
        layers = [f"{n - 4}-{n}", f"{n // 2 - 1}-{n // 2 + 3}"] if name.startswith("preview-") else []
        rows = bench_generator.perf_cases(res, original(originals, "stylegan2-ada-pytorch"), tmp, threads, layers)
        return rows[1:] if name.startswith("preview-") else rows[:1]
    if name.startswith("sg3-"):
        import bench_stylegan3  # noqa: PLC0415

        return bench_stylegan3.perf_cases([name[4:]], original(originals, "stylegan3"), tmp, threads)
    if name.startswith("projector-"):
        import bench_projector  # noqa: PLC0415

        return bench_projector.perf_cases(int(name.split("-")[1]), original(originals, "stylegan2-ada-pytorch"), tmp,
                                          threads, steps=4)  # fmt: skip
    if name.startswith("i2i-"):
        import bench_image2image  # noqa: PLC0415

        if not hasattr(bench_image2image, "perf_cases"):
            raise SystemExit(f"{name}: this bench_image2image.py has no perf_cases()")
        origs = [p for p in (original(originals, o) for o in I2I_ORIGINALS) if p]
        return bench_image2image.perf_cases([name[4:]], origs, threads, tmp)
    raise SystemExit(f"unknown case {name!r} (see --help)")


def preview_ratios(rows: list[pc.Row], metric: str) -> list[str]:
    """'preview ÷ full' lines of the preview rows (both measured in the same interleaved run)."""
    out = []
    for r in rows:
        full = r.timings.get("full")
        if full is None or full.error or not full.cpu:
            continue
        parts = [f"{name} {t.median(metric) / full.median(metric):.2f}" for name, t in r.timings.items()
                 if (name in ("exact", "fast") or name.startswith("draft")) and not t.error and t.cpu]  # fmt: skip
        out.append(f"- {r.case.name}: preview ÷ our full fp32 forward: " + ", ".join(parts) + " (target <= 0.5)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--originals", default=os.environ.get("GANEDITOR_ORIGINALS"), metavar="DIR",
                    help="folder of original checkouts (default: $GANEDITOR_ORIGINALS)")  # fmt: skip
    ap.add_argument("--cases", nargs="+", default=DEFAULT_CASES)
    ap.add_argument("--skip-original", nargs="*", default=[], metavar="CASE",
                    help="cases whose original is not run (e.g. sg3-R1024: the original's CPU reference ops take many minutes)")
    ap.add_argument("--rounds", type=int, default=2, help="timed interleaved rounds per case (after one warm-up)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed rounds first (0 for one-shot cases like i2i-cyclegan-4000x3000, minutes a run)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--metric", choices=pc.METRICS, default="cpu")
    args = ap.parse_args(argv)
    peak = pc.conv_peak(args.threads, args.metric)
    print(pc.uptime())
    print(f"originals: {args.originals or 'none given (no original columns)'}; fp32 conv peak {peak['fp32']:.0f} GFLOP/s, "
          f"bf16 {peak['bf16']:.0f} GFLOP/s ({args.metric} time, {args.threads} threads)", flush=True)  # fmt: skip
    rows, i2i = [], set()
    with tempfile.TemporaryDirectory(prefix="perf-") as tmp:
        for name in args.cases:
            for case in cases_for(name, None if name in args.skip_original else args.originals, tmp, args.threads):
                if name in args.skip_original:
                    case.note += "; original not run (--skip-original)"
                rows.append(pc.measure(case, args.rounds, args.threads, warmup=args.warmup))
                if name.startswith("i2i-"):
                    i2i.add(case.name)
                print(pc.format_table(rows[-1:], args.metric, peak).splitlines()[2], file=sys.stderr, flush=True)  # progress
    print()
    print(pc.format_table(rows, args.metric, peak))
    print("\n".join(preview_ratios(rows, args.metric)))
    others = [r for r in rows if r.case.name in i2i and any(n not in (pc.ORIGINAL, "exact", "fast") for n in r.timings)]
    if others:
        import bench_image2image  # noqa: PLC0415  (already imported by its cases)

        print("\nAgainst the other original builds measured in the same rounds (the official ncnn CPU build):\n")
        print(bench_image2image.extra_table(others, args.metric))
    print(pc.uptime())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
