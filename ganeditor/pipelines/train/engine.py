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
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

from ganeditor.core.device import is_oom, pick_device
from ganeditor.core.errors import Cancelled, GanEditorError
from ganeditor.core.progress import Task, null_task
from ganeditor.formats.native import save_checkpoint
from ganeditor.pipelines.train import dist as D
from ganeditor.pipelines.train import health as H
from ganeditor.pipelines.train.clock import RunClock, start_elapsed
from ganeditor.pipelines.train.interrupt import StepGuard, rng_state, set_rng_state
from ganeditor.pipelines.train.recipe import Recipe, TrainContext
from ganeditor.pipelines.train.run_dir import RunDir

@dataclass(frozen=True)
class RecipeInfo:
    """A training recipe as the CLI and the window list it (one table for both)."""

    target: str  # "module:Class" of the Recipe (imported on use)
    label: str  # one line for a menu
    folders: tuple[str, ...]  # captions of the data folders it takes, in order
    required: int  # how many of those folders must be given
    summary: str  # what it learns, one or two sentences


# Explicit table (no folder scanning): recipe name -> RecipeInfo.
RECIPES: dict[str, RecipeInfo] = {
    "cyclegan": RecipeInfo("ganeditor.pipelines.train.cyclegan:CycleGANRecipe", "CycleGAN (two unpaired folders)",
                           ("Folder A", "Folder B"), 2,
                           "Learns A → B and B → A from two folders of unpaired photos (e.g. day and night)."),
    "srgan": RecipeInfo("ganeditor.pipelines.train.srgan:SRGANRecipe", "SRGAN upscaler (one folder)", ("Photos",), 1,
                        "Learns ×4 upscaling from a folder of high-resolution photos."),
    "stylegan2": RecipeInfo("ganeditor.pipelines.train.stylegan2:StyleGAN2Recipe", "StyleGAN2 generator (one folder)",
                            ("Images",), 1, "Learns to generate images like the folder's (aligned faces work best; "
                            "world:portraits trains on the built-in procedural portraits, with per-attribute "
                            "coverage in the health figures)."),
    "encoder": RecipeInfo("ganeditor.pipelines.train.encoder:EncoderRecipe", "Inversion encoder for a generator",
                          ("Real images (optional)",), 0,
                          "Learns instant inversion for a generator: set {\"generator\": \"path or model name\"} "
                          "in Options."),
    "scratches": RecipeInfo("ganeditor.pipelines.train.restoration:ScratchRecipe", "Scratch detector (one folder)",
                            ("Photos",), 1, "Learns to find dust and scratches on old prints, from clean photos "
                            "damaged on the fly."),
    "inpaint": RecipeInfo("ganeditor.pipelines.train.restoration:InpaintRecipe", "Inpainter (one folder)",
                          ("Photos",), 1, "Learns to fill holes shaped like dust and scratches, from clean photos."),
    "restore": RecipeInfo("ganeditor.pipelines.train.restoration:RestoreRecipe", "Global restorer (one folder)",
                          ("Photos",), 1, "Learns to undo the fading, blur, grain and colour casts of old prints, from clean photos."),
    "colorize": RecipeInfo("ganeditor.pipelines.train.restoration:ColorizeRecipe", "Colouriser (one folder)",
                           ("Photos",), 1, "Learns to colour black-and-white photos, from colour photos."),
}  # fmt: skip


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
    eval_every: int = 500  # steps between health evaluations (FID/KID, precision/recall, coverage, SWD); 0: never
    eval_count: int = 512  # generated and real images per health evaluation
    eval_inception: str | None = None  # FID Inception weights file (else $GANEDITOR_INCEPTION or the hub cache)
    eval_space: str = "auto"  # feature space: auto | inception-v3 | attribute-regressor | pixels-16
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
    metrics: dict[str, Any] = field(default_factory=dict)  # validation and health figures of this step
    alarms: list[H.Alarm] = field(default_factory=list)  # mode-collapse warnings raised at this step
    done: bool = False


def recipe_class(name: str) -> type[Recipe]:
    """The Recipe class registered under ``name``."""
    if name not in RECIPES:
        raise GanEditorError(f"unknown recipe {name!r} (choose from {', '.join(RECIPES)})")
    mod, cls = RECIPES[name].target.split(":")
    return getattr(importlib.import_module(mod), cls)


_BOOKKEEPING = ("step", "time", "images_per_s")


def past_events(out: str) -> list[TrainEvent]:
    """A run's events up to its latest checkpoint, rebuilt from metrics.jsonl, for the plots of a resumed
    run.  A record is written as step, time, images/s, the losses, then validation and health figures
    (health from its ``feature_space`` on); losses are the figures before that which every record has."""
    run = RunDir(out)
    last = run.latest_step()
    records = [r for r in run.read_metrics() if last is not None and int(r.get("step", 0)) <= last]
    if not records:
        return []

    def head(r: dict[str, Any]) -> set[str]:  # the keys before the health figures
        keys = list(r)
        return set(keys[: keys.index("feature_space")] if "feature_space" in r else keys) - set(_BOOKKEEPING)

    shared = set.intersection(*(head(r) for r in records))
    common = [k for k in records[-1] if k in shared]  # in the order they were logged (the plot's legend)
    events, history = [], []
    for r in records:
        metrics = {k: v for k, v in r.items() if k not in common and k not in _BOOKKEEPING}
        if "feature_space" in r:  # the alarms as they were raised then (the panel shows the latest's)
            history.append(metrics)
        events.append(TrainEvent(int(r["step"]), 0, {k: float(r[k]) for k in common if isinstance(r[k], (int, float))},
                                 float(r.get("images_per_s", 0.0)), None, metrics=metrics,
                                 alarms=H.alarms(history) if "feature_space" in r else []))
    return events


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
    for key, value in cls.former_defaults.items():  # runs started before a default changed keep the old one
        saved.options.setdefault(key, value)
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


