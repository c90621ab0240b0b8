"""Model cards (markdown) for the demo models, written by ``make_demo_models.py`` from the run folder."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from ganeditor.core.atomic import atomic_write
from ganeditor.formats import load_checkpoint

QUALITY_NOTES = {
    "portrait-stylegan2": (
        "Sliced Wasserstein distance (SWD x 1e3, lower is better; ProGAN's metric, no pretrained network) of "
        "7x7 Laplacian-pyramid patches, {images} generated portraits (seeds 0..{last}, psi 1, noise const) vs "
        "{images} held-out procedural portraits (seeds from 2^30 on). The floor is two disjoint held-out sets "
        "measured the same way. Levels are finest first."),
    "portrait-stylegan2-encoder": (
        "PSNR (dB) / SSIM of the generator's rendering of the encoder's W+ prediction against the input, 8-bit "
        "RGB: held-out procedural portraits (seeds from 2^30 on, never trained on: the encoder trains on the "
        "generator's own samples only) and generated portraits (seeds from 10^6). Floor: the mean-latent image "
        "(what inversion starts from without an encoder). Seconds per image: encoder + generator, batch 16."),
    "daynight-cyclegan": (
        "PSNR (dB) / SSIM on 50 held-out *paired* scenes (256x256, `PairedSceneDataset`, seeds no training set "
        "uses), 8-bit RGB, against the other rendering of the same scene. Baselines: identity (the input "
        "itself) and colour transfer (per-channel mean/std of the input matched to 200 training scenes of the "
        "target domain)."),
    "srgan-x4": (
        "PSNR (dB) / SSIM on the held-out natural photos of the photo cache (`photos:heldout`), each resized to "
        "a short side of 768 px, central 384x384 crop, downscaled x4 by anti-aliased bicubic (8-bit), upscaled "
        "back; RGB, 8-bit, 4-px border cropped. Bicubic = PyTorch bicubic upsampling of the same input. The second "
        "rows take the same small images saved as JPEG quality 30 (Pillow, 4:2:0): small JPEG photos."),
}


def _fmt_time(s: float) -> str:
    h, rem = divmod(int(s), 3600)
    return f"{h} h {rem // 60:02d} min" if h else f"{rem // 60} min {rem % 60:02d} s"


def _coverage_table(q: dict) -> list[str]:
    """Per-attribute coverage and the glasses/beard shares of a portrait generator's quality record."""
    if "coverage" not in q:
        return []
    cov = q["coverage"]
    lines = ["", "Attribute coverage by the attribute regressor (`portrait-attributes`), same images: for each "
             "attribute the smallest ratio, over its bins (on/off for glasses, data quintiles otherwise), of the share "
             "of generated faces in the bin to the share of held-out faces (1 = as often as in the data; the goal is "
             f">= 0.5 for every attribute). Minimum: **{q['coverage_min']:.2f}**.", "",
             "| " + " | ".join(cov) + " |", "|" + "---:|" * len(cov),
             "| " + " | ".join(f"{v:.2f}" for v in cov.values()) + " |", ""]
    for k, v in q["shares"].items():
        lines.append(f"- {k}: {v['generated'] * 100:.1f} % of generated faces, {v['data'] * 100:.1f} % of held-out faces")
    return lines


