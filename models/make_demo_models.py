"""Train (or resume) one demo model with our trainer, export it as fp16, measure it, write its card.

Usage:
    python models/make_demo_models.py portrait-stylegan2|portrait-stylegan2-encoder|daynight-cyclegan|srgan-x4 [--resume] [--steps N]
    python models/make_demo_models.py NAME --export-only      # export/measure/card from the run folder as it is

The run folder is ``$GANEDITOR_RUNS/NAME`` (default ``~/ganeditor-runs/NAME``, outside the repository);
``--resume`` continues it exactly.  The export keeps only the inference networks, stored as fp16,
in ``models/NAME.safetensors``; the card ``models/NAME.md`` records the data, recipe, steps, wall
time, measured quality, licence and SHA-256.  ``--tiny`` (or ``GANEDITOR_DEMO_TINY=1``) swaps in
tiny networks, few steps and small evaluations so the whole pipeline runs in seconds (tests).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ganeditor.core.errors import Cancelled, GanEditorError  # noqa: E402
from ganeditor.formats import Checkpoint, load_checkpoint  # noqa: E402
from ganeditor.formats.native import canonicalize_safetensors, save_checkpoint  # noqa: E402
from ganeditor.pipelines.train.engine import TrainConfig, train  # noqa: E402
from ganeditor.pipelines.train.run_dir import RunDir  # noqa: E402

MODELS_DIR = Path(__file__).resolve().parent
PSNR_MODEL = "model-psnr.safetensors"  # SRGAN run folder: the model at the end of the PSNR stage
PROCEDURAL_LICENCE = ("MIT (same as GAN Editor). Trained only on procedural images rendered by "
                      "`ganeditor.worlds`, so no third-party rights apply.")
PHOTO_LICENCE = ("MIT (same as GAN Editor) for the weights. Training photos: the `photos:train` split gathered "
                 "by `bench/gather_photos.py` from Debian wallpaper packages (CC-BY-SA-3.0, CC0, GPL-2+, LGPL-3.0) "
                 "and scikit-image sample data (CC0/public domain); see the cache's manifest.json. The weights "
                 "contain no images.")

# The recorded recipes.  ``train`` holds TrainConfig fields; ``export`` the networks kept.
RECIPES: dict[str, dict] = {
    "portrait-stylegan2": {
        "title": "Portrait StyleGAN2 (64 px)",
        # Stage 2: continues the stage-1 generator (the demo model of commit 2465afe: 4,500 steps of the
        # logistic recipe, 72,000 images) with a new discriminator and the R3GAN loss, for mode coverage.
        # G learns at a quarter of D's rate after 500 D-only steps: at lr 0.002 for both and 150 D-only steps
        # the fresh discriminator wrecked the faces within a hundred G steps (bench/RESULTS.md).
        "stage1": {"rev": "2465afe", "path": "models/portrait-stylegan2.safetensors",
                   "sha256": "d4131c645bc622ea1e1b474b413d832a960b0749e452700decc5755c4e805e71", "images": 72000,
                   "recipe": "stylegan2, loss logistic + lazy R1 (gamma 0.05), lr 0.0025, batch 16, 4,500 steps"},
        "train": dict(recipe="stylegan2", data=["world:portraits"], steps=3000, batch=16, seed=0, precision="bf16",
                      checkpoint_every=125, sample_every=250, log_every=25, keep=3, eval_every=250, eval_count=512,
                      options=dict(init="STAGE1", fresh_d=True, d_warmup_steps=500, loss="r3gan", channel_base=4096,
                                   channel_max=128, lr=0.002, lr_g=0.0005, r1_gamma=0.05, r2_gamma=0.05, ema_kimg=5,
                                   style_mixing=0.9, ada=False)),
        "export": ["G_ema"],
        "licence": PROCEDURAL_LICENCE,
        "tiny": dict(steps=2, batch=4, checkpoint_every=1, sample_every=1, log_every=1, eval_every=1, eval_count=32,
                     options=dict(channel_base=256, channel_max=16, d_warmup_steps=1)),
    },
    "portrait-stylegan2-encoder": {
        "title": "Inversion encoder for the portrait StyleGAN2",
        "train": dict(recipe="encoder", data=[], steps=1500, batch=8, seed=0, precision="bf16",
                      checkpoint_every=250, sample_every=250, log_every=25, keep=3, validate_every=250,
                      options=dict(generator="models/portrait-stylegan2.safetensors", channel_base=4096,
                                   channel_max=256, lr=1e-4, latent_weight=1.0, image_weight=1.0,
                                   perceptual_weight=0.5, style_mixing=0.5)),
        "export": ["E"],
        "licence": PROCEDURAL_LICENCE,
        "tiny": dict(steps=2, batch=2, checkpoint_every=1, sample_every=1, log_every=1, validate_every=1,
                     options=dict(channel_base=64, channel_max=8, w_stat_samples=64)),
    },
    "daynight-cyclegan": {
        "title": "Day <-> night CycleGAN",
        # Streets only.  A run with a quarter countryside scenes (`world:scenes-day?countryside=0.25`, the same for
        # night) scored higher against the paired truth but learnt to leave most windows dark: not shipped
        # (bench/RESULTS.md, quality-retraining, 2026-12-05 fifth session).
        "train": dict(recipe="cyclegan", data=["world:scenes-day", "world:scenes-night"], steps=3000, batch=1,
                      seed=0, precision="bf16", checkpoint_every=250, sample_every=250, log_every=50, keep=3,
                      eval_every=500, eval_count=48,
                      options=dict(ngf=32, ndf=64, n_blocks=9, crop_size=128, load_size=256, lr=2e-4,
                                   pool_size=50, lambda_identity=0.5, upsample="resize")),
        "export": ["G_A", "G_B"],
        "licence": PROCEDURAL_LICENCE,
        "tiny": dict(steps=2, batch=1, checkpoint_every=1, sample_every=1, log_every=1,
                     data=["world:scenes-day?n=4", "world:scenes-night?n=4"], eval_every=1, eval_count=4,
                     options=dict(ngf=4, ndf=4, n_blocks=1, crop_size=32, load_size=48)),
    },
    "srgan-x4": {
        "title": "SRGAN x4 (MSRResNet)",
        # Stage 2: continues the PSNR-stage model of commit 67de8ef (2,000 steps on clean bicubic inputs) on the
        # 'mix' degradation (clean, JPEG, second-order), then a short GAN stage.  The mix is 40 % clean, 50 %
        # JPEG-only, 10 % second-order: a run with 25 % second-order (blur + noise) lost 0.9 dB on clean inputs.
        "stage1": {"rev": "67de8ef", "path": "models/srgan-x4-psnr.safetensors",
                   "sha256": "467809065749ee22c4315bada41d5fa88d480184b55bb215b8521468c380f003", "images": 32000,
                   "recipe": "srgan PSNR stage, degradation bicubic, L1, lr 0.0002, batch 16, 2,000 steps"},
        "train": dict(recipe="srgan", data=["photos:train?short=768"], steps=7200, batch=16, seed=0,
                      precision="bf16", checkpoint_every=100, sample_every=500, log_every=50, keep=3,
                      validate_every=250,
                      options=dict(init="STAGE1", arch="msrresnet", num_feat=64, num_block=16, scale=4, crop_size=96,
                                   stage="both", pretrain_steps=7080, total_steps=7200, lr=2e-4, lr_schedule="cosine",
                                   pixel_loss="l1",
                                   degradation="mix", mix_clean=0.4, mix_jpeg=0.5, val_size=192, val_count=11)),
        "export": ["net"],
        "licence": PHOTO_LICENCE,
        "tiny": dict(steps=2, batch=2, checkpoint_every=1, sample_every=1, log_every=1, validate_every=2,
                     data=["photos:train?short=64"],
                     options=dict(init=None, num_feat=4, num_block=1, crop_size=32, pretrain_steps=1, total_steps=2,
                                  val_size=32, val_count=2, d_feat=4)),
    },
}


def runs_root() -> Path:
    """Where run folders live: ``$GANEDITOR_RUNS`` or ``~/ganeditor-runs``."""
    return Path(os.environ.get("GANEDITOR_RUNS", Path.home() / "ganeditor-runs")).expanduser()


def recipe_config(name: str, tiny: bool = False) -> dict:
    """The TrainConfig fields (and options) of a demo model; ``tiny`` for seconds-long tests."""
    if name not in RECIPES:
        raise GanEditorError(f"unknown demo model {name!r} (choose from {', '.join(RECIPES)})")
    cfg = copy.deepcopy(RECIPES[name]["train"])
    if tiny:
        t = copy.deepcopy(RECIPES[name]["tiny"])
        cfg["options"].update(t.pop("options"))
        cfg.update(t)
        cfg["precision"] = "fp32"
    return cfg


def heldout_folder(root: Path, short: int) -> Path:
    """Held-out photos resized to ``short`` px as PNGs (the SRGAN recipe validates on a folder)."""
    from ganeditor.pipelines.train.data_worlds import PhotoSource

    folder = root / "data" / f"photos-heldout-short{short}"
    src = PhotoSource("heldout", 8, "center-crop", None, short=short, flip=False, cache_mb=0)
    if not folder.is_dir() or len(list(folder.glob("*.png"))) != len(src):
        from PIL import Image

        folder.mkdir(parents=True, exist_ok=True)
        for i in range(len(src)):
            Image.fromarray(src.base_image(i)).save(folder / f"{i:03d}-{src.paths[i].stem}.png")
    return folder


def _encoder_generator(run: Path, tiny: bool) -> Path:
    """The generator the encoder learns to invert: the exported demo StyleGAN2 (a tiny random one in tests)."""
    if not tiny:
        path = MODELS_DIR / "portrait-stylegan2.safetensors"
        if not path.is_file():
            raise GanEditorError("export the portrait StyleGAN2 first: python models/make_demo_models.py "
                                 "portrait-stylegan2 --export-only", path)
        return path
    return _tiny_generator(run)


def _tiny_generator(run: Path) -> Path:
    """A random 16 px StyleGAN2 generator beside the run folder (tests)."""
    from ganeditor.archs import build

    path = run.parent / "tiny-stylegan2.safetensors"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        G = build("stylegan2-generator", z_dim=8, w_dim=8, c_dim=0, img_resolution=16, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=16))
        save_checkpoint(Checkpoint("ganeditor", "tiny", {"G_ema": G.eval()}, {}), path)
    return path


def stage1_weights(name: str, run: Path) -> Path:
    """The model a two-stage demo recipe continues: its stage-1 demo model taken from git history (SHA-256
    checked) into ``$GANEDITOR_RUNS/data``."""
    st = RECIPES[name]["stage1"]
    path = run.parent / "data" / f"{Path(st['path']).stem}-{st['rev']}.safetensors"
    if not path.is_file():
        import subprocess

        blob = subprocess.run(["git", "-C", str(MODELS_DIR.parent), "show", f"{st['rev']}:{st['path']}"],
                              capture_output=True, check=False).stdout
        if hashlib.sha256(blob).hexdigest() != st["sha256"]:
            raise GanEditorError(f"cannot get the stage-1 model {st['path']} of commit {st['rev']} from git "
                                 "(needs the repository's history)", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    return path


def run_training(name: str, run: Path, resume: bool, steps: int | None, tiny: bool) -> None:
    """Train or resume the demo model's run folder with the recorded recipe."""
    fields = recipe_config(name, tiny)
    if fields["options"].get("init") == "STAGE1":
        fields["options"]["init"] = str(_tiny_generator(run) if tiny else stage1_weights(name, run))
    if name == "portrait-stylegan2-encoder":
        fields["options"]["generator"] = str(_encoder_generator(run, tiny))
    if name == "srgan-x4":
        short = 64 if tiny else 768
        fields["options"]["val"] = str(heldout_folder(run.parent, short))
    if steps is not None:
        if resume and name != "portrait-stylegan2" and steps != RunDir(run).read_config()["options"]["total_steps"]:
            raise GanEditorError(f"{name} has a learning-rate/stage schedule fixed at the start: cannot change --steps on resume", run)
        fields["steps"] = steps
        if not resume and name == "srgan-x4":
            fields["options"].update(pretrain_steps=int(steps * 0.95), total_steps=steps)
    elif resume:
        fields["steps"] = 0  # keep the run's own number of steps
    if name == "srgan-x4":  # PSNR stage first; its model is kept as model-psnr.safetensors
        opts = RunDir(run).read_config()["options"] if resume else fields["options"]
        pre, total = int(opts["pretrain_steps"]), int(opts["total_steps"])
        if not (run / PSNR_MODEL).is_file():
            _train_until(name, run, dict(fields, steps=pre), resume)
            shutil.copyfile(run / "model.safetensors", run / PSNR_MODEL)
            resume = True
        fields["steps"] = total
    _train_until(name, run, fields, resume)


