"""The one training loop every recipe runs in.

``train(config, task)`` is a generator of ``TrainEvent``s (step, losses, images/s, ETA, sample
grids, checkpoints); the CLI draws a progress bar from it, the app a panel.  It honours the
task's cancel (a checkpoint is written first) and pause, stops on NaN/inf losses keeping the last
good checkpoint, and resumes exactly: models, optimisers, schedulers, recipe state (EMA, image
pools, ADA p), every process's RNG states and the step (the data order is a function of the
step, see ``data.py``).
"""

from __future__ import annotations

import importlib
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

from ganeditor.core.device import is_oom, pick_device
from ganeditor.core.errors import Cancelled, GanEditorError
from ganeditor.core.progress import Task, null_task
from ganeditor.formats.native import save_checkpoint
from ganeditor.pipelines.train import dist as D
from ganeditor.pipelines.train.recipe import Recipe, TrainContext
from ganeditor.pipelines.train.run_dir import RunDir

# Explicit table (no folder scanning): recipe name -> "module:Class".
RECIPES = {
    "cyclegan": "ganeditor.pipelines.train.cyclegan:CycleGANRecipe",
    "srgan": "ganeditor.pipelines.train.srgan:SRGANRecipe",
    "stylegan2": "ganeditor.pipelines.train.stylegan2:StyleGAN2Recipe",
    "encoder": "ganeditor.pipelines.train.encoder:EncoderRecipe",
    "scratches": "ganeditor.pipelines.train.restoration:ScratchRecipe",
    "inpaint": "ganeditor.pipelines.train.restoration:InpaintRecipe",
    "restore": "ganeditor.pipelines.train.restoration:RestoreRecipe",
    "colorize": "ganeditor.pipelines.train.restoration:ColorizeRecipe",
}


@dataclass
class TrainConfig:
    """Everything that defines a run (stored as the run folder's config.json)."""

    recipe: str
    out: str
    data: list[str] = field(default_factory=list)
    steps: int = 1000  # optimisation steps in total
    batch: int = 4  # global batch (split over processes)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    checkpoint_every: int = 500
    keep: int = 3  # checkpoints kept
    sample_every: int = 250
    log_every: int = 10
    validate_every: int = 0  # 0: never
    options: dict[str, Any] = field(default_factory=dict)  # recipe options (lr, losses, arch, init checkpoint...)


@dataclass
class TrainEvent:
    """What the loop reports after a step."""

    step: int
    steps: int
    losses: dict[str, float]
    images_per_s: float
    eta_s: float | None
    sample: np.ndarray | None = None
    checkpoint: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    done: bool = False


def recipe_class(name: str) -> type[Recipe]:
    """The Recipe class registered under ``name``."""
    if name not in RECIPES:
        raise GanEditorError(f"unknown recipe {name!r} (choose from {', '.join(RECIPES)})")
    mod, cls = RECIPES[name].split(":")
    return getattr(importlib.import_module(mod), cls)


