"""Measure a restoration demo model on held-out photos and write its card (used by make_restoration_models.py).

The measurements are those of ``bench/bench_restore.py`` for the one model: held-out real photos
(``photos:heldout``, never trained on) degraded by the seeded degradation model, against the
classical baselines named in each table.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_restore as B  # noqa: E402

from ganeditor.core.atomic import atomic_write  # noqa: E402
from ganeditor.core.imageio import LoadedImage  # noqa: E402
from ganeditor.formats import load_checkpoint  # noqa: E402
from ganeditor.pipelines.restore_damage import damage_probability, inpaint  # noqa: E402
from ganeditor.pipelines.restore_stages import colourise, restore_global  # noqa: E402
from ganeditor.pipelines.train.degrade import OLD_PHOTO  # noqa: E402

COMMANDS = {
    "restore-scratches": "`ganeditor restore IN OUT --stages scratches` (with restore-inpaint)",
    "restore-inpaint": "`ganeditor restore IN OUT --stages scratches` (fills what restore-scratches finds)",
    "restore-global": "`ganeditor restore IN OUT --stages global`",
    "restore-colorize": "`ganeditor restore IN OUT --stages colour`",
}


def measure(name: str, path: Path, tiny: bool = False) -> dict:
    """Quality of the exported model on held-out photos (see the module docstring)."""
    net = load_checkpoint(path).primary.eval()
    photos = B.heldout(64 if tiny else 384, "all", 2 if tiny else None)
    rows: dict[str, list] = {}
    for i, (_n, clean) in enumerate(photos):
        if name == "restore-colorize":
            if B.chroma_psnr(np.repeat(np.round(B.luma(clean))[..., None], 3, 2).astype(np.uint8), clean) > 40:
                continue
            g = np.round(B.luma(clean)).astype(np.uint8)[..., None]
            rows.setdefault("left gray", []).append(B.chroma_psnr(np.repeat(g, 3, 2), clean))
            rows.setdefault("this model", []).append(B.chroma_psnr(colourise(net, g), clean))
            continue
        cfg = OLD_PHOTO if name != "restore-global" else OLD_PHOTO.without_damage()
        img, target, gt, _gray = B.degrade(clean, i, cfg)
        if name == "restore-scratches":
            rows.setdefault("this model (p >= 0.5)", []).append(B.mask_scores(damage_probability(net, img) >= 128, gt))
            rows.setdefault("median difference (classical)", []).append(B.mask_scores(B.median_detector(img), gt))
        elif name == "restore-inpaint" and gt.any():
            for k, v in (("this model", inpaint(net, img, gt)[0]), ("OpenCV Telea", B.telea(img, gt))):
                err = ((B.luma(v) - B.luma(target))[gt] ** 2).mean()
                rows.setdefault(k, []).append(10 * np.log10(255.0**2 / max(err, 1e-10)))
        elif name == "restore-global":
            for k, v in (("degraded input", img), ("NL-means + unsharp mask", B.nlm_unsharp(img)),
                         ("this model", restore_global(net, LoadedImage(img)).pixels)):
                rows.setdefault(k, []).append(B.luma_scores(v, target))
    return {"photos": len(photos), "rows": {k: np.mean(v, axis=0).tolist() for k, v in rows.items()}}


QUALITY_NOTES = {
    "restore-scratches": "Pixel precision / recall / IoU of the damage mask against the drawn dust and scratches",
    "restore-inpaint": "Luma PSNR (dB) over the damaged pixels when the true mask is filled",
    "restore-global": "Luma PSNR (dB) / SSIM against the clean photo (its luma for b/w prints); dust and scratches off",
    "restore-colorize": "Chroma (BT.601 Cb, Cr) PSNR (dB) of the colourised luma of colour photos",
}


def _quality_lines(name: str, q: dict) -> list[str]:
    heads = {"restore-scratches": ["precision", "recall", "IoU"], "restore-inpaint": ["PSNR (dB)"],
             "restore-global": ["PSNR (dB)", "SSIM"], "restore-colorize": ["chroma PSNR (dB)"]}[name]
    out = ["| | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for k, v in q["rows"].items():
        vals = v if isinstance(v, list) else [v]
        out.append(f"| {k} | " + " | ".join(f"{x:.3f}" if x < 2 else f"{x:.2f}" for x in vals) + " |")
    return out


def write_card(name: str, recipe: dict, stats: dict, quality: dict, path: Path, digest: str, card_path: Path,
               licence: str) -> Path:
    """Write the markdown card of the exported model ``path``."""
    from demo_card import _fmt_time  # noqa: PLC0415  (one formatting of durations)

    ck = load_checkpoint(path)
    net = ck.primary
    n = sum(p.numel() for p in net.parameters())
    cfg = stats["config"]
    lines = [
        f"# {name}: {recipe['title']}", "",
        f"`models/{path.name}` ({path.stat().st_size / 1e6:.1f} MB, fp16), SHA-256 `{digest}`.", "",
        f"- **Network**: `{net.arch_name}` {json.dumps(net.init_kwargs, sort_keys=True)}; {n:,} parameters; "
        f"receptive radius {net.receptive_radius} px (exact tiles).",
        f"- **Used by**: {COMMANDS[name]}, and the window's Restore panel.",
        f"- **Data**: {', '.join(f'`{d}`' for d in cfg['data'])}, degraded on the fly by "
        "`ganeditor.pipelines.train.degrade.old_photo` (seeded per sample).",
        f"- **Recipe**: `{cfg['recipe']}` ({'ganeditor/pipelines/train/restoration.py'}), batch {cfg['batch']}, "
        f"{stats['steps']:,} steps, precision {cfg['precision']}, options `{json.dumps(cfg['options'], sort_keys=True)}`.",
        *([f"- **Stopped** at step {stats['steps']:,} of a run configured for {cfg['steps']:,} (the learning rate is "
            "constant, so this equals a run of that many steps, as the recipe table now says)."]
          if stats["steps"] < cfg["steps"] else []),
        f"- **Trained**: {_fmt_time(stats['wall_s'] or 0)} on {platform.processor() or platform.machine()} "
        f"({torch.get_num_threads()} thread(s) for the export; training used 1 thread, niced, on a shared machine).",
        "- **Reproduce**: `python models/make_restoration_models.py " + name + "` (`--resume` continues a run).",
        f"- **Licence**: {licence}", "",
        f"## Measured ({quality['photos']} held-out photos, `bench/bench_restore.py` degradation)", "",
        QUALITY_NOTES[name] + ".", "", *_quality_lines(name, quality), "",
    ]
    with atomic_write(card_path, "w") as f:
        f.write("\n".join(lines))
    return card_path
