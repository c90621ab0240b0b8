"""Paste-back seams and spill, before/after: the paste-back of an earlier commit vs this tree's, on the
strong edits where seams showed (issue 13) and a synthetic plain-background portrait.

    python bench/bench_paste_back.py [--before 2e1b3c7] [--steps 100] [--out bench/out/paste_back]
                                     [--figures docs/figures/paste-back]

Each case: a real photo (scikit-image astronaut, matplotlib's Grace Hopper, the face_recognition
test portraits of Obama and Biden; gathered by ``bench/gather_photos.py``) or a procedural portrait
tilted 18 degrees on a plain background; the face is detected (MTCNN) and aligned at the demo
generator's 64 px, inverted (encoder, then ``--steps`` W+ steps from it), edited with one shipped
direction at +3, and pasted back by both implementations with their defaults (as the window and
``ganeditor edit --paste-back`` call them: mask 'auto', blend 'auto', the unedited reconstruction
given).  The "before" column runs the ``paste_back`` module of commit ``--before`` (read with
``git show``), "after" the one in this tree.  Figures, in 8-bit levels (max over RGB):

* rect: the largest excess gradient on the crop rectangle's border (a 3 px band around the aligned
  quad's edges): |grad result| - |grad photo|, central differences; 0 = no rectangle edge at all.
* seam: the steepest step the paste's own edge puts into the photo, in levels per px: in the mask's
  transition (0.05 <= m <= 0.95) the result is photo + m x change, so the edge adds |change| x |grad m|
  (change = (result - photo) / m); the maximum over smooth parts of the photo (its own gradient under
  4 levels per px within 4 px: walls, sky, skin), where such a step shows — a step that coincides
  with an edge of the photo itself (the edit stopping at the hair's outline) is not a seam.
* outside: the change outside the after-mask (what must stay the photo): max, and the share of
  those pixels that changed; bg = the same outside the face box grown 60 % sideways and downwards
  and 100 % upwards (curtains, flags).

Crops (photo | before | after | |after - photo| x4) go to ``--out`` and, downscaled to FIGURE_WIDTH px
wide PNGs, ``--figures`` (bench/RESULTS.md shows those).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganeditor.core.imageio import read_image  # noqa: E402
from ganeditor.formats import load_checkpoint  # noqa: E402
from ganeditor.pipelines import paste_back as after_module  # noqa: E402
from ganeditor.pipelines.align import align_face, sample_affine  # noqa: E402
from ganeditor.pipelines.direction_io import load_library  # noqa: E402
from ganeditor.pipelines.edit import apply_edits  # noqa: E402
from ganeditor.pipelines.face_detect import detect_faces  # noqa: E402
from ganeditor.pipelines.generate import to_uint8  # noqa: E402
from ganeditor.pipelines.invert import ProjectOptions, invert, project, run_inversion  # noqa: E402
from ganeditor.pipelines.invert_loss import make_inversion_loss  # noqa: E402

FIGURE_WIDTH = 1000  # px, the crops under --figures
CASES = [  # (name, photo under the photo cache's files/ or 'synthetic', direction, alpha)
    ("astronaut-age", "scikit-image/astronaut.png", "age", 3.0),
    ("astronaut-hair", "scikit-image/astronaut.png", "hair_colour", 3.0),
    ("hopper-glasses", "matplotlib/grace_hopper.jpg", "glasses", 3.0),
    ("obama-hair", "face_recognition/obama.jpg", "hair_colour", 3.0),
    ("biden-age", "face_recognition/biden.jpg", "age", 3.0),
    ("synthetic-plain-hair", "synthetic", "hair_colour", 3.0),
]


def old_module(rev: str) -> types.ModuleType:
    """The paste_back module as it was at ``rev`` (our own history), imported under another name."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:ganeditor/pipelines/paste_back.py"],
                         check=True, capture_output=True, text=True).stdout
    mod = types.ModuleType(f"paste_back_{rev}")
    exec(compile(src, f"{rev}:paste_back.py", "exec"), mod.__dict__)  # noqa: S102 - our own code at an older commit
    return mod


def synthetic_photo() -> tuple[np.ndarray, np.ndarray]:
    """A procedural portrait tilted 18 degrees on a plain (smoothly shaded) background, and its landmarks."""
    from ganeditor.worlds.portraits import alignment_affine, attributes_for_seed, render_from_attributes

    a = attributes_for_seed(11)
    a.update(head_yaw=0.0, glasses=0.0, bg_brightness=0.8)
    img, lm = render_from_attributes(a, 512, 11, affine=alignment_affine(18.0, 0.62, 0.02, 0.04), return_landmarks=True)
    return img, lm.astype(np.float64) - 0.5