def _train_until(name: str, run: Path, fields: dict, resume: bool) -> None:
    from ganeditor.cli.common import progress_task
    from ganeditor.cli.train import print_health

    cfg = TrainConfig(out=str(run), **fields)
    last = None
    with progress_task(f"train {name}", cfg.steps or None,
                       graceful="stopping: writing a checkpoint") as task:
        for ev in train(cfg, task, resume=resume):
            last = ev
            if "feature_space" in ev.metrics:
                print_health(ev)
            if ev.step % max(1, cfg.log_every * 10) == 0:
                print(f"step {ev.step}/{ev.steps} {ev.images_per_s:.2f} images/s "
                      + " ".join(f"{k}={v:.3g}" for k, v in ev.losses.items()), flush=True)
    if last is not None:
        print(f"trained to step {last.step}/{last.steps}")
    if task.cancelled:  # a stop asked for after the last step: do not go on to the next stage
        raise Cancelled()


def run_stats(run: Path) -> dict:
    """Steps of the latest checkpoint, wall time to it (summed over sessions) and images/s, from the metrics."""
    latest = RunDir(run).latest_checkpoint()  # model.safetensors is written with each checkpoint
    upto = int(latest.name.split(".")[0].split("-")[1]) if latest else 0
    recs = [r for r in RunDir(run).read_metrics() if int(r.get("step", 0)) <= upto]
    wall, prev, seg = 0.0, None, 0.0
    for r in recs:
        t = float(r.get("time", 0.0))
        if prev is not None and t < prev:  # a new session started (its clock restarts)
            wall += seg
        seg, prev = t, t
    wall += seg
    cfg = RunDir(run).read_config()
    return {"steps": upto, "wall_s": round(wall, 1),
            "images_per_s": recs[-1].get("images_per_s") if recs else None, "config": cfg,
            "last": recs[-1] if recs else {}, "validations": [r for r in recs if "val_psnr" in r],
            "health": [r for r in recs if "feature_space" in r]}


