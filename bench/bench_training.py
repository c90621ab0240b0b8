"""Seconds per training iteration and images/s of every recipe, fp32 vs bf16, beside the reference.

    python bench/bench_training.py                                  # all recipes, fp32 and bf16
    python bench/bench_training.py --recipes cyclegan --reference /tmp/cyc --rounds 3
    python bench/bench_training.py --recipes cyclegan --before /tmp/before   # an older checkout of ours too

Recipes (random initial weights, data: generated photo folders in a temp dir):
  cyclegan       ResnetGenerator ngf 64, 9 blocks + two PatchGANs, 256 crops of 286 loads, batch 1
  srgan          MSRResNet 64x16 x4 + U-Net discriminator + perceptual loss (GAN stage), 96 crops, batch 16
  srgan-psnr     the same generator, L1 pre-training stage only
  stylegan2-64   the demo-sized StyleGAN2 (64 px, channel_base 4096, max 128, z/w 256), batch 16
  stylegan2-256  paper256-sized StyleGAN2 (256 px, channel_base 16384, max 512), batch 4
  encoder        latent encoder for the demo-sized generator (64 px, perceptual loss), batch 8

Modes: ``fp32``, ``bf16`` (what ``ganeditor train --precision bf16`` does: bf16 autocast, memory
format as the recipe chooses), ``bf16-cl`` / ``bf16-nchw`` (forced channels_last / not).

Every (recipe, mode) runs in its own worker process that stays alive: after ``--warmup`` steps it
waits, and the driver asks each worker in turn for ``--iters`` steps per round, so all columns
share the machine's state (the reference too: one short ``train.py`` run per round, its own
per-iteration ``time:`` figures, warm-up iterations dropped).  A column's figure is the median of
all its timed steps; the spread is the range of its per-round medians.  Each step is timed whole:
data loading and decoding, forward, backward, optimiser.  The junyanz reference is run with
``--num_threads 0`` (data loaded in its main process, as ours, with no loader processes competing
for the cores) and its figure counts data loading too: its log's ``time`` (computation) plus
``data`` (loading) of each iteration.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPES = ("cyclegan", "srgan", "srgan-psnr", "stylegan2-64", "stylegan2-256", "encoder")
DEFAULT_RECIPES = ("cyclegan", "srgan", "stylegan2-64", "stylegan2-256", "encoder")
MODES = ("fp32", "bf16", "bf16-cl", "bf16-nchw")
DEMO_SG2 = dict(resolution=64, channel_base=4096, channel_max=128, z_dim=256, w_dim=256)  # models/make_demo_models.py


def make_photos(root: Path, folders: tuple[str, ...] = ("trainA", "trainB"), count: int = 8) -> None:
    """Folders of smooth synthetic 512x384 JPEG photos (bicubic-upscaled noise)."""
    import numpy as np
    from PIL import Image

    for k, sub in enumerate(folders):
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            small = np.random.RandomState(1000 * k + i).randint(0, 256, (24, 32, 3)).astype(np.uint8)
            Image.fromarray(small).resize((512, 384), Image.BICUBIC).save(d / f"{i:03d}.jpg", quality=90)


def _demo_generator(path: Path) -> None:
    """A random-weight demo-sized StyleGAN2 generator checkpoint for the encoder recipe."""
    import torch

    from ganeditor.archs import build
    from ganeditor.formats import Checkpoint
    from ganeditor.formats.native import save_checkpoint

    torch.manual_seed(0)
    g_kw = dict(z_dim=256, c_dim=0, w_dim=256, img_resolution=64, img_channels=3, mapping_kwargs=dict(num_layers=8),
                synthesis_kwargs=dict(channel_base=4096, channel_max=128, architecture="skip", num_fp16_res=0,
                                      conv_clamp=None))  # fmt: skip
    G = build("stylegan2-generator", **g_kw)
    save_checkpoint(Checkpoint("ganeditor", "bench generator", {"G_ema": G}, {}), path)


def recipe_setup(name: str, data: Path) -> tuple[str, list[str], dict, int]:
    """(engine recipe, data folders, options, batch) of a bench recipe."""
    a, b = str(data / "trainA"), str(data / "trainB")
    if name == "cyclegan":
        return "cyclegan", [a, b], dict(ngf=64, ndf=64, n_blocks=9, crop_size=256, load_size=286), 1
    if name in ("srgan", "srgan-psnr"):
        stage = "gan" if name == "srgan" else "psnr"
        return "srgan", [a], dict(arch="msrresnet", num_feat=64, num_block=16, scale=4, crop_size=96, stage=stage), 16
    if name == "stylegan2-64":
        return "stylegan2", [a], dict(DEMO_SG2), 16
    if name == "stylegan2-256":
        return "stylegan2", [a], dict(resolution=256, channel_base=16384, channel_max=512, z_dim=512, w_dim=512), 4
    if name == "encoder":
        gen = data / "generator.safetensors"
        if not gen.exists():
            _demo_generator(gen)
        return "encoder", [], dict(generator=str(gen), resolution=64, w_stat_samples=1000), 8
    raise SystemExit(f"unknown recipe {name!r} (choose from {', '.join(RECIPES)})")


def worker(args: argparse.Namespace) -> None:
    """Build one recipe in one mode, warm up, then run steps when asked on stdin ('run N')."""
    import torch

    from ganeditor.pipelines.train.engine import recipe_class
    from ganeditor.pipelines.train.recipe import TrainContext

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    recipe_name, data, options, batch = recipe_setup(args.case, Path(args.data))
    precision = "fp32" if args.mode == "fp32" else "bf16"
    if args.mode in ("bf16-cl", "bf16-nchw"):
        options["channels_last"] = args.mode == "bf16-cl"
    options["total_steps"] = 100_000
    ctx = TrainContext(torch.device("cpu"), precision)
    recipe = recipe_class(recipe_name)(options, ctx, data)
    step = 0
    for _ in range(args.warmup):
        recipe.train_step(step, batch)
        step += 1
    print(json.dumps({"ready": True, "images_per_step": recipe.images_per_step(batch)}), flush=True)
    for line in sys.stdin:
        n = int(line.split()[1])
        wall, cpu = [], []
        for _ in range(n):
            t0, c0 = time.perf_counter(), time.process_time()
            recipe.train_step(step, batch)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            step += 1
        print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)


class Column:
    """One measured column: a persistent worker of ours, or the reference run once per round."""

    def __init__(self, label: str, cmd: list[str] | None, env: dict[str, str]):
        self.label, self.cmd, self.env = label, cmd, env
        self.rounds: list[list[float]] = []
        self.cpu: list[float] = []
        self.images_per_step = 1
        self.proc: subprocess.Popen | None = None
        self.error: str | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.env)
        msg = self._read()
        if msg is not None:
            self.images_per_step = msg["images_per_step"]

    def _read(self) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        self.error = f"worker exited with code {self.proc.wait()}"
        return None

    def measure(self, iters: int) -> None:
        if self.error or self.proc is None or self.proc.stdin is None:
            return
        self.proc.stdin.write(f"run {iters}\n")
        self.proc.stdin.flush()
        msg = self._read()
        if msg is not None:
            self.rounds.append(msg["wall"])
            self.cpu += msg["cpu"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait()


class ReferenceColumn(Column):
    """junyanz ``train.py`` on the same data and settings, one short run per round."""

    def __init__(self, repo: Path, data: Path, warmup: int, env: dict[str, str], work: Path):
        super().__init__("junyanz train.py", None, env)
        self.repo, self.data, self.warmup, self.work = repo, data, warmup, work
        self.stubs = work / "stubs"
        self._stub_missing_modules()

    def _stub_missing_modules(self) -> None:
        """Empty stand-ins for the display/logging packages train.py imports but this run never uses."""
        import importlib.util

        self.stubs.mkdir(parents=True, exist_ok=True)
        stubs = {
            "dominate": "class document:\n    def __init__(self, *a, **k): pass\n",
            "dominate.tags": "def __getattr__(name):\n    return lambda *a, **k: None\n",
            "wandb": "run = None\ndef init(*a, **k): return None\n",
            "visdom": "class Visdom:\n    def __init__(self, *a, **k): pass\n",
        }
        for mod, text in stubs.items():
            top = mod.split(".")[0]
            if importlib.util.find_spec(top) is not None:
                continue
            if "." in mod:
                (self.stubs / top).mkdir(exist_ok=True)
                (self.stubs / top / (mod.split(".")[1] + ".py")).write_text(text)
            elif mod == "dominate":
                (self.stubs / top).mkdir(exist_ok=True)
                (self.stubs / top / "__init__.py").write_text(text)
            else:
                (self.stubs / f"{mod}.py").write_text(text)
        self.env = dict(self.env, PYTHONPATH=os.pathsep.join(filter(None, [str(self.stubs), self.env.get("PYTHONPATH")])))

    def start(self) -> None:
        pass

    def measure(self, iters: int) -> None:
        if self.error:
            return
        options = (self.repo / "options" / "base_options.py").read_text(errors="ignore")
        n = self.warmup + iters
        cmd = [sys.executable, "train.py", "--dataroot", str(self.data), "--name", "bench", "--checkpoints_dir",
               str(self.work / "checkpoints"), "--model", "cycle_gan", "--batch_size", "1", "--load_size", "286",
               "--crop_size", "256", "--num_threads", "0", "--print_freq", "1", "--display_freq", "100000000",
               "--update_html_freq", "100000000", "--save_latest_freq", "100000000", "--save_epoch_freq", "100000000",
               "--no_html", "--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", str(n)]  # fmt: skip
        if "--gpu_ids" in options:
            cmd += ["--gpu_ids", "-1"]
        if "--display_id" in options:
            cmd += ["--display_id", "0"]
        res = subprocess.run(cmd, cwd=self.repo, env=self.env, capture_output=True, text=True)
        # per iteration: computation ('time') + data loading ('data'), as our steps are timed
        times = [float(t) + float(d) for t, d in re.findall(r"iters: \d+, time: ([0-9.]+), data: ([0-9.]+)", res.stdout)]
        if res.returncode != 0 or len(times) < n:
            self.error = f"train.py failed ({res.returncode}): {(res.stderr or res.stdout).strip().splitlines()[-1:]}"
            return
        self.rounds.append(times[self.warmup :])


def _fmt_range(col: Column) -> str:
    meds = [statistics.median(r) for r in col.rounds]
    return f"{min(meds):.2f}-{max(meds):.2f}"


def run_case(case: str, modes: list[str], args: argparse.Namespace, data: Path, work: Path) -> list[dict]:
    """Measure one recipe in every mode (plus the reference / an older checkout), interleaved; table rows."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    cols: list[Column] = []
    sources = [("", REPO)] + ([("before ", Path(args.before))] if args.before else [])
    for prefix, src in sources:
        for mode in modes:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--case", case, "--mode", mode,
                   "--data", str(data), "--warmup", str(args.warmup), "--threads", str(args.threads)]  # fmt: skip
            cols.append(Column(prefix + mode, cmd, dict(env, PYTHONPATH=str(src))))
    if args.reference and case == "cyclegan":
        cols.append(ReferenceColumn(Path(args.reference), data, args.warmup, env, work))
    for c in cols:
        c.start()
    try:
        for r in range(args.rounds):
            for c in cols if r % 2 == 0 else cols[::-1]:  # alternate the order: no column always goes first
                c.measure(args.iters)
            print(f"  {case}: round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for c in cols:
            c.stop()
    ref = next((c for c in cols if isinstance(c, ReferenceColumn) and c.rounds), None)
    ref_s = statistics.median([t for r in ref.rounds for t in r]) if ref else None
    rows = []
    for c in cols:
        if not c.rounds:
            rows.append({"recipe": case, "column": c.label, "error": c.error or "no result"})
            continue
        s = statistics.median([t for r in c.rounds for t in r])
        rows.append({
            "recipe": case, "column": c.label, "s_per_iter": s, "spread": _fmt_range(c),
            "images_per_s": c.images_per_step / s, "cpu_s": statistics.median(c.cpu) if c.cpu else None,
            "vs_reference": ref_s / s if ref_s else None, "steps": sum(len(r) for r in c.rounds),
        })  # fmt: skip
    return rows


def print_table(rows: list[dict]) -> None:
    """The result table, one line per recipe and column."""
    head = f"{'recipe':<14} {'column':<18} {'s/iter':>8} {'round medians':>14} {'images/s':>9} {'cpu s':>7} {'speed-up':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['recipe']:<14} {r['column']:<18} {r['error']}")
            continue
        cpu = f"{r['cpu_s']:.2f}" if r["cpu_s"] is not None else "-"
        vs = f"{r['vs_reference']:.2f}x" if r["vs_reference"] else "-"
        print(f"{r['recipe']:<14} {r['column']:<18} {r['s_per_iter']:>8.2f} {r['spread']:>14} "
              f"{r['images_per_s']:>9.2f} {cpu:>7} {vs:>9}")  # fmt: skip
    print("speed-up: the reference's s/iter divided by the column's (same run, interleaved); "
          "cpu s: process CPU seconds per step (all threads)")


def main() -> None:
    """Parse arguments; run a worker, or drive the whole bench and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", default=",".join(DEFAULT_RECIPES), help=f"comma list from {', '.join(RECIPES)}")
    p.add_argument("--modes", default="fp32,bf16", help=f"comma list from {', '.join(MODES)}")
    p.add_argument("--reference", default=None, help="junyanz pytorch-CycleGAN-and-pix2pix work tree (runs its train.py)")
    p.add_argument("--before", default=None, help="an older checkout of this repository, measured as extra 'before' columns")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    p.add_argument("--iters", type=int, default=2, help="timed steps per column per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before the first round")
    p.add_argument("--threads", type=int, default=2, help="torch threads per process")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    cases = [c.strip() for c in args.recipes.split(",") if c.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            raise SystemExit(f"unknown mode {m!r} (choose from {', '.join(MODES)})")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        work = Path(tmp)
        data = work / "data"
        make_photos(data)
        sys.path.insert(0, str(REPO))
        for case in cases:
            recipe_setup(case, data)  # validates the name; writes the encoder's generator once
            rows += run_case(case, modes, args, data, work)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
