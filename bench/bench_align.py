"""Face detection, alignment and paste-back: timings on real photos, and a before/after panel.

    python bench/bench_align.py [PHOTO ...] [--sizes 256 1024] [--repeat 3] [--threads 2] [--panel OUT.png]

Photos default to the real faces gathered by ``bench/gather_photos.py`` (kind 'face').  Uses the
shipped MTCNN weights (``models/mtcnn.safetensors``).  Prints median
seconds per photo for detection, alignment from landmarks (per output size) and paste-back of a
visibly edited crop.  ``--panel`` writes: the photo with boxes, landmarks and the crop quad; the
aligned crop above the edited crop; the edited crop pasted back at full resolution.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ganeditor.core.imageio import read_image, write_image
from ganeditor.pipelines.align import AlignedFace, align_face
from ganeditor.pipelines.face_detect import Face, get_detector, unavailable_message
from ganeditor.pipelines.paste_back import paste_back


def timeit(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` calls after one warm-up call."""
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def demo_edit(al: AlignedFace) -> np.ndarray:
    """A visible edit of the crop: a global colour cast (as a GAN's colour drift), dark lenses, red lips."""
    s = al.output_size
    e = al.image[:, :, :3].astype(np.float32) * np.array([1.12, 0.95, 0.85]) + np.array([10.0, 0.0, -5.0])
    lm = al.to_aligned(al.landmarks)
    yy, xx = np.mgrid[:s, :s]
    for ex, ey in lm[:2]:
        e[((xx - ex) / (0.086 * s)) ** 2 + ((yy - ey) / (0.055 * s)) ** 2 < 1] *= 0.25
    mx, my = (lm[-2] + lm[-1]) / 2
    e[((xx - mx) / (0.12 * s)) ** 2 + ((yy - my) / (0.04 * s)) ** 2 < 1] *= np.array([1.3, 0.6, 0.6])
    return np.clip(np.rint(e), 0, 255).astype(np.uint8)


def panel(px: np.ndarray, faces: list[Face], al: AlignedFace, edit: np.ndarray, pasted: np.ndarray) -> np.ndarray:
    """Photo with detections | aligned over edited | pasted result, all at the photo's height."""
    h = px.shape[0]
    vis = Image.fromarray(px[:, :, :3])
    d = ImageDraw.Draw(vis)
    r = max(2, h // 200)
    for f in faces:
        d.rectangle(f.box.tolist(), outline=(0, 255, 0), width=r)
        for x, y in f.landmarks:
            d.ellipse([x - r, y - r, x + r, y + r], fill=(255, 0, 0))
    d.polygon([tuple(p) for p in al.quad], outline=(255, 255, 0), width=r)
    half = h // 2
    crops = [Image.fromarray(a[:, :, :3]).resize((half, half), Image.Resampling.LANCZOS) for a in (al.image, edit)]
    out = Image.new("RGB", (2 * px.shape[1] + half, h), (255, 255, 255))
    out.paste(vis, (0, 0))
    out.paste(crops[0], (px.shape[1], 0))
    out.paste(crops[1], (px.shape[1], half))
    out.paste(Image.fromarray(pasted[:, :, :3]), (px.shape[1] + half, 0))
    return np.asarray(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("photos", nargs="*", help="photos with faces (default: the gathered real faces)")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], help="aligned output sizes")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--panel", default=None, help="write a before/after panel of the first photo here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    det = get_detector("cpu")
    if det is None:
        print(unavailable_message(), file=sys.stderr)
        return 1
    photos = [Path(x) for x in args.photos]
    if not photos:
        from ganeditor.worlds.photos import photo_paths

        photos = [*photo_paths("train", "face"), *photo_paths("heldout", "face")]
    print(f"{'photo':28s} {'size':>10s} {'faces':>5s} {'detect s':>9s} " + " ".join(f"{'align' + str(s):>9s} {'paste' + str(s):>9s}" for s in args.sizes))
    for i, path in enumerate(photos):
        px = read_image(path).pixels
        faces = det.detect(px)
        if not faces:
            print(f"{path.name:28s} no face found")
            continue
        t_det = timeit(lambda: det.detect(px), args.repeat)
        cols = []
        for s in args.sizes:
            al = align_face(px, faces[0].landmarks, s)
            edit = demo_edit(al)
            cols.append(timeit(lambda: align_face(px, faces[0].landmarks, s), args.repeat))
            cols.append(timeit(lambda: paste_back(px, edit, al), args.repeat))
        print(f"{path.name:28s} {px.shape[1]:>4d}x{px.shape[0]:<5d} {len(faces):5d} {t_det:9.3f} " + " ".join(f"{c:9.3f}" for c in cols))
        if args.panel and i == 0:
            al = align_face(px, faces[0].landmarks, args.sizes[0])
            edit = demo_edit(al)
            write_image(args.panel, panel(px, faces, al, edit, paste_back(px, edit, al)))
            print(f"wrote {args.panel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
