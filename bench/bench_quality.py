"""Quality of the demo models on held-out data, beside simple methods (bicubic, identity,
colour transfer) and earlier versions of the models.

    python bench/bench_quality.py                    # every table whose models are installed
    python bench/bench_quality.py --quick            # few images (minutes)
    python bench/bench_quality.py --before DIR --figures bench/figures   # also the models in DIR, and grids

Tables:
  portrait   the portrait StyleGAN2 on 1024 seeds (256 with --quick): SWD x 1e3 of 7x7 Laplacian patches vs
             held-out procedural portraits (floor: held-out vs held-out), and the attribute regressor's
             coverage (min over every attribute's bins of generated share / data share) with how often glasses
             and beards appear.
  SR x4      held-out real photos (``photos:heldout``, resized to a short side of 768 px, central 384 px crop,
             downscaled x4 by anti-aliased bicubic): PSNR/SSIM in RGB on 8-bit images, 4 px border cropped,
             for bicubic upscaling, the demo SRGAN (PSNR stage ``srgan-x4-psnr`` and GAN stage ``srgan-x4``)
             and Real-ESRGAN x4plus; the same inputs saved as JPEG quality 30 ("small JPEG photos").
  day/night  held-out paired procedural scenes (256 px; the pairs are never seen in training): PSNR/SSIM of
             each direction against the paired truth, for identity (the input itself), a per-channel colour
             transfer to the target domain's statistics, and the demo CycleGAN; the day->night outputs'
             pixel-grid energy (checkerboard) and spurious lights, also on held-out real photos.
Models are looked up by name in the model library; a missing one is reported as such.  ``--before DIR``
adds the same figures for the models of that name in DIR (e.g. the previous demo models, extracted with
``git show REV:models/NAME.safetensors``); ``--figures DIR`` writes image grids to look at.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))

from ganeditor.core.errors import GanEditorError  # noqa: E402
from ganeditor.core.model_store import resolve_model  # noqa: E402
from ganeditor.formats import load_checkpoint  # noqa: E402

SR_MODELS = ("srgan-x4-psnr", "srgan-x4", "realesrgan-x4plus")


def _load(name: str, folder: Path | None = None):
    """The named model (from ``folder`` when given), or None with a note."""
    try:
        return load_checkpoint(folder / f"{name}.safetensors" if folder else resolve_model(name))
    except GanEditorError as e:
        print(f"  {name}{' in ' + str(folder) if folder else ''}: not available ({e})")
        return None


def _versions(name: str, before: Path | None) -> list[tuple[str, object]]:
    """(label, checkpoint) for the installed model and, with --before, the earlier one."""
    out = [(name, _load(name))]
    if before is not None:
        out.insert(0, (f"{name} (before)", _load(name, before)))
    return [(label, ck) for label, ck in out if ck is not None]


def _sr_net(ck):
    return next(iter(ck.nets.values())).eval()


def portrait_table(quick: bool, before: Path | None, figures: Path | None) -> list[str]:
    import demo_eval

    count = 256 if quick else 1024
    rows = []
    for label, ck in _versions("portrait-stylegan2", before):
        G = ck.nets["G_ema"].float().eval()
        rows.append((label, demo_eval.stylegan2_quality(G, count=count)))
        if figures is not None:
            _save(figures / f"{label.replace(' (before)', '-before')}-seeds0-63.png", demo_eval.seed_grid(G))
    if not rows:
        return ["portrait: portrait-stylegan2 not installed"]
    q0 = rows[-1][1]
    out = [f"portrait StyleGAN2, {count} seeds vs {count} held-out portraits; SWD x1e3 (floor "
           f"{q0['swd_floor_x1e3_mean']:.2f}); coverage = min over bins of generated/data share (goal >= 0.5)",
           f"{'model':<32} {'SWD':>6} {'cov min':>8} {'weakest attribute':>24} {'glasses gen/data':>17} "
           f"{'beard gen/data':>15}"]
    for label, q in rows:
        cov = q.get("coverage", {})
        weak = min(cov, key=cov.get) if cov else "-"
        sh = q.get("shares", {})
        fmt = lambda k: f"{sh[k]['generated'] * 100:.0f}%/{sh[k]['data'] * 100:.0f}%" if k in sh else "-"  # noqa: E731
        out.append(f"{label:<32} {q['swd_x1e3_mean']:6.2f} {q.get('coverage_min', float('nan')):8.2f} "
                   f"{weak + ' ' + format(cov.get(weak, float('nan')), '.2f'):>24} {fmt('glasses'):>17} {fmt('beard'):>15}")
    return out


def sr_table(quick: bool, before: Path | None) -> list[str]:
    import demo_eval

    rows, count = {}, None
    for name in SR_MODELS:
        for label, ck in _versions(name, before if name != "realesrgan-x4plus" else None):
            for jpeg in (None, 30):
                q = demo_eval.srgan_quality(_sr_net(ck), short=768, crop=96 if quick else 384, jpeg=jpeg)
                key = "" if jpeg is None else " jpeg30"
                rows.setdefault("bicubic" + key, q["bicubic"])
                rows[label + key] = q["model"]
                count = q["images"]["count"]
    if not rows:
        return ["SR x4: no SR model installed"]
    out = [f"SR x4 on {count} held-out photos (PSNR dB / SSIM, RGB, 8-bit, 4 px border cropped); 'jpeg30': the "
           "low-resolution input saved as JPEG quality 30", f"{'method':<34} {'PSNR':>7} {'SSIM':>6} {'vs bicubic':>11}"]
    for k, r in rows.items():
        base = rows["bicubic jpeg30" if k.endswith("jpeg30") else "bicubic"]["psnr"]
        out.append(f"{k:<34} {r['psnr']:7.2f} {r['ssim']:6.3f} {r['psnr'] - base:+10.2f} dB")
    return out


def daynight_table(quick: bool, before: Path | None, figures: Path | None) -> list[str]:
    import demo_eval

    count = 8 if quick else 50
    out = []
    for label, ck in _versions("daynight-cyclegan", before):
        G_A, G_B = ck.nets["G_A"].float().eval(), ck.nets["G_B"].float().eval()
        q = demo_eval.cyclegan_quality(G_A, G_B, count=count, size=256, stats_count=32 if quick else 200)
        out += [f"{label}: day/night on {count} held-out paired scenes, 256 px (PSNR dB / SSIM vs the paired truth)",
                f"{'direction':<11} {'method':<16} {'PSNR':>7} {'SSIM':>6} {'vs colour transfer':>19}"]
        for d in ("day->night", "night->day"):
            base = q[f"{d} colour transfer"]["psnr"]
            for m in ("identity", "colour transfer", "model"):
                r = q[f"{d} {m}"]
                name = "CycleGAN" if m == "model" else m
                out.append(f"{d:<11} {name:<16} {r['psnr']:7.2f} {r['ssim']:6.3f} {r['psnr'] - base:+18.2f} dB")
        g, lt = q["day->night grid energy"], q["day->night lights"]
        out.append(f"day->night pixel-grid energy (grey levels): output {g['model']:.2f}, input {g['input']:.2f}, "
                   f"truth {g['truth']:.2f}; spurious lights {lt['spurious_pct']:.2f} % of pixels "
                   f"(warm: output {lt['model_warm_pct']:.2f} %, truth {lt['truth_warm_pct']:.2f} %)")
        try:
            ph = demo_eval.photo_night_lights(G_A, short=256)
            out.append(f"day->night on {ph['photos']} held-out real photos: grid energy output {ph['grid_model']:.2f} "
                       f"vs input {ph['grid_input']:.2f} ({ph['grid_model'] / max(ph['grid_input'], 1e-9):.1f}x); "
                       f"warm lights {ph['warm_pct']:.2f} % of pixels")
        except GanEditorError as e:
            out.append(f"real photos skipped: {e}")
        if figures is not None:
            _save(figures / f"{label.replace(' (before)', '-before')}-day2night.png", demo_eval.daynight_grid(G_A))
        out.append("")
    return out or ["day/night: daynight-cyclegan not installed"]


def _save(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, optimize=True)
    print(f"  wrote {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few and small images")
    p.add_argument("--tables", nargs="*", default=["portrait", "sr", "daynight"], choices=["portrait", "sr", "daynight"])
    p.add_argument("--before", type=Path, default=None, help="folder with earlier versions of the demo models")
    p.add_argument("--figures", type=Path, default=None, help="write image grids (seed grid, day->night) here")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for t in args.tables:
        if t == "portrait":
            lines = portrait_table(args.quick, args.before, args.figures)
        elif t == "sr":
            lines = sr_table(args.quick, args.before)
        else:
            lines = daynight_table(args.quick, args.before, args.figures)
        print("\n".join(lines) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