def photo_space_mask(module, al, ed: np.ndarray, rec: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """The module's default paste mask at every photo pixel: [H, W] in [0, 1] (the old module's
    crop-frame mask sampled bilinearly; the new one's exactly as it pastes)."""
    e = torch.from_numpy(ed).permute(2, 0, 1)[None].float() / 255
    r = torch.from_numpy(rec).permute(2, 0, 1)[None].float() / 255
    m = module.build_mask(al, e, "auto", r)
    if hasattr(module, "mask_in_photo"):
        return module.mask_in_photo(al, photo, m)[0]
    t = al.transform @ module._crop_scale(ed.shape[0], al)  # crop px -> photo px
    return sample_affine(m[None, None], np.linalg.inv(t), photo.shape[:2], supersample=1,
                         padding_mode="zeros")[0, 0].clamp(0, 1).numpy()  # fmt: skip


def grad_mag(img: np.ndarray) -> np.ndarray:
    """|central-difference gradient| per pixel, max over channels, [H, W]."""
    g = img.astype(np.float64)
    gy, gx = np.gradient(g, axis=(0, 1))
    return np.hypot(gx, gy).max(axis=2)


def quad_border_band(al, shape: tuple[int, ...], width: float = 3.0) -> np.ndarray:
    """[H, W] bool: photo pixels within ``width`` px of the aligned quad's edges."""
    h, w = shape[:2]
    yy, xx = np.mgrid[:h, :w]
    p = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float64)
    q = al.quad
    dist = np.full(len(p), np.inf)
    for a, b in zip(q, np.roll(q, -1, axis=0)):
        ab = b - a
        t = np.clip(((p - a) @ ab) / (ab @ ab), 0, 1)
        dist = np.minimum(dist, np.hypot(*(p - (a + t[:, None] * ab)).T))
    return (dist <= width).reshape(h, w)


def smooth_areas(photo: np.ndarray, limit: float = 4.0, reach: int = 4) -> np.ndarray:
    """[H, W] bool: where the photo's own gradient is under ``limit`` levels per px everywhere within
    ``reach`` px (so the few pixels beside a real edge, where a step hides, do not count)."""
    g = torch.from_numpy(grad_mag(photo).astype(np.float32))[None, None]
    return (F.max_pool2d(g, 2 * reach + 1, stride=1, padding=reach)[0, 0] < limit).numpy()


