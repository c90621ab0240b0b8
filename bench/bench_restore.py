"""Old-photo restoration on held-out real photos (``photos:heldout``, never trained on), degraded by the
degradation model (``degrade.old_photo``, seeded per photo), against the degraded input and classical
baselines (OpenCV: median-difference dust detection, Telea inpainting, non-local means + unsharp mask).

    python bench/bench_restore.py                 # every table, the 3000x2000 scan and the crops page
    python bench/bench_restore.py --quick         # 4 photos, small, no scan
    python bench/bench_restore.py --scan-only     # seconds and peak memory of a 3000x2000 scan
    python bench/bench_restore.py --photos 6 --short 256 --no-scan   # cheaper, on a busy machine

Tables (means over the photos; PSNR in dB and SSIM on BT.601 luma, 8-bit, against the clean photo --
its luma for black-and-white prints):
  damage     dust/scratch masks vs the drawn ground truth: precision, recall, IoU (pixels)
  restore    each stage combination of ours vs the degraded input and the classical pipeline
  fill       the inpainter alone on the true damage mask vs Telea: PSNR over the damaged pixels
  colour     colourisation of the clean luma: chroma (Cb, Cr) PSNR vs leaving it gray
  faces      face photos: luma PSNR inside the detected face boxes, with and without the face stage
  upscale    x2: photos halved then degraded, restored and enlarged vs Lanczos and the classical pipeline
  scan       a 3000x2000 synthetic scan through ``ganeditor restore`` (default stages): seconds, peak RSS
A page of before/after crops goes to ``docs/restore_crops.png``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganeditor.core.imageio import LoadedImage, write_image  # noqa: E402
from ganeditor.core.metrics import psnr, ssim  # noqa: E402
from ganeditor.pipelines.restore import RestoreModels, RestoreOptions, restore  # noqa: E402
from ganeditor.pipelines.restore_damage import damage_probability, inpaint  # noqa: E402
from ganeditor.pipelines.train.degrade import OLD_PHOTO, old_photo  # noqa: E402
from ganeditor.worlds.photos import photo_paths  # noqa: E402

LUMA = np.array([0.299, 0.587, 0.114])


# ----------------------------------------------------------------------------------------- data


def load_photo(path: Path, short: int) -> np.ndarray:
    """RGB uint8 with the short side ``short`` (Lanczos), as the training sources decode them."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        r = short / min(im.size)
        return np.asarray(im.resize((max(1, round(im.width * r)), max(1, round(im.height * r))), Image.Resampling.LANCZOS))