def _quality_table(name: str, q: dict) -> list[str]:
    if name == "portrait-stylegan2":
        levels = len(q["swd_x1e3"])
        head = " | ".join(f"level {i}" for i in range(levels))
        return [f"| | {head} | mean |", "|---|" + "---|" * (levels + 1),
                f"| generated vs held-out | {' | '.join(map(str, q['swd_x1e3']))} | **{q['swd_x1e3_mean']}** |",
                f"| floor (held-out vs held-out) | {' | '.join(map(str, q['swd_floor_x1e3']))} | {q['swd_floor_x1e3_mean']} |",
                *_coverage_table(q)]
    if name == "portrait-stylegan2-encoder":
        lines = ["| images | encoder PSNR / SSIM | mean latent PSNR / SSIM | s per image |", "|---|---|---|---|"]
        for k, r in q.items():
            lines.append(f"| {r['count']} {k} | **{r['psnr']:.2f} dB / {r['ssim']:.3f}** | "
                         f"{r['mean_latent_psnr']:.2f} / {r['mean_latent_ssim']:.3f} | {r['seconds_per_image']:.3f} |")
        return lines
    if name == "daynight-cyclegan":
        lines = ["| direction | model | identity | colour transfer | model - colour transfer |", "|---|---|---|---|---|"]
        for d in ("day->night", "night->day"):
            m, i, c = q[f"{d} model"], q[f"{d} identity"], q[f"{d} colour transfer"]
            lines.append(f"| {d} | **{m['psnr']:.2f} dB / {m['ssim']:.3f}** | {i['psnr']:.2f} / {i['ssim']:.3f} | "
                         f"{c['psnr']:.2f} / {c['ssim']:.3f} | {m['psnr'] - c['psnr']:+.2f} dB |")
        return lines + _daynight_artefacts(q)
    lines = ["| input | | PSNR (dB) | SSIM |", "|---|---|---|---|"]
    for label, r in (("clean (bicubic-downscaled)", q), ("the same saved as JPEG quality 30", q.get("jpeg30"))):
        if r is None:
            continue
        m, b = r["model"], r["bicubic"]
        lines += [f"| {label} | this model | **{m['psnr']:.2f}** | **{m['ssim']:.4f}** |",
                  f"| | bicubic | {b['psnr']:.2f} | {b['ssim']:.4f} |",
                  f"| | gain | {m['psnr'] - b['psnr']:+.2f} dB | {m['ssim'] - b['ssim']:+.4f} |"]
    return lines + [f"\n{q['images']['count']} held-out photos."]


def _daynight_artefacts(q: dict) -> list[str]:
    """Pixel-grid energy (checkerboard) and lights where there are none, when measured."""
    if "day->night grid energy" not in q:
        return []
    g, lt = q["day->night grid energy"], q["day->night lights"]
    lines = ["", "Artefacts of day->night. Pixel-grid energy: RMS in grey levels of the period-2 and period-4 "
             "components of the image (the transposed-convolution checkerboard; `demo_eval.grid_energy`). "
             "Spurious lights: % of pixels bright in the output (luma > 0.4) farther than 3 px from any bright pixel "
             "of the true night.", "",
             "| | model output | input | true night |", "|---|---:|---:|---:|",
             f"| held-out scenes: grid energy | {g['model']:.2f} | {g['input']:.2f} | {g['truth']:.2f} |",
             f"| held-out scenes: warm lights (% of pixels) | {lt['model_warm_pct']:.2f} | | {lt['truth_warm_pct']:.2f} |",
             f"| held-out scenes: spurious lights (% of pixels) | {lt['spurious_pct']:.2f} | | 0 |"]
    if "photos" in q:
        ph = q["photos"]
        lines.append(f"| {ph['photos']} held-out real photos (nature, no windows): grid energy | {ph['grid_model']:.2f} "
                     f"| {ph['grid_input']:.2f} | |")
        lines.append(f"| same photos: warm lights (% of pixels) | {ph['warm_pct']:.2f} | | |")
    return lines


def _last_record(stats: dict) -> tuple[dict, dict]:
    """The last logged losses, and the last health record (without the per-attribute coverage)."""
    skip = ("step", "time", "alarms", "feature_space")
    last = {k: v for k, v in stats["last"].items() if k not in skip and "/" not in k and not k.startswith(
        ("fid", "kid", "precision", "recall", "coverage", "diversity", "swd"))}
    health = next((r for r in reversed(stats.get("health", [])) if "feature_space" in r), {})
    return last, {k: v for k, v in health.items() if "/" not in k}