def background(face_box: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """[H, W] bool: outside the face box grown 60 % sideways and down, 100 % up."""
    x1, y1, x2, y2 = face_box
    bw, bh = x2 - x1, y2 - y1
    h, w = shape[:2]
    yy, xx = np.mgrid[:h, :w]
    inside = (xx > x1 - 0.6 * bw) & (xx < x2 + 0.6 * bw) & (yy > y1 - 1.0 * bh) & (yy < y2 + 0.6 * bh)
    return ~inside


def measure(photo: np.ndarray, out: np.ndarray, own_mask: np.ndarray, after_mask: np.ndarray, rect: np.ndarray,
            bg: np.ndarray) -> dict[str, float]:
    """The figures of one result (see the module docstring)."""
    diff = np.abs(out.astype(np.int32) - photo.astype(np.int32)).max(axis=2)
    excess = np.maximum(grad_mag(out) - grad_mag(photo), 0)
    outside = after_mask <= 0
    band = (own_mask >= 0.05) & (own_mask <= 0.95) & smooth_areas(photo)
    gy, gx = np.gradient(own_mask.astype(np.float64))
    seam = diff / np.maximum(own_mask, 0.05) * np.hypot(gx, gy)
    return {"rect": float(excess[rect].max()), "edge": float(seam[band].max()) if band.any() else 0.0,
            "out_max": float(diff[outside].max()), "out_share": float((diff[outside] > 0).mean()),
            "bg_max": float(diff[bg].max()), "bg_share": float((diff[bg] > 0).mean())}  # fmt: skip


def crop_figure(photo: np.ndarray, before: np.ndarray, after: np.ndarray, al, margin: int = 24) -> np.ndarray:
    """photo | before | after | |after - photo| x4 around the aligned quad."""
    h, w = photo.shape[:2]
    x0, y0 = np.maximum(np.floor(al.quad.min(0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(al.quad.max(0)).astype(int) + margin, [w, h])
    d = np.clip(np.abs(after.astype(np.int32) - photo.astype(np.int32)) * 4, 0, 255).astype(np.uint8)
    tiles = [a[y0:y1, x0:x1] for a in (photo, before, after, d)]
    gap = np.full((y1 - y0, 6, 3), 255, np.uint8)
    return np.concatenate([t for pair in zip(tiles, [gap] * 4) for t in pair][:-1], axis=1)


def run_case(name: str, src: str, direction: str, alpha: float, models: dict, old, steps: int) -> tuple[dict, np.ndarray]:
    """Invert, edit and paste one case with both implementations; (figures, crop figure)."""
    from ganeditor.worlds.photos import photos_dir

    G, E, lib = models["G"], models["E"], models["lib"]
    if src == "synthetic":
        photo, lm = synthetic_photo()
        al = align_face(photo, lm, G.img_resolution)
        box = np.r_[lm.min(0) - 40, lm.max(0) + 40]
    else:
        photo = read_image(photos_dir() / "files" / src).pixels[:, :, :3]
        face = detect_faces(photo)[0]
        al, box = align_face(photo, face.landmarks, G.img_resolution), face.box
    loss = make_inversion_loss(G, None)
    res = run_inversion(invert(G, al.image, loss, "encoder", E=E))
    if steps:
        ups = project(G, al.image, loss, "wplus", options=ProjectOptions(steps=steps, optimize_noise=False),
                      init_ws=res.ws)
        res = [u.stage_result for u in ups if u.stage_result is not None][-1]
    with torch.no_grad():
        rec = to_uint8(G.synthesis(res.ws, noise_mode="const"))[0]
        ed = to_uint8(G.synthesis(apply_edits(res.ws, [(lib[direction], alpha)]), noise_mode="const"))[0]
    before = old.paste_back(photo, ed, al, reconstruction=rec)
    after = after_module.paste_back(photo, ed, al, reconstruction=rec)
    m_old, m_new = photo_space_mask(old, al, ed, rec, photo), photo_space_mask(after_module, al, ed, rec, photo)
    rect, bg = quad_border_band(al, photo.shape), background(box, photo.shape)
    row = {"case": name, "photo": f"{photo.shape[1]}x{photo.shape[0]}", "edit": f"{direction} {alpha:+g}",
           "psnr": res.psnr, "before": measure(photo, before, m_old, m_new, rect, bg),
           "after": measure(photo, after, m_new, m_new, rect, bg),
           "photo_rect": float(grad_mag(photo)[rect].max())}  # fmt: skip
    return row, crop_figure(photo, before, after, al)


def table(rows: list[dict]) -> str:
    """The markdown table of all cases."""
    lines = ["| case | photo | edit | inversion PSNR | rect before → after | seam before → after | "
             "outside max (share) before → after | background max (share) before → after |",
             "|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(f"| {r['case']} | {r['photo']} | {r['edit']} | {r['psnr']:.1f} dB | {b['rect']:.1f} → {a['rect']:.1f} "
                     f"| {b['edge']:.1f} → {a['edge']:.1f} | {b['out_max']:.0f} ({b['out_share']:.0%}) → "
                     f"{a['out_max']:.0f} ({a['out_share']:.0%}) | {b['bg_max']:.0f} ({b['bg_share']:.0%}) → "
                     f"{a['bg_max']:.0f} ({a['bg_share']:.0%}) |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default="2e1b3c7", help="commit whose paste_back is the 'before' column")
    p.add_argument("--steps", type=int, default=100, help="W+ steps after the encoder (0: encoder only)")
    p.add_argument("--network", default=str(ROOT / "models" / "portrait-stylegan2.safetensors"))
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "paste_back")
    p.add_argument("--figures", type=Path, default=None, help="also write downscaled crops here (e.g. docs/figures/paste-back)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="*", default=None, help="case names to run")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    G = load_checkpoint(args.network).primary.eval()
    stem = Path(args.network).with_suffix("")
    models = {"G": G, "E": load_checkpoint(f"{stem}-encoder.safetensors").nets["E"].eval(),
              "lib": load_library(f"{stem}-directions.safetensors")}  # fmt: skip
    old = old_module(args.before)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, src, d, a in CASES:
        if args.only and name not in args.only:
            continue
        row, fig = run_case(name, src, d, a, models, old, args.steps)
        rows.append(row)
        Image.fromarray(fig).save(args.out / f"{name}.png")
        if args.figures:
            args.figures.mkdir(parents=True, exist_ok=True)
            im = Image.fromarray(fig)
            k = min(1.0, FIGURE_WIDTH / im.width)
            im.resize((round(im.width * k), round(im.height * k)), Image.Resampling.LANCZOS).save(
                args.figures / f"{name}.png", optimize=True)
        print(f"{name}: before {row['before']}  after {row['after']}", flush=True)
    print()
    print(f"before = paste_back of commit {args.before}; after = this tree; inversion: encoder + {args.steps} W+ steps")
    print(table(rows))
    print(f"\n({time.perf_counter() - t0:.0f} s; crops in {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