@torch.no_grad()
def _output_drift(name: str, a: dict, b: dict) -> tuple[float, float]:
    """Max and mean |output| change between two sets of the model's networks on a fixed input."""
    g = torch.Generator().manual_seed(0)
    if name == "portrait-stylegan2":
        z = torch.randn(4, a["G_ema"].z_dim, generator=g)
        pairs = [(a["G_ema"](z, None, noise_mode="const"), b["G_ema"](z, None, noise_mode="const"))]
    elif name == "portrait-stylegan2-encoder":
        x = torch.rand(2, 3, a["E"].img_resolution, a["E"].img_resolution, generator=g) * 2 - 1
        pairs = [(a["E"](x), b["E"](x))]
    elif name == "daynight-cyclegan":
        x = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
        pairs = [(a[r](x), b[r](x)) for r in ("G_A", "G_B")]
    else:
        x = torch.rand(1, 3, 24, 24, generator=g)
        pairs = [(a["net"](x), b["net"](x))]
    diffs = torch.cat([(p.float() - q.float()).abs().flatten() for p, q in pairs])
    return float(diffs.max()), float(diffs.mean())


def export(name: str, run: Path, out: Path, src_path: Path | None = None) -> tuple[Checkpoint, dict]:
    """Write the inference networks of ``run/model.safetensors`` as fp16 to ``out``; returns (fp32 ckpt, drift)."""
    psnr_stage = src_path is not None
    src_path = src_path or run / "model.safetensors"
    if not src_path.is_file():
        raise GanEditorError("the run has no model.safetensors yet (no checkpoint written)", run)
    src = load_checkpoint(src_path)
    keep = RECIPES[name]["export"]
    missing = [r for r in keep if r not in src.nets]
    if missing:
        raise GanEditorError(f"the run's model lacks {missing}", src_path)
    st = run_stats(run)
    meta = dict(src.meta, demo_model=name, steps=st["steps"], train_wall_s=st["wall_s"],
                data=st["config"]["data"], recipe=st["config"]["recipe"], options=st["config"]["options"])
    if psnr_stage:
        meta.update(stage="psnr", steps=int(st["config"]["options"]["pretrain_steps"]), train_wall_s=None)
    nets = {r: src.nets[r].eval() for r in keep}
    save_checkpoint(Checkpoint("ganeditor", src.format_name, nets, meta), out, dtype=torch.float16)
    canonicalize_safetensors(out)  # sorted header: the same run always exports the same bytes
    back = load_checkpoint(out)
    rel = max(float((a.float() - b.float()).abs().max() / a.float().abs().max().clamp_min(1e-12)) for r in keep
              for a, b in zip(nets[r].state_dict().values(), back.nets[r].state_dict().values()) if a.is_floating_point())
    mx, mean = _output_drift(name, nets, {r: back.nets[r].eval() for r in keep})
    drift = {"weight_rel": rel, "output_max": mx, "output_mean": mean}
    return Checkpoint("ganeditor", src.format_name, nets, meta), drift