def write_card(name: str, recipe: dict, stats: dict, quality: dict, path: Path, digest: str, drift: dict,
               card_path: Path, run: Path, extra: dict | None = None) -> Path:
    """Write ``card_path`` for the exported model ``path``; returns the card's path."""
    ck = load_checkpoint(path)
    cfg = stats["config"]
    arch_rows = []
    for role, net in ck.nets.items():
        n = sum(p.numel() for p in net.parameters())
        kw = json.dumps(net.init_kwargs, sort_keys=True)
        arch_rows.append(f"| network `{role}` | `{net.arch_name}` {kw}; {n:,} parameters |")
    data = ", ".join(f"`{d}`" for d in cfg["data"]) or "samples of the generator only (no dataset)"
    opts = json.dumps(cfg["options"], sort_keys=True)
    steps_opt = f" --steps {cfg['steps']}" if cfg["steps"] != recipe["train"]["steps"] else ""
    n_img = quality.get("images", 0) if name == "portrait-stylegan2" else 0
    q = QUALITY_NOTES[name].format(images=n_img, last=n_img - 1)
    last, health = _last_record(stats)
    lines = [
        f"# {recipe['title']} — model card", "",
        "| | |", "|---|---|",
        f"| file | `models/{path.name}` ({path.stat().st_size:,} bytes) |",
        f"| SHA-256 | `{digest}` |",
        *([f"| PSNR-stage model | `models/{extra['path'].name}` ({extra['path'].stat().st_size:,} bytes, step "
           f"{extra['steps']:,}, before the GAN stage), SHA-256 `{extra['sha256']}` |"] if extra else []),
        *arch_rows,
        f"| storage | fp16 (all floating tensors): largest relative weight change {drift['weight_rel']:.1e}; "
        f"output change vs the fp32 weights {drift['output_max']:.1e} max, {drift['output_mean']:.1e} mean "
        f"(of a [-1, 1] / [0, 1] image) |",
        f"| data | {data} (rendered/decoded on the fly, see `ganeditor/pipelines/train/data_worlds.py`) |",
        f"| recipe | `{cfg['recipe']}`, batch {cfg['batch']}, precision {cfg['precision']}, seed {cfg['seed']} |",
        f"| options | `{opts}` |",
        f"| trained | {stats['steps']:,} of {cfg['steps']:,} steps ({stats['steps'] * cfg['batch']:,} images), "
        f"wall time {_fmt_time(stats['wall_s'])} on a shared 2-core CPU ({platform.machine()}, torch {torch.__version__}), "
        f"last throughput {stats['images_per_s']} images/s |",
        *([f"| stage 1 | continues `{recipe['stage1']['path']}` of commit {recipe['stage1']['rev']} (SHA-256 "
           f"`{recipe['stage1']['sha256'][:16]}…`; {recipe['stage1']['recipe']}; {recipe['stage1']['images']:,} "
           f"images): {recipe['stage1']['images'] + stats['steps'] * cfg['batch']:,} images in all |"]
          if "stage1" in recipe else []),
        f"| licence | {recipe['licence']} |", "",
        "## Reproduce (one command)", "", "```",
        f"python models/make_demo_models.py {name}{steps_opt}            # trains in $GANEDITOR_RUNS/{name} (default ~/ganeditor-runs)",
        f"python models/make_demo_models.py {name} --resume{steps_opt}   # continues an interrupted run exactly",
        f"python models/make_demo_models.py {name} --export-only         # this file and card from the run as it is",
        "```", "",
        "## Measured quality", "", q, "", *(["Final (GAN-stage) model:", ""] if extra else []),
        *_quality_table(name, quality), "",
        *(["PSNR-stage model (`" + extra["path"].name + "`):", "", *_quality_table(name, extra["quality"]), ""]
          if extra else []),
        "## Training state at export", "",
        f"Last logged losses (step {stats['last'].get('step')}): `{json.dumps(last)}`.",
        *([f"Last training-health measurement (step {health['step']}; `pipelines/train/health.py`): "
           f"`{json.dumps({k: v for k, v in health.items() if k not in ('step', 'time', 'images_per_s')})}`."]
          if health else []),
    ]
    if stats["validations"]:
        v = stats["validations"][-1]
        if "val_psnr_bicubic" in v:
            lines.append(f"Last in-training validation (step {v['step']}, 192-px centre crops): "
                         f"PSNR {v['val_psnr']:.2f} dB (bicubic {v['val_psnr_bicubic']:.2f}), SSIM {v['val_ssim']:.4f}"
                         + (f"; JPEG-30 inputs {v['val_psnr_jpeg30']:.2f} dB (bicubic {v['val_psnr_bicubic_jpeg30']:.2f})"
                            if "val_psnr_jpeg30" in v else "") + ".")
        else:
            lines.append(f"Last in-training validation (step {v['step']}, the 4 sample latents): "
                         f"PSNR {v['val_psnr']:.2f} dB, SSIM {v['val_ssim']:.4f}.")
    lines += ["", f"Run folder: `{run}` (checkpoints, metrics.jsonl, sample grids in samples/)."]
    with atomic_write(card_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return card_path