def _rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    name, keys, pos, has_gauss, cached = st["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = st["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _resolve_config(cfg: TrainConfig, run: RunDir, resume: bool) -> TrainConfig:
    if not resume:
        if run.latest_checkpoint() is not None:
            raise GanEditorError("run folder already has checkpoints: add --resume, or choose another --out", run.root)
        return cfg
    saved = TrainConfig(**run.read_config())
    if saved.recipe != cfg.recipe:
        raise GanEditorError(f"run folder holds a {saved.recipe!r} run, not {cfg.recipe!r}", run.root)
    cls = recipe_class(cfg.recipe)
    for key in cls.identity_options:
        if key in cfg.options and cfg.options[key] != saved.options.get(key):
            raise GanEditorError(
                f"cannot resume with {key}={cfg.options[key]!r}: the run was started with {saved.options.get(key)!r}", run.root
            )
    saved.steps = max(saved.steps, cfg.steps)  # more steps may be asked for; fewer are ignored
    return saved


def train(cfg: TrainConfig, task: Task | None = None, resume: bool = False) -> Iterator[TrainEvent]:
    """Run (or resume) training; yields a TrainEvent after every step."""
    task = task or null_task()
    device = pick_device(cfg.device)
    env = D.init_from_env(device)
    if env.enabled and device.type == "cuda":
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    run = RunDir(cfg.out)
    try:
        cfg = _resolve_config(cfg, run, resume)
        yield from _train(cfg, run, env, device, task, resume)
    finally:
        run.close()
        D.shutdown(env)


def _train(cfg: TrainConfig, run: RunDir, env: D.DistEnv, device: torch.device, task: Task, resume: bool):
    ctx = TrainContext(device, TrainContext.resolve_precision(cfg.precision, device), env, cfg.seed)
    _seed_everything(cfg.seed * 1000 + env.rank)
    cfg.options.setdefault("total_steps", cfg.steps)
    recipe = recipe_class(cfg.recipe)(cfg.options, ctx, list(cfg.data))  # records option defaults
    for m in recipe.modules().values():
        D.broadcast_module(env, m)
    start = 0
    state = run.load_checkpoint() if resume else None
    if state is not None:
        recipe.load_state_dict(state["recipe"])
        rngs = state["rng"]
        if len(rngs) != env.world:
            raise GanEditorError(f"checkpoint was written by {len(rngs)} processes, now {env.world}", run.root)
        _set_rng_state(rngs[env.rank])
        start = int(state["step"])
    if env.is_main:
        stored = asdict(cfg)
        stored["precision"] = ctx.precision
        run.write_config(stored)
        if start:
            run.truncate_metrics(start)
    D.barrier(env)

    def checkpoint(step: int) -> str | None:
        rngs = D.gather_objects(env, _rng_state())
        path = None
        if env.is_main:
            path = str(run.save_checkpoint(step, {"step": step, "recipe": recipe.state_dict(), "rng": rngs}, cfg.keep))
            save_checkpoint(recipe.export(), run.root / "model.safetensors")
        D.barrier(env)
        return path

    local_batch = cfg.batch // env.world
    t0, done_at_t0 = time.monotonic(), start
    step = start
    last_ckpt = start
    try:
        while step < cfg.steps:
            task.wait_while_paused()
            try:
                losses = recipe.train_step(step, local_batch)
            except (RuntimeError, MemoryError) as e:
                if is_oom(e):
                    raise GanEditorError(f"out of memory at batch size {cfg.batch}: try a smaller --batch") from None
                raise
            losses = D.mean_scalars(env, losses)
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                kept = run.latest_checkpoint()
                raise GanEditorError(
                    f"training diverged at step {step + 1}: {bad[0]} is {losses[bad[0]]}; "
                    + (f"last good checkpoint kept: {kept.name}" if kept else "no checkpoint was written yet")
                )
            step += 1
            elapsed = time.monotonic() - t0
            ips = recipe.images_per_step(cfg.batch) * (step - done_at_t0) / max(elapsed, 1e-9)
            eta = (cfg.steps - step) * elapsed / (step - done_at_t0)
            ev = TrainEvent(step, cfg.steps, losses, ips, eta)
            if cfg.validate_every and step % cfg.validate_every == 0:
                ev.metrics = recipe.validate()
            if env.is_main and (step % cfg.log_every == 0 or ev.metrics or step == cfg.steps):
                run.log_metrics({"step": step, "time": round(elapsed, 3), "images_per_s": round(ips, 3), **losses, **ev.metrics})
            if env.is_main and cfg.sample_every and (step % cfg.sample_every == 0 or step == cfg.steps):
                ev.sample = recipe.samples()
                run.save_sample(step, ev.sample)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                ev.checkpoint = checkpoint(step)
                last_ckpt = step
            ev.done = step == cfg.steps
            task.report(step, cfg.steps, " ".join(f"{k}={v:.3g}" for k, v in losses.items()))
            yield ev
    except Cancelled:
        if step > last_ckpt:
            checkpoint(step)
        raise