def measure(name: str, ckpt_path: Path, tiny: bool) -> dict:
    """Quality of the exported (fp16-stored) model, see ``demo_eval``."""
    import demo_eval

    ck = load_checkpoint(ckpt_path)
    if name == "portrait-stylegan2":
        return demo_eval.stylegan2_quality(ck.nets["G_ema"].eval(), count=64 if tiny else 1024)
    if name == "portrait-stylegan2-encoder":
        gen = load_checkpoint(ck.meta["generator"]).primary.eval()
        return demo_eval.encoder_quality(gen, ck.nets["E"].eval(), count=4 if tiny else 64)
    if name == "daynight-cyclegan":
        G_A, G_B = ck.nets["G_A"].eval(), ck.nets["G_B"].eval()
        q = demo_eval.cyclegan_quality(G_A, G_B, count=2 if tiny else 50, size=64 if tiny else 256,
                                       stats_count=4 if tiny else 200)
        try:
            q["photos"] = demo_eval.photo_night_lights(G_A, short=64 if tiny else 256)
        except GanEditorError as e:  # no gathered photo cache on this machine (bench/gather_photos.py)
            print(f"real-photo measurements skipped: {e}", file=sys.stderr)
        return q
    net, short, crop = ck.nets["net"].eval(), 64 if tiny else 768, 32 if tiny else 384
    q = demo_eval.srgan_quality(net, short=short, crop=crop)
    q["jpeg30"] = demo_eval.srgan_quality(net, short=short, crop=crop, jpeg=30)
    return q


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_args(names: list[str], description: str, argv: list[str] | None) -> argparse.Namespace:
    """The options every demo-model script takes (this one and make_restoration_models.py); sets the threads."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("name", choices=sorted(names))
    ap.add_argument("--resume", action="store_true", help="continue the run folder from its last checkpoint")
    ap.add_argument("--steps", type=int, default=None, help="total steps (default: the recipe's)")
    ap.add_argument("--export-only", action="store_true", help="no training: export, measure, write the card")
    ap.add_argument("--no-export", action="store_true", help="train only")
    ap.add_argument("--run", type=Path, default=None, help="run folder (default $GANEDITOR_RUNS/NAME)")
    ap.add_argument("--models-dir", type=Path, default=MODELS_DIR, help="where NAME.safetensors and NAME.md go")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--tiny", action="store_true", default=os.environ.get("GANEDITOR_DEMO_TINY") == "1",
                    help="tiny networks/steps/evaluations (tests)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    args = parse_args(list(RECIPES), __doc__.splitlines()[0], argv)
    run = args.run or runs_root() / args.name
    try:
        if not args.export_only:
            run_training(args.name, run, args.resume, args.steps, args.tiny)
        if args.no_export:
            return 0
        args.models_dir.mkdir(parents=True, exist_ok=True)
        out = args.models_dir / f"{args.name}.safetensors"
        t0 = time.monotonic()
        _, drift = export(args.name, run, out)
        quality = measure(args.name, out, args.tiny)
        extra = None
        if (run / PSNR_MODEL).is_file():  # SRGAN: the PSNR-stage model too
            out2 = args.models_dir / f"{args.name}-psnr.safetensors"
            export(args.name, run, out2, run / PSNR_MODEL)
            extra = {"path": out2, "sha256": sha256(out2), "quality": measure(args.name, out2, args.tiny),
                     "steps": int(load_checkpoint(out2).meta.get("steps", 0))}
        from demo_card import write_card

        card = write_card(args.name, RECIPES[args.name], run_stats(run), quality, out, sha256(out), drift,
                          args.models_dir / f"{args.name}.md", run, extra)
        print(json.dumps(quality, indent=1))
        print(f"wrote {out} ({out.stat().st_size:,} bytes) and {card} in {time.monotonic() - t0:.0f} s")
    except GanEditorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Cancelled:
        print("stopped; continue with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