def heldout(short: int, kind: str = "all", limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(name, clean photo) of the held-out split."""
    paths = photo_paths("heldout", kind)[:limit]
    return [(p.stem, load_photo(p, short)) for p in paths]


def degrade(clean: np.ndarray, index: int, cfg=OLD_PHOTO):
    """The seeded old print of held-out photo ``index``: (degraded uint8, target uint8, mask bool, b/w)."""
    d = old_photo(clean, np.random.default_rng([2026, index]), cfg)
    q = lambda a: (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)  # noqa: E731
    return q(d.image), q(d.target), d.mask, d.gray


# -------------------------------------------------------------------------------------- metrics


def luma(a: np.ndarray) -> np.ndarray:
    return a[..., 0].astype(np.float64) if a.shape[2] == 1 else a.astype(np.float64) @ LUMA


def luma_scores(out: np.ndarray, target: np.ndarray, box: tuple[int, int, int, int] | None = None) -> tuple[float, float]:
    """(PSNR, SSIM) of the 8-bit-rounded luma of ``out`` vs ``target`` (in ``box`` = x0, y0, x1, y1)."""
    a, b = np.round(luma(out)), np.round(luma(target))
    if box is not None:
        x0, y0, x1, y1 = box
        a, b = a[y0:y1, x0:x1], b[y0:y1, x0:x1]
    ta, tb = (torch.from_numpy(x / 255.0)[None, None] for x in (a, b))
    return psnr(ta, tb), ssim(ta, tb)


def chroma_psnr(out: np.ndarray, target: np.ndarray) -> float:
    """PSNR of BT.601 Cb/Cr (range 1) between two RGB uint8 images."""
    def cbcr(x):
        x = x.astype(np.float64) / 255
        return np.stack([x @ [-0.168736, -0.331264, 0.5], x @ [0.5, -0.418688, -0.081312]]) + 0.5

    return psnr(torch.from_numpy(cbcr(out))[None], torch.from_numpy(cbcr(target))[None])


def mask_scores(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float, float]:
    tp = float((pred & gt).sum())
    return tp / max(1.0, float(pred.sum())), tp / max(1.0, float(gt.sum())), tp / max(1.0, float((pred | gt).sum()))


# ------------------------------------------------------------------------------------ baselines


def _cv2():
    import cv2  # opencv-python-headless (test/bench dependency)

    return cv2


def median_detector(img: np.ndarray, threshold: float = 0.12, size: int = 5) -> np.ndarray:
    """Classical dust & scratch finder: where luma differs from its median-filtered self."""
    cv2 = _cv2()
    y = np.round(luma(img)).astype(np.uint8)
    diff = np.abs(y.astype(np.int16) - cv2.medianBlur(y, size).astype(np.int16)) / 255.0
    return cv2.dilate((diff > threshold).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


def telea(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    return cv2.inpaint(np.ascontiguousarray(img[..., ::-1]), mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)[..., ::-1]


def nlm_unsharp(img: np.ndarray, h: float = 7.0, amount: float = 0.5) -> np.ndarray:
    """Non-local means (OpenCV, colour) then an unsharp mask (Gaussian sigma 1.5)."""
    cv2 = _cv2()
    den = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(img[..., ::-1]), None, h, h, 7, 21)[..., ::-1]
    blur = cv2.GaussianBlur(den, (0, 0), 1.5)
    return np.clip(den * (1 + amount) - blur * amount, 0, 255).astype(np.uint8)


def classical(img: np.ndarray) -> np.ndarray:
    """The classical pipeline: median-difference detection + Telea, then NL-means + unsharp mask."""
    return nlm_unsharp(telea(img, median_detector(img)))


# ---------------------------------------------------------------------------------------- runs


def ours(models: RestoreModels, img: np.ndarray, stages: tuple[str, ...], **kw) -> np.ndarray:
    return restore(LoadedImage(img), models, RestoreOptions(stages=stages, **kw)).image.pixels


def table(title: str, head: list[str], rows: list[list[str]]) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


def fmt(v: tuple[float, float]) -> str:
    return f"{v[0]:.2f} / {v[1]:.3f}"


def bench_damage_restore(models: RestoreModels, photos, crops: list) -> None:
    det, base_det, rows, fill = [], [], {}, {"ours": [], "telea": []}
    for i, (name, clean) in enumerate(photos):
        img, target, gt, _gray = degrade(clean, i)
        prob = damage_probability(models.nets["scratches"], img)
        det.append(mask_scores(prob >= 128, gt))
        base_det.append(mask_scores(median_detector(img), gt))
        outs = {
            "degraded input": img,
            "classical (median + Telea, NL-means + unsharp)": classical(img),
            "ours: scratches": ours(models, img, ("scratches",)),
            "ours: global": ours(models, img, ("global",)),
            "ours: scratches + global": ours(models, img, ("scratches", "global")),
        }
        for k, v in outs.items():
            rows.setdefault(k, []).append(luma_scores(v, target))
        if gt.any():
            filled, _ = inpaint(models.nets["inpaint"], img, gt)
            for k, v in (("ours", filled), ("telea", telea(img, gt))):
                err = ((luma(v) - luma(target))[gt] ** 2).mean()
                fill[k].append(10 * np.log10(255.0**2 / max(err, 1e-10)))
        crops.append((name, clean, img, outs["ours: scratches + global"], outs["classical (median + Telea, NL-means + unsharp)"]))
    n = len(photos)
    table(f"damage: dust and scratch masks, {n} held-out photos", ["detector", "precision", "recall", "IoU"],
          [[k, *(f"{np.mean([s[j] for s in v]):.3f}" for j in range(3))]
           for k, v in (("ours (restore-scratches, p >= 0.5)", det), ("classical median difference (5 px, > 0.12)", base_det))])
    table(f"restore: luma PSNR (dB) / SSIM vs the clean photo, {n} held-out photos", ["", "PSNR / SSIM"],
          [[k, fmt(tuple(np.mean(v, axis=0)))] for k, v in rows.items()])
    table("fill: inpainting on the true damage mask, luma PSNR over the damaged pixels", ["", "PSNR (dB)"],
          [["ours (restore-inpaint)", f"{np.mean(fill['ours']):.2f}"], ["OpenCV Telea (radius 3)", f"{np.mean(fill['telea']):.2f}"]])


def bench_colour(models: RestoreModels, photos) -> None:
    gray_p, ours_p, luma_p = [], [], []
    for _name, clean in photos:
        if chroma_psnr(np.repeat(np.round(luma(clean))[..., None], 3, 2).astype(np.uint8), clean) > 40:
            continue  # a gray photo: nothing to predict
        g = np.round(luma(clean)).astype(np.uint8)[..., None]
        out = ours(models, g, ("colour",))
        ours_p.append(chroma_psnr(out, clean))
        gray_p.append(chroma_psnr(np.repeat(g, 3, 2), clean))
        luma_p.append(luma_scores(out, clean)[0])
    table(f"colour: colourising the luma of {len(ours_p)} held-out colour photos", ["", "chroma PSNR (dB)"],
          [["left gray", f"{np.mean(gray_p):.2f}"], ["ours (restore-colorize)", f"{np.mean(ours_p):.2f}"],
           ["(luma PSNR of ours vs the photo: luma kept)", f"{np.mean(luma_p):.2f}"]])


def bench_faces(models: RestoreModels, photos) -> None:
    from ganeditor.pipelines.face_detect import detect_faces, get_detector

    if get_detector() is None:
        print("\n## faces\n\nskipped: MTCNN weights not installed")
        return
    rows: dict[str, list] = {}
    nfaces = 0
    for i, (_name, clean) in enumerate(photos):
        faces = detect_faces(clean)
        if not faces:
            continue
        img, target, _gt, _gray = degrade(clean, 100 + i, OLD_PHOTO.without_damage())
        outs = {"degraded input": img, "classical (NL-means + unsharp)": nlm_unsharp(img),
                "ours: global": ours(models, img, ("global",)),
                "ours: global + faces (fidelity 0.7)": ours(models, img, ("global", "faces"))}
        for f in faces:
            nfaces += 1
            box = tuple(int(v) for v in np.clip(f.box, 0, None))
            for k, v in outs.items():
                rows.setdefault(k, []).append(luma_scores(v, target, box))
    table(f"faces: luma PSNR / SSIM inside {nfaces} face boxes of the held-out face photos", ["", "PSNR / SSIM"],
          [[k, fmt(tuple(np.mean(v, axis=0)))] for k, v in rows.items()])


def bench_upscale(models: RestoreModels, photos) -> None:
    rows: dict[str, list] = {}
    for i, (_name, clean) in enumerate(photos):
        h, w = clean.shape[:2]
        small = np.asarray(Image.fromarray(clean).resize((w // 2, h // 2), Image.Resampling.BICUBIC))
        img, _t, _m, gray = degrade(small, 200 + i, OLD_PHOTO.without_damage())
        target = np.repeat(np.round(luma(clean))[..., None], 3, 2).astype(np.uint8) if gray else clean
        big = lambda a: np.asarray(Image.fromarray(a).resize((w // 2 * 2, h // 2 * 2), Image.Resampling.LANCZOS))  # noqa: E731
        outs = {"Lanczos x2 of the degraded input": big(img), "classical pipeline, then Lanczos x2": big(classical(img)),
                "ours: scratches + global + upscale x2": ours(models, img, ("scratches", "global", "upscale"), upscale=2)}
        for k, v in outs.items():
            rows.setdefault(k, []).append(luma_scores(v, target[: h // 2 * 2, : w // 2 * 2]))
    table(f"upscale: x2 of halved, degraded held-out photos, {len(photos)} photos", ["", "PSNR / SSIM"],
          [[k, fmt(tuple(np.mean(v, axis=0)))] for k, v in rows.items()])


def crops_page(crops: list, path: Path, size: int = 160, rows: int = 4) -> None:
    """One page: per photo a centre crop of clean | degraded | ours | classical, under a header."""
    from PIL import ImageDraw

    gap, lines = 4, []
    for _name, *imgs in crops[:rows]:
        h, w = imgs[0].shape[:2]
        y, x = max(0, h // 2 - size // 2), max(0, w // 2 - size // 2)
        cells = [(np.repeat(a, 3, 2) if a.shape[2] == 1 else a)[y : y + size, x : x + size] for a in imgs]
        lines.append(np.concatenate([np.pad(c, ((0, gap), (0, gap), (0, 0)), constant_values=255) for c in cells], 1))
    page = Image.fromarray(np.concatenate([np.full((18, lines[0].shape[1], 3), 255, np.uint8), *lines], 0))
    draw = ImageDraw.Draw(page)
    for i, label in enumerate(("clean", "degraded", "ours: scratches+global", "classical")):
        draw.text((i * (size + gap) + 3, 3), label, fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    page.save(path, optimize=True)
    print(f"\ncrops page (clean | degraded | ours: scratches + global | classical): {path.relative_to(ROOT)}")


def bench_scan(size: tuple[int, int] = (3000, 2000), extra: list[str] | None = None) -> None:
    """A synthetic 3000x2000 scan through the CLI in its own process: seconds and peak RSS."""
    photo = photo_paths("heldout", "natural")[0]
    with tempfile.TemporaryDirectory() as tmp:
        with Image.open(photo) as im:
            clean = np.asarray(im.convert("RGB").resize(size, Image.Resampling.LANCZOS))
        img, _t, _m, _g = degrade(clean, 999)
        src, dst = Path(tmp) / "scan.png", Path(tmp) / "out.png"
        write_image(src, img, None, 8)
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "ganeditor", "restore", str(src), str(dst), *(extra or [])]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        wall = time.monotonic() - t0
        field = lambda name: next((float(ln.rsplit(":", 1)[1]) for ln in proc.stderr.splitlines() if name in ln), 0.0)  # noqa: E731
        peak, cpu = field("Maximum resident"), field("User time") + field("System time")
        ok = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
    load = os.getloadavg()[0]
    table(f"scan: {size[0]}x{size[1]} through 'ganeditor restore {' '.join(extra or [])}' (load average {load:.1f})",
          ["stages", "seconds (wall)", "CPU seconds (user + system)", "peak RSS", "result"],
          [[" ".join(extra or ["default: scratches,global"]), f"{wall:.0f}", f"{cpu:.0f}", f"{peak / 2**20:.2f} GiB", ok]])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 photos at 256 px, no scan")
    ap.add_argument("--short", type=int, default=384, help="short side of the held-out photos")
    ap.add_argument("--photos", type=int, default=None, help="only the first N held-out photos (default all)")
    ap.add_argument("--scan-only", action="store_true")
    ap.add_argument("--no-scan", action="store_true")
    ap.add_argument("--model", action="append", default=[], metavar="STAGE=CKPT", help="other models (as the CLI)")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    if not args.scan_only:
        short, limit = (256, 4) if args.quick else (args.short, args.photos)
        models = RestoreModels.load(("scratches", "global", "colour", "upscale", "faces"),
                                    dict(m.split("=", 1) for m in args.model), "cpu")
        photos = heldout(short, "all", limit)
        crops: list = []
        bench_damage_restore(models, photos, crops)
        bench_colour(models, photos)
        bench_faces(models, heldout(short * 2, "face", limit))
        bench_upscale(models, photos[: 2 if args.quick else 4])
        crops_page(crops, ROOT / "docs" / "restore_crops.png")
    if not (args.quick or args.no_scan):
        bench_scan()
        bench_scan(extra=["--stages", "scratches,global"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
