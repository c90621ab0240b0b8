"""Teach a slider: the user names an attribute and marks faces "more" or "less"; a direction is
fitted in W — InterFaceGAN's recipe, the normal of a linear boundary between the two sets of latents
— optionally made independent of existing directions (their components projected out, as
InterFaceGAN's conditional boundaries), and saved to the user's direction library for that generator.

The boundary is fitted as for the shipped InterFaceGAN boundaries (``method='logistic'``: a ridge
logistic regression on the marked latents).  ``method='fisher'`` (the Fisher discriminant with the
generator's own W covariance, shrunk halfway to its mean variance) is kept for comparison:
``bench/bench_teach.py`` measured it moving the target attribute less at the slider's ends, with no
less leakage, so it is not the default.

Faces to mark come from ``sample_grid`` (generated samples, seeds as NVlabs) and may include the
photo being edited (its inverted W+ latent, averaged over layers, stands for it).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.errors import GanEditorError
from ganeditor.core.model_store import bundled_models_dir, user_models_dir
from ganeditor.pipelines.direction_io import generator_fingerprint, load_library, save_library
from ganeditor.pipelines.directions import Direction, DirectionLibrary, fit_boundary, project_out, sample_w
from ganeditor.pipelines.generate import to_uint8

MIN_EACH = 5  # marks needed on each side
METHODS = ("logistic", "fisher")
SHRINK = 0.5  # Fisher: covariance shrunk this far towards its mean variance
USER_LIBRARY_ROLE = "my-directions"  # <generator stem>-my-directions.safetensors


@dataclass(frozen=True)
class Marks:
    """The user's marks: W latents [N, w_dim] of faces marked "more" and "less"."""

    more: np.ndarray
    less: np.ndarray

    def check(self) -> None:
        if len(self.more) < MIN_EACH or len(self.less) < MIN_EACH:
            raise GanEditorError(f"mark at least {MIN_EACH} faces 'more' and {MIN_EACH} 'less' "
                                 f"(now {len(self.more)} and {len(self.less)})")  # fmt: skip


def slug(label: str) -> str:
    """'Freckles!' -> 'freckles': a direction name from what the user typed."""
    s = re.sub(r"[^a-z0-9]+", "_", label.strip().lower()).strip("_")
    if not s:
        raise GanEditorError("give the new slider a name (letters or digits)")
    return s[:40]


def latent_of(ws: torch.Tensor | np.ndarray) -> np.ndarray:
    """A W latent [w_dim] for a face given as W+ [1, num_ws, w_dim] (layer mean) or W [w_dim]."""
    w = np.asarray(ws.detach().cpu() if isinstance(ws, torch.Tensor) else ws, np.float64)
    return w.reshape(-1, w.shape[-1]).mean(0)


@torch.no_grad()
def sample_grid(G: nn.Module, seeds: Sequence[int], psi: float = 0.7, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Faces to mark: (W latents [N, w_dim] float64, images uint8 [N, R, R, C]) of ``seeds``
    (z = RandomState(seed).randn, truncation ``psi`` towards the mean)."""
    device = next(G.parameters()).device
    z = np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])
    ws, imgs = [], []
    for i in range(0, len(z), batch):
        zb = torch.from_numpy(z[i : i + batch]).to(device)
        w = G.mapping(zb, torch.zeros([len(zb), G.c_dim], device=device), truncation_psi=psi)
        imgs.append(to_uint8(G.synthesis(w, noise_mode="const")))
        ws.append(w[:, 0].double().cpu().numpy())
    return np.concatenate(ws), np.concatenate(imgs)


def fisher_normal(w: np.ndarray, more: np.ndarray, less: np.ndarray) -> np.ndarray:
    """Unit normal C^-1 (mean(more) - mean(less)), C = the covariance of W samples ``w`` [N, w_dim] shrunk
    by ``SHRINK``."""
    c = np.cov(w.T)
    c = (1 - SHRINK) * c + SHRINK * np.trace(c) / len(c) * np.eye(len(c))
    n = np.linalg.solve(c, more.mean(0) - less.mean(0))
    return n / np.linalg.norm(n)


def teach_direction(
    G: nn.Module,  # the generator (its W statistics: the Fisher covariance and the direction's σ)
    label: str,  # what the user called the attribute
    marks: Marks,  # W latents marked "more" / "less"
    conditions: Sequence[Direction] = (),  # directions to stay independent of (projected out)
    method: str = "logistic",  # 'logistic' (InterFaceGAN's fit) or 'fisher' (see the module docstring)
    samples: int = 3000,  # W samples (the generator's covariance; the direction's σ)
) -> Direction:
    """A direction in W from the user's marks (see the module docstring), pointing towards "more"."""
    marks.check()
    if method not in METHODS:
        raise GanEditorError(f"unknown method {method!r} (one of {', '.join(METHODS)})")
    x = np.concatenate([marks.more, marks.less]).astype(np.float64)
    y = np.r_[np.ones(len(marks.more)), np.zeros(len(marks.less))]
    w = sample_w(G, samples, seed=1)
    if method == "fisher":
        normal = fisher_normal(w, marks.more, marks.less)
    else:
        normal, _ = fit_boundary(x, y, l2=1e-2)
    if conditions:
        normal = project_out(normal, *[c.vector for c in conditions])
    if float(marks.more.mean(0) @ normal) < float(marks.less.mean(0) @ normal):
        normal = -normal
    acc = float((((x - x.mean(0)) @ normal > 0) == (y > 0.5)).mean())  # on the marks, boundary through their mean
    sigma = float(((w - w.mean(0)) @ normal).std())
    info = {"label": label.strip(), "labels": int(len(x)), "more": int(len(marks.more)), "less": int(len(marks.less)),
            "accuracy": acc, "method": method, "conditions": [c.name for c in conditions]}  # fmt: skip
    return Direction(slug(label), normal.astype(np.float32), 0, None, "sigma", sigma, "user", info)


def user_library_path(generator: str | Path) -> Path:
    """Where the user's directions for ``generator`` live: ``<stem>-my-directions.safetensors`` beside
    it, or in the user's model folder when it sits among the shipped models or in a read-only folder."""
    p = Path(generator).expanduser().resolve()
    name = f"{p.stem}-{USER_LIBRARY_ROLE}.safetensors"
    shipped = p.parent == bundled_models_dir().resolve()
    if not shipped and p.parent.is_dir() and os.access(p.parent, os.W_OK):
        return p.parent / name
    return user_models_dir() / name


def save_user_direction(G: nn.Module, generator: str | Path, direction: Direction) -> Path:
    """Add (or replace, by name) ``direction`` in the user's library for ``generator``; returns its path."""
    path = user_library_path(generator)
    fp = generator_fingerprint(G)
    if path.is_file():
        lib = load_library(path)
        lib.check_generator(fp, G.w_dim, path)
        lib.directions = [d for d in lib.directions if d.name != direction.name]
    else:
        lib = DirectionLibrary([], G.w_dim, G.num_ws, fp, {"made_by": "teach a slider", "generator": Path(generator).name})
    lib.directions.append(direction)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_library(lib, path)
    return path
