"""Quality of the image-to-image models on held-out data, against baselines.

    python bench/bench_quality.py                    # every table whose models are installed
    python bench/bench_quality.py --quick            # few images (minutes)

Tables:
  SR x4    held-out real photos (``photos:heldout``, resized to a short side of 768 px, central 384 px
           crop, downscaled x4 by anti-aliased bicubic): PSNR/SSIM in RGB on 8-bit images, 4 px border
           cropped, for bicubic upscaling, the demo SRGAN (PSNR stage ``srgan-x4-psnr`` and GAN stage
           ``srgan-x4``) and Real-ESRGAN x4plus.
  day/night  held-out paired procedural scenes (256 px; the pairs are never seen in training):
           PSNR/SSIM of each direction against the paired truth, for identity (the input itself), a
           per-channel colour transfer to the target domain's statistics, and the demo CycleGAN.
Models are looked up by name in the model library; a missing one is reported as such.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))

from ganeditor.core.errors import GanEditorError  # noqa: E402
from ganeditor.core.model_store import resolve_model  # noqa: E402
from ganeditor.formats import load_checkpoint  # noqa: E402

SR_MODELS = ("srgan-x4-psnr", "srgan-x4", "realesrgan-x4plus")


def _load(name: str):
    try:
        return load_checkpoint(resolve_model(name))
    except GanEditorError as e:
        print(f"  {name}: not available ({e})")
        return None


def _sr_net(ck):
    return next(iter(ck.nets.values())).eval()


def sr_table(quick: bool) -> list[str]:
    import demo_eval

    rows, count = {}, None
    for name in SR_MODELS:
        ck = _load(name)
        if ck is None:
            continue
        q = demo_eval.srgan_quality(_sr_net(ck), short=768, crop=96 if quick else 384)
        rows.setdefault("bicubic", q["bicubic"])
        rows[name] = q["model"]
        count = q["images"]["count"]
    if not rows:
        return ["SR x4: no SR model installed"]
    base = rows["bicubic"]["psnr"]
    out = [f"SR x4 on {count} held-out photos (PSNR dB / SSIM, RGB, 8-bit, 4 px border cropped)",
           f"{'method':<20} {'PSNR':>7} {'SSIM':>6} {'vs bicubic':>11}"]
    for k, r in rows.items():
        out.append(f"{k:<20} {r['psnr']:7.2f} {r['ssim']:6.3f} {r['psnr'] - base:+10.2f} dB")
    return out


def daynight_table(quick: bool) -> list[str]:
    import demo_eval

    ck = _load("daynight-cyclegan")
    if ck is None:
        return ["day/night: daynight-cyclegan not installed"]
    count = 8 if quick else 50
    q = demo_eval.cyclegan_quality(ck.nets["G_A"].eval(), ck.nets["G_B"].eval(), count=count, size=256,
                                   stats_count=32 if quick else 200)
    out = [f"day/night on {count} held-out paired scenes, 256 px (PSNR dB / SSIM vs the paired truth)",
           f"{'direction':<11} {'method':<16} {'PSNR':>7} {'SSIM':>6} {'vs colour transfer':>19}"]
    for d in ("day->night", "night->day"):
        base = q[f"{d} colour transfer"]["psnr"]
        for m in ("identity", "colour transfer", "model"):
            r = q[f"{d} {m}"]
            label = "CycleGAN" if m == "model" else m
            out.append(f"{d:<11} {label:<16} {r['psnr']:7.2f} {r['ssim']:6.3f} {r['psnr'] - base:+18.2f} dB")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few and small images")
    p.add_argument("--tables", nargs="*", default=["sr", "daynight"], choices=["sr", "daynight"])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for t in args.tables:
        lines = sr_table(args.quick) if t == "sr" else daynight_table(args.quick)
        print("\n".join(lines) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