def _build(cfg: TrainConfig, run: RunDir, env: D.DistEnv, device: torch.device,
           resume: bool) -> tuple[Recipe, int, float]:
    """The recipe (restored from the latest checkpoint when resuming), the step to start from and the
    run's seconds of training until then."""
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
        set_rng_state(rngs[env.rank])
        start = int(state["step"])
    elapsed = start_elapsed(state, run.read_metrics(), start)
    if env.is_main:
        stored = asdict(cfg)
        stored["precision"] = ctx.precision
        run.write_config(stored)
        if start:
            run.truncate_metrics(start)
    D.barrier(env)
    return recipe, start, elapsed


def _health(cfg: TrainConfig, recipe: Recipe, run: RunDir, env: D.DistEnv) -> tuple[H.HealthMonitor | None, list]:
    """The run's health monitor (main process, GAN recipes, ``eval_every`` > 0) and its records so far."""
    if not (cfg.eval_every and env.is_main and recipe.has_health):
        return None, []
    opts = H.HealthOptions(cfg.eval_every, cfg.eval_count, cfg.eval_inception, cfg.eval_space)
    space = H.choose_feature_space(opts, cfg.data, recipe.ctx.device)
    monitor = H.HealthMonitor(lambda: recipe.health_sets(opts.count), space)
    return monitor, H.health_history(run.read_metrics())


def _one_step(cfg: TrainConfig, recipe: Recipe, run: RunDir, env: D.DistEnv, step: int) -> dict[str, float]:
    """One optimisation step; errors for out-of-memory and non-finite losses."""
    try:
        losses = recipe.train_step(step, cfg.batch // env.world)
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
    return losses


def _measure(cfg: TrainConfig, recipe: Recipe, monitor: H.HealthMonitor | None, history: list, ev: TrainEvent) -> None:
    """Validation and, every ``eval_every`` steps, health figures and alarms, into the event."""
    last = ev.step == cfg.steps
    if cfg.validate_every and ev.step % cfg.validate_every == 0:
        ev.metrics = recipe.validate()
    if monitor is not None and (ev.step % cfg.eval_every == 0 or last):
        rec = monitor.evaluate()
        history.append(rec)
        ev.alarms = H.alarms(history)
        ev.metrics.update(rec)
        if ev.alarms:
            ev.metrics["alarms"] = [a.text() for a in ev.alarms]


def _train(cfg: TrainConfig, run: RunDir, env: D.DistEnv, device: torch.device, task: Task, resume: bool):
    recipe, start, elapsed = _build(cfg, run, env, device, resume)
    monitor, history = _health(cfg, recipe, run, env)

    def checkpoint(step: int) -> str | None:
        rngs = D.gather_objects(env, rng_state())
        path = None
        if env.is_main:
            state = {"step": step, "elapsed": clock.at(step), "recipe": recipe.state_dict(), "rng": rngs}
            path = str(run.save_checkpoint(step, state, cfg.keep))
            save_checkpoint(recipe.export(), run.root / "model.safetensors")
        D.barrier(env)
        return path

    guard = StepGuard(task, recipe, start, enabled=env.world == 1)
    clock = RunClock(task.cancel_token, start, elapsed)  # training seconds go on from the checkpoint's
    step, last_ckpt = start, start
    if start:  # progress bars count their rate and time left from here, not from step 0
        task.report(start, cfg.steps, f"resumed at step {start}", initial=start)
    try:
        while step < cfg.steps:
            task.wait_while_paused()
            losses = guard.step(lambda: _one_step(cfg, recipe, run, env, step), step)
            step += 1
            elapsed = clock.tick(step)
            ips, eta = clock.pace(step, recipe.images_per_step(cfg.batch), cfg.steps)
            ev = TrainEvent(step, cfg.steps, losses, ips, eta)
            with guard.between_steps():
                _measure(cfg, recipe, monitor, history, ev)
                if env.is_main and cfg.sample_every and (step % cfg.sample_every == 0 or step == cfg.steps):
                    ev.sample = recipe.samples()
            if env.is_main and (step % cfg.log_every == 0 or ev.metrics or step == cfg.steps):
                run.log_metrics({"step": step, "time": round(elapsed, 3), "images_per_s": round(ips, 3), **losses,
                                 **ev.metrics})
            if ev.sample is not None:
                run.save_sample(step, ev.sample)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                ev.checkpoint, last_ckpt = checkpoint(step), step
                guard.saved(step)
                clock.saved(step)
            ev.done = step == cfg.steps
            task.report(step, cfg.steps, " ".join(f"{k}={v:.3g}" for k, v in losses.items()))
            yield ev
    except Cancelled:  # a step stopped half-way was rolled back by the guard to its snapshot (if any): save that
        whole = guard.snapshot_step if guard.stopped_in_step else step
        if whole is not None and whole > last_ckpt:
            checkpoint(whole)
        raise
