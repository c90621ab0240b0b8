"""Stop training in the middle of a step, keeping the stop checkpoint exact.

On a CPU one step of a full-size recipe takes seconds to a minute (a 256-px CycleGAN step takes tens
of seconds here), so checking the cancel token only between steps would make "Stop" wait that long.
``StepGuard`` runs each step under ``ModuleChecks``: the token is checked at every module call of
the training thread and, in the backward pass, when the gradient reaches each module's output, so a
stop lands within one layer's work at a cost of a few microseconds per module.  Pause holds the step
at the same points (it goes on from there, so pausing changes nothing in the run).  A step that ends
within ``STOP_GRACE_S`` of the request is let finish (the stop then keeps it, between steps); only
longer ones are stopped in the middle.

A step stopped half-way has changed some weights and optimiser moments and not others.  So the guard
keeps a *snapshot* (a copy of the recipe's state and the random generators, taken as a step begins)
and on a stop puts the recipe back to it: the stop checkpoint is then exactly the state an
uninterrupted run had after that step, and resuming from it reproduces the uninterrupted run.  A
snapshot costs a memory copy (~0.1 s for the 340 MB of a default CycleGAN with its Adam moments), so
it is taken only when ``SNAPSHOT_SHARE`` of the training time since the last one pays for it: with
slow steps (or small models) before every step; with fast steps of a big model every few steps, so a
stop then gives back at most a couple of seconds of training (those steps are run again after a
resume).  No snapshot is taken while no step has finished since the last checkpoint (there is nothing
to keep), and a stop between steps (the usual case with fast steps) loses nothing.  Multi-process runs are not guarded: one
process leaving a step half-way would leave the others waiting in a collective.
"""

from __future__ import annotations

import contextlib
import copy
import random
import threading
import time
from typing import Any, Callable, Iterator, TypeVar

import numpy as np
import torch
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from ganeditor.core.progress import Task

T = TypeVar("T")
SNAPSHOT_SHARE = 0.05  # most of the training time spent on snapshots
STOP_GRACE_S = 0.1  # a step may go on this long after a stop request before it is stopped in the middle


class ModuleChecks:
    """Check ``task`` at every module call made on this thread, and in the backward pass at each
    module's output (process-wide module hooks that ignore other threads; removed on exit)."""

    def __init__(self, task: Task) -> None:
        self.task, self.thread, self.checks = task, threading.get_ident(), 0
        self._handles: list[Any] = []

    def __enter__(self) -> "ModuleChecks":
        self._handles = [register_module_forward_pre_hook(self._before), register_module_forward_hook(self._after)]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()

    def check(self, *_: object) -> None:  # also the gradient hook: returns None, the gradient is unchanged
        self.checks += 1
        token = self.task.cancel_token
        if token.paused and not token.cancelled:  # pause holds the step right here; it goes on where it was
            self.task.wait_while_paused()
        if not token.cancelled or time.monotonic() - token.cancelled_at >= STOP_GRACE_S:
            self.task.check()

    def _before(self, module: torch.nn.Module, args: Any) -> None:
        if threading.get_ident() == self.thread:
            self.check()

    def _after(self, module: torch.nn.Module, args: Any, out: Any) -> None:
        if threading.get_ident() != self.thread or not torch.is_grad_enabled():
            return
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.requires_grad:
                t.register_hook(self.check)


def rng_state() -> dict[str, Any]:
    """Every generator a step may draw from (torch CPU and CUDA, NumPy, Python)."""
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    name, keys, pos, has_gauss, cached = st["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = st["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


@contextlib.contextmanager
def isolated_rng() -> Iterator[None]:
    """Work inside may draw from the generators but leaves them as they were (samples, health figures):
    the training trajectory then does not depend on whether that work ran to the end or was stopped."""
    saved = rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)


def copy_tree(src: Any, into: Any = None) -> Any:
    """A deep copy of nested state (dicts, lists, tuples, tensors); tensors of ``into`` with the same
    shape, dtype and device are reused (copied into), so a snapshot per step allocates nothing new."""
    if isinstance(src, torch.Tensor):
        if isinstance(into, torch.Tensor) and (into.shape, into.dtype, into.device) == (src.shape, src.dtype, src.device):
            return into.copy_(src.detach())
        return src.detach().clone()
    if type(src) is dict:
        old = into if type(into) is dict else {}
        return {k: copy_tree(v, old.get(k)) for k, v in src.items()}
    if type(src) in (list, tuple):
        old = into if type(into) is type(src) and len(into) == len(src) else [None] * len(src)
        return type(src)(copy_tree(v, o) for v, o in zip(src, old))
    return copy.deepcopy(src)


class StepGuard:
    """Runs training steps so that a stop lands within one module and rolls back to a whole step."""

    def __init__(self, task: Task, recipe: Any, saved_step: int, *, enabled: bool = True) -> None:
        self.task, self.recipe, self.enabled = task, recipe, enabled
        self.saved_step = saved_step  # the step of the state last written (or loaded)
        self.snapshot_step: int | None = None  # the step the snapshot holds (None: none since the last save)
        self.stopped_in_step = False  # the last step was stopped half-way (its state was rolled back, or is void)
        self.snapshot_s = 0.0  # what the last snapshot cost
        self._snapshot: Any = None
        self._safe_since = time.monotonic()  # when the state was last recoverable (start, checkpoint, snapshot)

    def saved(self, step: int) -> None:
        """The state after ``step`` steps was just written (a checkpoint)."""
        self.saved_step, self.snapshot_step, self._safe_since = step, None, time.monotonic()

    def _take_snapshot(self, step: int) -> None:
        t0 = time.monotonic()
        self._snapshot = copy_tree({"recipe": self.recipe.state_dict(), "rng": rng_state()}, self._snapshot)
        self.snapshot_step, self._safe_since = step, time.monotonic()
        self.snapshot_s = self._safe_since - t0

    def step(self, fn: Callable[[], T], step: int) -> T:
        """Run ``fn``, the optimisation step that begins after ``step`` whole steps."""
        if not self.enabled:
            return fn()
        if step > self.saved_step and time.monotonic() - self._safe_since >= self.snapshot_s / SNAPSHOT_SHARE:
            self._take_snapshot(step)
        try:
            with ModuleChecks(self.task):
                return fn()
        except BaseException:
            self.stopped_in_step = True
            if self.snapshot_step is not None:  # put the recipe back as it was after that step
                self.recipe.load_state_dict(self._snapshot["recipe"])
                set_rng_state(self._snapshot["rng"])
            raise

    def between_steps(self) -> contextlib.AbstractContextManager:
        """Work after a whole step (validation, health figures, samples): stoppable at any module and
        drawing from generators of its own (see ``isolated_rng``); a stop there keeps the whole step."""
        stack = contextlib.ExitStack()
        stack.enter_context(isolated_rng())
        if self.enabled:
            stack.enter_context(ModuleChecks(self.task))
        return stack
