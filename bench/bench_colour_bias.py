"""The colouriser's mean chroma bias, and whether a correction at inference removes it.

    python bench/bench_colour_bias.py            # 15 held-out and 15 training photos, short side 256

For each colour photo (gray ones are skipped): its BT.601 luma through ``restore-colorize``
(``restore_stages.colourise``), then the mean Cb and Cr of the result minus those of the photo (range
-0.5..0.5; green is Cb < 0 and Cr < 0), and the chroma PSNR (``bench_restore.chroma_psnr``).  Three
outputs per photo: as the stage gives it; minus the mean bias measured on the training photos (a
constant offset calibrated where it may be); with the image's mean chroma removed (gray world on
chroma).  The sample portrait (``resources/samples/portrait-grace-hopper.jpg``, a face: outside the
nature wallpapers the model was trained on) is reported alone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_restore import chroma_psnr, load_photo, luma  # noqa: E402

from ganeditor.pipelines.restore import RestoreModels  # noqa: E402
from ganeditor.pipelines.restore_stages import colourise  # noqa: E402
from ganeditor.worlds.photos import photo_paths  # noqa: E402

TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def ycc(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float64) / 255) @ TO_YCC.T


def rgb(y: np.ndarray) -> np.ndarray:
    return np.clip(np.round(y @ np.linalg.inv(TO_YCC).T * 255), 0, 255).astype(np.uint8)


def colour_photos(split: str, n: int, short: int) -> list[np.ndarray]:
    out = []
    for p in photo_paths(split, "all")[:n]:
        clean = load_photo(p, short)
        gray = np.repeat(np.round(luma(clean))[..., None], 3, 2).astype(np.uint8)
        if chroma_psnr(gray, clean) <= 40:  # a colour photo
            out.append(clean)
    return out


def scores(net, clean: np.ndarray, offset: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """{variant: (chroma PSNR, Cb bias, Cr bias)} for one photo."""
    out = colourise(net, np.round(luma(clean)).astype(np.uint8)[..., None])
    y = ycc(out)
    shifted, neutral = y.copy(), y.copy()
    shifted[..., 1:] -= offset
    neutral[..., 1:] -= neutral[..., 1:].mean((0, 1))
    truth = ycc(clean)[..., 1:].mean((0, 1))
    res = {}
    for name, v in (("as the stage gives it", out), ("minus the training photos' mean bias", rgb(shifted)),
                    ("mean chroma removed (gray world)", rgb(neutral))):
        b = ycc(v)[..., 1:].mean((0, 1)) - truth
        res[name] = (chroma_psnr(v, clean), float(b[0]), float(b[1]))
    return res


def main() -> int:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    net = RestoreModels.load(("colour",), {}, "cpu").nets["colour"]
    train = [scores(net, c, np.zeros(2)) for c in colour_photos("train", 15, 256)]
    offset = np.mean([r["as the stage gives it"][1:] for r in train], 0)
    print(f"mean bias on {len(train)} training photos: Cb {offset[0]:+.4f}, Cr {offset[1]:+.4f}\n")
    held = [scores(net, c, offset) for c in colour_photos("heldout", 15, 256)]
    print(f"| {len(held)} held-out colour photos | chroma PSNR (dB) | mean Cb bias | mean Cr bias | mean abs bias |")
    print("|---|---|---|---|---|")
    for k in held[0]:
        v = np.array([r[k] for r in held])
        print(f"| {k} | {v[:, 0].mean():.2f} | {v[:, 1].mean():+.4f} | {v[:, 2].mean():+.4f} | "
              f"{np.abs(v[:, 1:]).mean():.4f} |")
    clean = np.asarray(Image.open(ROOT / "resources" / "samples" / "portrait-grace-hopper.jpg").convert("RGB"))
    print("\n| portrait-grace-hopper.jpg | chroma PSNR (dB) | Cb bias | Cr bias |\n|---|---|---|---|")
    for k, (p, cb, cr) in scores(net, clean, offset).items():
        print(f"| {k} | {p:.2f} | {cb:+.4f} | {cr:+.4f} |")
    print(f"\nload average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
