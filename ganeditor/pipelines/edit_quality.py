"""Edit quality measured with the attribute regressor: how far a direction moves its target
attribute and every other one, in population-σ units.

* ``direction_effects``: sample N latents, move them by ±step (a fixed Euclidean norm in W, on each
  direction's layers), render, score; the effect of a direction is the mean over samples of
  (score(w + step·d̂) − score(w − step·d̂)) / 2, per attribute, in σ.
* ``entanglement_rows``: for every attribute and direction source, the best direction (supervised
  sources: the direction fitted for that attribute; unsupervised SeFa/GANSpace: the component with
  the largest |Δtarget| at the same step norm), its Δtarget and the max/mean |Δ| of the others, and
  the same re-measured at the step that should move the target by ``target_sigma``.
* ``label_latents`` / ``attribute_boundaries``: InterFaceGAN boundaries (and conditional ones) for
  every attribute, fitted on generator samples labelled by the regressor.
* ``ground_truth_edit_check``: the regressor on exact edits of procedural portraits.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.errors import GanEditorError
from ganeditor.core.progress import Task, null_task
from ganeditor.pipelines.attributes import HELDOUT_SEED_BASE, attribute_deltas, score_array
from ganeditor.pipelines.directions import Direction, fit_boundary_from_scores, project_out, sample_w
from ganeditor.worlds.portraits import attributes_for_seed, render_from_attributes

SUPERVISED = ("interfacegan", "interfacegan-conditional")


def sample_ws(G: nn.Module, n: int, seed: int = 0, psi: float = 1.0) -> torch.Tensor:
    """ws [n, num_ws, w_dim] of z = RandomState(seed).randn(n, z_dim) (the NVlabs seed contract)."""
    device = next(G.parameters()).device
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim)).float().to(device)
    with torch.no_grad():
        return G.mapping(z, torch.zeros([n, G.c_dim], device=device), truncation_psi=psi)


def w_spread(G: nn.Module, n: int = 2000, seed: int = 1) -> float:
    """Typical per-dimension standard deviation of W: sqrt(trace(Cov W) / w_dim)."""
    w = sample_ws(G, n, seed)[:, 0].double()
    return float(w.var(0).mean().sqrt())


def _render_scores(G: nn.Module, model: nn.Module, ws: torch.Tensor, batch: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(ws), batch):
            out.append(score_array(model, G.synthesis(ws[i : i + batch], noise_mode="const")))
    return np.concatenate(out)


def _masked_mean(model: nn.Module, d: np.ndarray, plus: np.ndarray, minus: np.ndarray) -> np.ndarray:
    """Mean over samples of Δ [N, A]; a conditional attribute only where its condition holds at both ends."""
    out = d.mean(0)
    for a, cond in model.conditions.items():
        i, c = model.attributes.index(a), model.attributes.index(cond)
        keep = (plus[:, c] > 0.5) & (minus[:, c] > 0.5)
        out[i] = d[keep, i].mean() if keep.any() else np.nan
    return out


def direction_effects(
    G: nn.Module,  # StyleGAN generator
    model: nn.Module,  # attribute regressor
    ws: torch.Tensor,  # [N, num_ws, w_dim] starting latents
    directions: Sequence[Direction],  # directions to measure (any units: they are normalised)
    step: float | Sequence[float],  # Euclidean step norm in W (one for all, or one per direction)
    batch: int = 16,  # images per forward
    task: Task | None = None,  # progress + cancel
) -> np.ndarray:
    """Mean effect [D, A] in σ units of moving ±step along each unit direction (half the difference)."""
    task = task or null_task()
    assert ws.ndim == 3 and ws.shape[1:] == (G.num_ws, G.w_dim), f"ws {list(ws.shape)}"
    steps = [float(step)] * len(directions) if np.isscalar(step) else [float(s) for s in step]
    assert len(steps) == len(directions)
    sig = np.asarray(model.sigmas, np.float64)
    out = np.zeros((len(directions), len(model.attributes)))
    for k, (d, s) in enumerate(zip(directions, steps)):
        a, b = d.layer_range(G.num_ws)
        v = torch.from_numpy(d.vector / np.linalg.norm(d.vector)).to(ws)
        plus, minus = ws.clone(), ws.clone()
        plus[:, a:b] += s * v
        minus[:, a:b] -= s * v
        sp = _render_scores(G, model, plus, batch)
        sm = _render_scores(G, model, minus, batch)
        out[k] = _masked_mean(model, attribute_deltas(model, sp, sm) / 2 / sig, sp, sm)
        task.report(k + 1, len(directions), f"direction {d.name}")
    return out


def _target_of(d: Direction) -> str | None:
    return d.info.get("attribute") if isinstance(d.info, dict) else None


def entanglement_rows(
    G: nn.Module,  # StyleGAN generator
    model: nn.Module,  # attribute regressor
    sources: dict[str, list[Direction]],  # source name -> directions ('interfacegan', 'sefa', ...)
    n: int = 64,  # latents sampled
    alpha: float = 3.0,  # step norm in units of W's typical per-dimension σ (w_spread)
    target_sigma: float = 2.0,  # re-measure each best direction at the step giving this target change
    max_scale: float = 4.0,  # never step more than this multiple of the base step when calibrating
    seed: int = 0,  # latent seed
    batch: int = 16,  # images per forward
    task: Task | None = None,  # progress + cancel
) -> list[dict[str, object]]:
    """One row per (attribute, source): the best direction and its entanglement (see module docstring)."""
    task = task or null_task()
    ws = sample_ws(G, n, seed)
    base = alpha * w_spread(G)
    names = list(model.attributes)
    total = sum(len(v) for v in sources.values()) + len(names) * len(sources)
    done = 0
    effects = {}
    for src, dirs in sources.items():
        effects[src] = direction_effects(G, model, ws, dirs, base, batch, task.sub(done, len(dirs), total))
        done += len(dirs)
    rows: list[dict[str, object]] = []
    for src, dirs in sources.items():
        eff = effects[src]
        for i, a in enumerate(names):
            own = [k for k, d in enumerate(dirs) if _target_of(d) == a]
            if src in SUPERVISED and not own:
                continue  # no boundary fitted for this attribute
            cands = own or list(range(len(dirs)))
            scored = [(abs(eff[k, i]) if np.isfinite(eff[k, i]) else -1.0, k) for k in cands]
            k = max(scored)[1]
            row = _row(model, a, src, dirs[k], eff[k], base)
            scale = min(max_scale, target_sigma / max(row["target"], 1e-6))
            e2 = direction_effects(G, model, ws, [dirs[k]], base * scale, batch)[0]
            row2 = _row(model, a, src, dirs[k], e2, base * scale)
            row.update({"scale": scale, "target_cal": row2["target"], "others_max_cal": row2["others_max"],
                        "worst_cal": row2["worst"], "others_mean_cal": row2["others_mean"]})  # fmt: skip
            rows.append(row)
            done += 1
            task.report(done, total, f"{src}: {a}")
    return rows


def _row(model: nn.Module, a: str, src: str, d: Direction, eff: np.ndarray, step: float) -> dict[str, object]:
    i = model.attributes.index(a)
    others = {b: abs(float(eff[j])) for j, b in enumerate(model.attributes) if j != i and np.isfinite(eff[j])}
    if a in model.conditions.values():  # e.g. glasses: the lens darkness of a face gaining glasses is undefined
        others = {b: v for b, v in others.items() if model.conditions.get(b) != a}
    worst = max(others, key=others.get) if others else ""
    return {"attribute": a, "source": src, "direction": d.name, "step": float(step),
            "target": abs(float(eff[i])) if np.isfinite(eff[i]) else float("nan"),
            "others_max": others.get(worst, float("nan")), "worst": worst,
            "others_mean": float(np.mean(list(others.values()))) if others else float("nan")}  # fmt: skip


def label_latents(
    G: nn.Module,  # StyleGAN generator
    model: nn.Module,  # attribute regressor
    num: int = 5000,  # samples
    seed: int = 0,  # z seed
    batch: int = 16,  # images per forward
    task: Task | None = None,  # progress + cancel
) -> tuple[np.ndarray, np.ndarray]:
    """Sample W, render, score every attribute at once: (latents [N, w_dim], scores [N, A])."""
    task = task or null_task()
    w = sample_w(G, num, seed)
    device = next(G.parameters()).device
    scores = []
    for i in range(0, num, batch):
        wb = torch.from_numpy(w[i : i + batch]).float().to(device)
        scores.append(_render_scores(G, model, wb[:, None].repeat(1, G.num_ws, 1), batch))
        task.report(min(num, i + batch), num, "labelling samples")
    return w, np.concatenate(scores)


def attribute_boundaries(
    model: nn.Module,  # attribute regressor that labelled the samples
    latents: np.ndarray,  # [N, w_dim]
    scores: np.ndarray,  # [N, A] regressor scores
    ratio: float = 0.2,  # InterFaceGAN: top/bottom fraction taken as the two classes
    conditional: bool = True,  # also the conditional boundaries (every other attribute projected out)
) -> list[Direction]:
    """InterFaceGAN boundaries for every attribute (circular ones as _cos/_sin), in σ-of-W units."""
    names = list(model.attributes)
    targets: list[tuple[str, str, np.ndarray, np.ndarray]] = []  # (name, attribute, rows, score)
    for i, a in enumerate(names):
        rows = np.ones(len(scores), bool)
        if a in model.conditions:
            rows = scores[:, names.index(model.conditions[a])] > 0.5
        if a in model.circular:
            lo, hi = model.ranges[i]
            ang = (scores[:, i] - lo) / (hi - lo) * 2 * np.pi
            targets += [(f"{a}_cos", a, rows, np.cos(ang)), (f"{a}_sin", a, rows, np.sin(ang))]
        else:
            targets.append((a, a, rows, scores[:, i]))
    prim: list[Direction] = []
    for name, a, rows, t in targets:
        if rows.sum() < 10 or np.ptp(t[rows]) == 0:
            continue  # too few samples show this attribute
        normal, acc = fit_boundary_from_scores(latents[rows], t[rows], ratio)
        prim.append(Direction(name, normal, 0, None, "sigma", _spread(latents, normal), "interfacegan",
                              {"attribute": a, "accuracy": acc, "samples": int(rows.sum()), "ratio": ratio}))  # fmt: skip
    if not conditional:
        return prim
    cond: list[Direction] = []
    for d in prim:
        others = [o for o in prim if o.info["attribute"] != d.info["attribute"]]
        try:
            v = project_out(d.vector, *[o.vector for o in others])
        except GanEditorError:
            continue
        cond.append(Direction(f"{d.name}_cond", v, 0, None, "sigma", _spread(latents, v), "interfacegan-conditional",
                              {"attribute": d.info["attribute"], "conditions": [o.name for o in others]}))  # fmt: skip
    return prim + cond


def _spread(latents: np.ndarray, v: np.ndarray) -> float:
    return float(((latents - latents.mean(0)) @ (v / np.linalg.norm(v))).std())


def ground_truth_edit_check(
    model: nn.Module,  # portrait attribute regressor
    n: int = 100,  # people per attribute
    size: int = 64,  # render size
    seed_base: int = HELDOUT_SEED_BASE + 500_000,  # held-out people
    task: Task | None = None,  # progress + cancel
) -> dict[str, dict[str, object]]:
    """Move one attribute by 1σ (glasses: off → on) on held-out people; what the regressor sees, in σ."""
    task = task or null_task()
    names, sig = list(model.attributes), np.asarray(model.sigmas, np.float64)
    seeds = [seed_base + k for k in range(n)]
    out: dict[str, dict[str, object]] = {}
    for i, a in enumerate(names):
        lo, hi = model.ranges[i]
        half = sig[i] / 2
        lows, highs = [], []
        for s in seeds:
            base = attributes_for_seed(s)
            cond = model.conditions.get(a)
            if cond is not None:
                base[cond] = 1.0
            if a in model.binary:
                lo_v, hi_v = lo, hi
            elif a in model.circular:
                lo_v, hi_v = (base[a] - half - lo) % (hi - lo) + lo, (base[a] + half - lo) % (hi - lo) + lo
            else:
                c = float(np.clip(base[a], lo + half, hi - half))
                lo_v, hi_v = c - half, c + half
            lows.append({**base, a: lo_v})
            highs.append({**base, a: hi_v})
        s_lo = score_array(model, render_from_attributes(lows, size, seeds))
        s_hi = score_array(model, render_from_attributes(highs, size, seeds))
        truth = np.zeros(len(names))
        truth[i] = (hi - lo if a in model.binary else 2 * half) / sig[i]
        eff = _masked_mean(model, attribute_deltas(model, s_hi, s_lo) / sig, s_hi, s_lo)
        row = _row(model, a, "ground truth", Direction(a, np.ones(1)), eff, 0.0)
        out[a] = {"truth": float(truth[i]), "seen": float(eff[i]), "others_max": row["others_max"],
                  "worst": row["worst"], "others_mean": row["others_mean"]}  # fmt: skip
        task.report(i + 1, len(names), f"ground-truth edit: {a}")
    return out


def gt_check_markdown(gt: dict[str, dict[str, object]]) -> str:
    """The ground-truth edit check as a markdown table."""
    lines = ["| attribute | true change (σ) | seen by regressor (σ) | max other (σ) | which | mean other (σ) |",
             "|---|---:|---:|---:|---|---:|"]  # fmt: skip
    for a, r in gt.items():
        lines.append(f"| {a} | {r['truth']:.2f} | {r['seen']:.2f} | {r['others_max']:.3f} | {r['worst']} | {r['others_mean']:.3f} |")
    return "\n".join(lines)


def rows_markdown(rows: list[dict[str, object]], goal_target: float = 2.0, goal_other: float = 0.3) -> str:
    """Entanglement rows as a markdown table (✓ = target ≥ goal with every other < goal_other)."""
    lines = ["| attribute | source | best direction | Δtarget (σ) @ step | max other (σ) | which | mean other (σ) "
             f"| step ×k for {goal_target:g}σ | Δtarget (σ) | max other (σ) | which | goal |",
             "|---|---|---|---:|---:|---|---:|---:|---:|---:|---|:-:|"]  # fmt: skip
    for r in rows:
        ok = r["target_cal"] >= goal_target and r["others_max_cal"] < goal_other
        lines.append(f"| {r['attribute']} | {r['source']} | {r['direction']} | {r['target']:.2f} | {r['others_max']:.2f} "
                     f"| {r['worst']} | {r['others_mean']:.3f} | {r['scale']:.2f} | {r['target_cal']:.2f} "
                     f"| {r['others_max_cal']:.2f} | {r['worst_cal']} | {'✓' if ok else ''} |")  # fmt: skip
    return "\n".join(lines)
