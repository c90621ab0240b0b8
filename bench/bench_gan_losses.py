"""GAN losses and regularisers compared on the portrait world at equal images seen.

    python bench/bench_gan_losses.py [--res 32] [--kimg 24] [--configs logistic,r3gan,wgan-gp,...] [--out DIR]
    python bench/bench_gan_losses.py --tiny      # seconds: the whole pipeline on a 16 px network

Each configuration trains the StyleGAN2 recipe from scratch on ``world:portraits`` with the same
network, batch, learning rate, seed and number of images, with the run's health measured every
``--eval-kimg`` thousand images (``pipelines.train.health``: FD/KD and precision/recall in the
attribute regressor's feature space -- or Inception's when its weights are on disk --, the
per-attribute coverage, sample diversity and SWD on 7x7 patches).  The table shows the last
evaluation of each run (and the best recall it reached); runs are resumable (``--resume``), so the
bench can be stopped and continued.  Run folders: ``--out`` (default ``bench/out/gan_losses``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganeditor.pipelines.train.engine import TrainConfig, train  # noqa: E402
from ganeditor.pipelines.train.run_dir import RunDir  # noqa: E402

# name -> recipe options (on top of the shared network/optimiser settings)
CONFIGS: dict[str, dict] = {
    "logistic": dict(loss="logistic"),  # non-saturating logistic + lazy R1 (the StyleGAN2 recipe)
    "r3gan": dict(loss="r3gan"),  # relativistic pairing + lazy R1 + R2
    "wgan-gp": dict(loss="wgan-gp"),  # Wasserstein + gradient penalty every step
    "r3gan-sn": dict(loss="r3gan", spectral_norm=True),  # ... with spectral norm in D
    "r3gan-no-mbstd": dict(loss="r3gan", mbstd_channels=0),  # ... without minibatch stddev
    "logistic-no-lazy": dict(loss="logistic", r1_interval=1),  # R1 every step instead of every 16
}
SHARED = dict(channel_base=4096, channel_max=128, z_dim=256, w_dim=256, mapping_layers=8, lr=0.0025, r1_gamma=0.05,
              ema_kimg=5, style_mixing=0.9)
TINY = dict(channel_base=256, channel_max=16, z_dim=8, w_dim=8, mapping_layers=2)
HEADLINE = ("fid", "kid_x1e3", "precision", "recall", "coverage_min", "coverage/glasses", "coverage/beard",
            "diversity", "swd_x1e3")


def run_config(name: str, args: argparse.Namespace) -> list[dict]:
    """Train (or continue) one configuration; returns its health records."""
    out = Path(args.out) / name
    steps = max(1, int(args.kimg * 1000) // args.batch)
    every = max(1, int(args.eval_kimg * 1000) // args.batch)
    opts = dict(TINY if args.tiny else SHARED, resolution=args.res, **CONFIGS[name])
    resume = (out / "checkpoints" / "LATEST").is_file()
    cfg = TrainConfig(recipe="stylegan2", out=str(out), data=["world:portraits"], steps=steps, batch=args.batch,
                      seed=0, precision=args.precision, checkpoint_every=every, sample_every=every, log_every=every,
                      keep=1, eval_every=every, eval_count=args.eval_count, options=opts)  # fmt: skip
    t0 = time.monotonic()
    for ev in train(cfg, resume=resume):
        if ev.metrics:
            shown = {k: ev.metrics[k] for k in HEADLINE if k in ev.metrics}
            print(f"  {name} step {ev.step}/{ev.steps} ({ev.step * args.batch / 1000:.1f} kimg): {json.dumps(shown)}",
                  flush=True)
            for a in ev.alarms:
                print(f"    ALARM {a.text()}", flush=True)
    print(f"  {name}: {time.monotonic() - t0:.0f} s this session", flush=True)
    # a run trained further by an earlier, longer bench is read up to this bench's images (equal images seen)
    return [r for r in RunDir(out).read_metrics() if "feature_space" in r and r["step"] <= steps]


def table(results: dict[str, list[dict]], args: argparse.Namespace) -> str:
    """Markdown: the last evaluation of every configuration, with its best recall."""
    space = next((r[-1]["feature_space"] for r in results.values() if r), "?")
    lines = [f"Portrait world at {args.res} px, {args.kimg:g} kimg per configuration (batch {args.batch}), "
             f"{args.eval_count} generated vs {args.eval_count} held-out portraits per evaluation; feature space: "
             f"{space}. Lower is better for FD, KD, SWD; higher for precision, recall, coverage (1 = as often as "
             "in the data; < 0.5 = mode dropped); diversity 1 = as varied as the data.", "",
             "| configuration | " + " | ".join(HEADLINE) + " | best recall (kimg) |",
             "|---|" + "---:|" * (len(HEADLINE) + 1)]
    for name, recs in results.items():
        if not recs:
            lines.append(f"| {name} | " + " | ".join("-" for _ in HEADLINE) + " | - |")
            continue
        last = recs[-1]
        best = max(recs, key=lambda r: r.get("recall", 0))
        cells = [f"{last[k]:.3g}" if k in last else "-" for k in HEADLINE]
        kimg = best["step"] * args.batch / 1000
        lines.append(f"| {name} ({last['step'] * args.batch / 1000:g} kimg) | " + " | ".join(cells)
                     + f" | {best.get('recall', float('nan')):.3f} ({kimg:g}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="logistic,r3gan,wgan-gp", help=f"comma-separated, from {', '.join(CONFIGS)}")
    ap.add_argument("--res", type=int, default=32)
    ap.add_argument("--kimg", type=float, default=24.0, help="thousands of images seen per configuration")
    ap.add_argument("--eval-kimg", type=float, default=4.0, help="thousands of images between evaluations")
    ap.add_argument("--eval-count", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "gan_losses"))
    ap.add_argument("--tiny", action="store_true", help="16 px, a few hundred images: a smoke run")
    args = ap.parse_args(argv)
    if args.tiny:
        args.res, args.kimg, args.eval_kimg, args.eval_count, args.batch = 16, 0.032, 0.016, 32, 4
        args.precision, args.out = "fp32", str(Path(args.out) / "tiny")
    torch.set_num_threads(args.threads)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        ap.error(f"unknown configuration(s) {unknown}")
    t0 = time.monotonic()
    results = {name: run_config(name, args) for name in names}
    print(f"\n{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), "
          f"{time.monotonic() - t0:.0f} s this session\n")
    print(table(results, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
