"""Inversion quality vs time per method, and slider-preview latency with and without the cache.

    python bench/bench_inversion.py                         # random tiny generator, generated targets
    python bench/bench_inversion.py --network MODEL --encoder ENC.safetensors     # held-out portraits
    python bench/bench_inversion.py --network MODEL --targets faces --images 8   # real faces, MTCNN-aligned
    python bench/bench_inversion.py --preview-only          # slider latency, StyleGAN2 256 + 1024 sizes

Targets: held-out procedural portraits; real face photos (the photo cache's faces, or ``--photos``)
aligned FFHQ-style by MTCNN as ``ganeditor invert`` does; or, for a random generator, images it makes.  The
"NVlabs projector settings" row is our ``project()`` with the settings of NVlabs ``projector.py``
(W, 1000 steps, its schedule and noise regularisation) and the same loss as the other rows (LPIPS
only where VGG16 weights exist); the original projector itself is timed against ours by
``bench_projector.py --original``.  Figures are means over the targets; PSNR/SSIM on the 8-bit images.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganeditor.archs import build  # noqa: E402
from ganeditor.core.imageio import read_image  # noqa: E402
from ganeditor.formats import load_checkpoint  # noqa: E402
from ganeditor.pipelines.directions import Direction  # noqa: E402
from ganeditor.pipelines.edit import PreviewRenderer, apply_edits  # noqa: E402
from ganeditor.pipelines.generate import to_uint8  # noqa: E402
from ganeditor.pipelines.invert import ProjectOptions, center_crop_resize, invert, run_inversion  # noqa: E402
from ganeditor.pipelines.invert_pti import PTIOptions  # noqa: E402
from ganeditor.pipelines.invert_loss import make_inversion_loss  # noqa: E402


def random_generator(res: int, w_dim: int, channel_base: int, channel_max: int, layers: int = 8, seed: int = 0):
    """A StyleGAN2 generator with random weights, outputs scaled into [-1, 1] roughly, w_avg set."""
    torch.manual_seed(seed)
    G = build("stylegan2-generator", z_dim=w_dim, c_dim=0, w_dim=w_dim, img_resolution=res, img_channels=3,
              mapping_kwargs=dict(num_layers=layers),
              synthesis_kwargs=dict(channel_base=channel_base, channel_max=channel_max))  # fmt: skip
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(torch.randn(2000, w_dim), None)[:, 0].mean(0))
        for b in G.synthesis.blocks():
            b.torgb.weight.mul_(0.25)
    return G.eval().requires_grad_(False)


def _photo_files(args) -> list[Path]:
    if args.photos:
        return sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    from ganeditor.worlds.photos import photo_paths

    return sorted(photo_paths("all", "face"))


def _aligned_faces(G, args) -> tuple[list[np.ndarray], list[str]]:
    """Real photos, each face aligned FFHQ-style by the detector (as ``ganeditor invert`` does)."""
    from ganeditor.core.errors import GanEditorError
    from ganeditor.pipelines.align import align_face

    out, names = [], []
    for f in _photo_files(args):
        px = read_image(f).pixels
        px = px if px.dtype == np.uint8 else (px >> 8).astype(np.uint8)
        px = np.repeat(px, 3, 2) if px.shape[2] == 1 else px[:, :, :3]
        if args.no_align:
            out.append(center_crop_resize(px, G.img_resolution))
        else:
            try:
                out.append(align_face(px, "auto", G.img_resolution).image)
            except GanEditorError as e:
                print(f"  skipped {f.name}: {e}")
                continue
        names.append(f.name)
        if len(out) == args.images:
            break
    return out, names


def targets(G, args) -> tuple[list[np.ndarray], str]:
    """The images to invert and a description of them."""
    if args.targets == "faces":
        imgs, names = _aligned_faces(G, args)
        how = "centre-cropped" if args.no_align else "aligned by MTCNN"
        return imgs, f"{len(imgs)} real face photos {how} ({', '.join(names)})"
    if args.targets == "portraits":
        from ganeditor.pipelines.train.data_worlds import HELDOUT_PORTRAIT_SEED
        from ganeditor.worlds.portraits import render_portraits

        imgs, _, _ = render_portraits(range(HELDOUT_PORTRAIT_SEED, HELDOUT_PORTRAIT_SEED + args.images), G.img_resolution)
        return list(imgs), f"{args.images} held-out procedural portraits (seeds from 2^30)"
    out = []
    with torch.no_grad():
        for s in range(args.images):
            z = torch.from_numpy(np.random.RandomState(10_000 + s).randn(1, G.z_dim))
            out.append(to_uint8(G(z, None, noise_mode="random"))[0])  # random noise: not reachable exactly
    return out, f"{args.images} images the generator made (random noise)"


def bench_methods(G, ckpt, args) -> None:
    E = load_checkpoint(args.encoder).nets["E"] if args.encoder else None
    loss = make_inversion_loss(G, ckpt)
    rows = [("W, NVlabs projector settings (1000 steps)", "w", 1000, 0)]
    for n in args.steps:
        rows += [(f"W ({n} steps)", "w", n, 0), (f"W+ ({n} steps)", "wplus", n, 0),
                 (f"PTI (W {n} + tune {args.pti_steps})", "pti", n, args.pti_steps)]  # fmt: skip
    if E is not None:
        rows.append(("encoder", "encoder", 0, 0))
    rows.append((f"progressive ({'enc + W+' if E else 'W'} {args.steps[0]} + tune {args.pti_steps})", "progressive",
                 args.steps[0], args.pti_steps))  # fmt: skip
    imgs, what = targets(G, args)
    if not imgs:
        raise SystemExit("no targets")
    print(f"generator: {args.network or 'random'} ({G.img_resolution}px), loss: {loss.name}")
    print(f"targets: {what}")
    print(f"{'method':<42} {'seconds':>8} {'PSNR dB':>8} {'SSIM':>7}   per stage (PSNR@s)")
    for label, method, steps, pti in rows:
        if "NVlabs" in label and args.skip_projector:
            continue
        secs, ps, ss, stages = [], [], [], []
        for t in imgs:
            t0 = time.perf_counter()
            r = run_inversion(invert(G, t, loss, method, E=E, projection=ProjectOptions(steps=max(steps, 1)),
                                    pti=PTIOptions(steps=max(pti, 1))))
            secs.append(time.perf_counter() - t0)
            ps.append(r.psnr)
            ss.append(r.ssim)
            stages.append([(s.method, s.psnr, s.seconds) for s in r.stages])
        per = " ".join(f"{m}:{np.mean([st[i][1] for st in stages]):.2f}@{np.mean([st[i][2] for st in stages]):.1f}"
                       for i, (m, _, _) in enumerate(stages[0]))  # fmt: skip
        print(f"{label:<42} {np.mean(secs):8.2f} {np.mean(ps):8.2f} {np.mean(ss):7.4f}   {per}", flush=True)


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench_preview(repeats: int, sizes: list[int]) -> None:
    print(f"{'generator':<24} {'edit layers':<14} {'full s':>8} {'cached s':>9} {'speed-up':>9} {'blocks run':>11}")
    configs = {256: (16384, 512), 1024: (32768, 512), 64: (8192, 256)}
    for res in sizes:
        base, cmax = configs.get(res, (16384, 512))
        G = random_generator(res, 512, base, cmax)
        ws = G.mapping(torch.from_numpy(np.random.RandomState(0).randn(1, 512)), None)
        n = G.num_ws
        full = PreviewRenderer(G, cache=False)
        for label, (a, b) in {"fine (last 4)": (n - 4, n), "middle": (n // 2, n // 2 + 2), "coarse (0-3)": (0, 4)}.items():
            d = Direction(label, np.random.RandomState(1).randn(512), a, b, "absolute")
            cached = PreviewRenderer(G)
            cached.render(ws)
            alpha = [0.0]

            def slide(r):
                alpha[0] += 0.1  # a new slider value each frame
                return r.render(apply_edits(ws, [(d, alpha[0])]))

            with torch.inference_mode():
                tf = _median_time(lambda: slide(full), repeats)
                tc = _median_time(lambda: slide(cached), repeats)
            print(f"SG2 {res} (random){'':<7} {label:<14} {tf:8.3f} {tc:9.3f} {tf / tc:8.1f}x {cached.last_blocks_run:>5}/{len(cached._ranges)}",
                  flush=True)  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", default=None, help="generator checkpoint (default: random 32px generator)")
    p.add_argument("--targets", choices=["generated", "portraits", "faces"], default=None,
                   help="held-out procedural portraits, real face photos (the photo cache's faces or --photos), "
                        "or images the generator made (default: portraits with --network, else generated)")
    p.add_argument("--photos", default=None, help="folder of face photos for --targets faces")
    p.add_argument("--no-align", action="store_true", help="centre-crop the photos instead of aligning the face")
    p.add_argument("--images", type=int, default=3, help="number of targets")
    p.add_argument("--steps", type=int, nargs="+", default=[100, 300], help="optimisation steps to compare")
    p.add_argument("--pti-steps", type=int, default=100)
    p.add_argument("--encoder", default=None, help="encoder checkpoint (role 'E')")
    p.add_argument("--skip-projector", action="store_true", help="skip the 1000-step row with the projector's settings")
    p.add_argument("--preview-only", action="store_true")
    p.add_argument("--no-preview", action="store_true")
    p.add_argument("--preview-sizes", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.targets is None:
        args.targets = "faces" if args.photos else "portraits" if args.network else "generated"
    if not args.preview_only:
        if args.network:
            ckpt = load_checkpoint(args.network)
            G = ckpt.primary
        else:
            ckpt, G = None, random_generator(32, 64, 2048, 64, layers=4)
        bench_methods(G, ckpt, args)
    if not args.no_preview:
        bench_preview(args.repeats, args.preview_sizes)


if __name__ == "__main__":
    main()
