"""The SRGAN recipe's validation on any SR checkpoints: shipped models and run folders measured the same way.

    python bench/bench_sr_validation.py models/srgan-x4.safetensors ~/ganeditor-runs/srgan-x4/model.safetensors

The held-out photos of the demo recipe (``photos:heldout`` at a short side of 768 px, 192-px centre crops, the first
11), downscaled x4 by anti-aliased bicubic (8-bit), clean and saved as JPEG quality 30; PSNR in RGB with a 4-px
border cropped, against PyTorch bicubic upsampling of the same inputs (``pipelines.train.srgan.validation_scores``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))

from ganeditor.formats import load_checkpoint  # noqa: E402
from ganeditor.pipelines.train.data import ImageFolder  # noqa: E402
from ganeditor.pipelines.train.srgan import validation_scores  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--count", type=int, default=11)
    ap.add_argument("--size", type=int, default=192, help="centre crop of each held-out photo")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from make_demo_models import heldout_folder, runs_root

    val = ImageFolder(heldout_folder(runs_root(), 768), args.size, "center-crop", flip=False)
    print(f"{min(len(val), args.count)} held-out photos, {args.size}-px crops, x4 (PSNR dB, gain over bicubic)")
    print(f"{'model':60s} {'clean':>7s} {'gain':>7s} {'JPEG-30':>8s} {'gain':>7s}")
    for path in args.checkpoints:
        ck = load_checkpoint(path)
        net = (ck.nets.get("G_ema") or ck.nets.get("net") or ck.primary).float().eval()
        m = validation_scores(net, val, args.count, int(ck.meta.get("scale", 4)))
        print(f"{str(path):60s} {m['val_psnr']:7.2f} {m['val_psnr'] - m['val_psnr_bicubic']:+7.2f} "
              f"{m['val_psnr_jpeg30']:8.2f} {m['val_psnr_jpeg30'] - m['val_psnr_bicubic_jpeg30']:+7.2f}")
    print(f"bicubic: clean {m['val_psnr_bicubic']:.2f}, JPEG-30 {m['val_psnr_bicubic_jpeg30']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
