"""What the portrait sliders offer (no Qt): a human name, group and one-line tooltip per direction,
and the check that a named slider does what its name says.

The check (``check_directions``) moves N seeded latents by the slider's full range (α = ±``SLIDER_RANGE``
in the direction's own units, on its layers), renders both ends and scores them with an attribute
regressor; an attribute's movement is half the mean difference, in population σ.  A direction
fitted for an attribute passes when that attribute moves at least 1σ (in the named sense) and no
other attribute moves more than it.  Results are stored in each direction's ``info['check']`` (the
direction library keeps them), so the window needs no regressor: a named direction is offered
under its human name only with a passing check; otherwise it stays available under "Discovered".
Directions without an attribute (SeFa, GANSpace) are "Discovered"; their check records what they
move most, for the tooltip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch.nn as nn

from ganeditor.core.progress import Task, null_task
from ganeditor.pipelines.directions import Direction
from ganeditor.pipelines.edit_quality import direction_effects, sample_ws

SLIDER_RANGE = 3.0  # a slider runs from -SLIDER_RANGE to +SLIDER_RANGE (σ units for most directions)
MIN_TARGET = 1.0  # σ the target attribute must move at full range
GROUPS = ("Expression", "Age", "Hair", "Glasses", "Pose", "Skin & light", "Background", "My sliders", "Discovered")

# direction name -> (label, group, tooltip: what + and - do); '_cond' variants share their attribute's entry
NAMES: dict[str, tuple[str, str, str]] = {
    "smile": ("Smile", "Expression", "Right: a broader smile; left: towards a frown."),
    "mouth_open": ("Mouth open", "Expression", "Right: opens the mouth; left: closes it."),
    "eye_openness": ("Eyes open", "Expression", "Right: eyes wider open; left: towards closed."),
    "eyebrow": ("Eyebrows raised", "Expression", "Right: raises the eyebrows; left: lowers them (frowning)."),
    "age": ("Age", "Age", "Right: older (wrinkles, grey hair); left: younger."),
    "hair_colour": ("Hair colour", "Hair", "Right: from black through brown and blonde towards red; left: darker."),
    "hair_length": ("Hair length", "Hair", "Right: longer hair, past the shoulders; left: shorter."),
    "beard": ("Beard", "Hair", "Right: stubble to a full beard; left: clean-shaven."),
    "glasses": ("Glasses", "Glasses", "Right: puts glasses on; left: takes them off."),
    "glasses_darkness": ("Lens tint", "Glasses", "Right: darker lenses (sunglasses); left: clear lenses."),
    "head_yaw": ("Head turn", "Pose", "Right: turns the head towards the image's right; left: towards its left."),
    "skin_tone": ("Skin tone", "Skin & light", "Right: darker skin; left: lighter."),
    "light_dir": ("Light direction", "Skin & light", "Right: key light from the image's right; left: from its left."),
    "bg_brightness": ("Background brightness", "Background", "Right: a lighter background; left: darker."),
    "bg_hue_cos": ("Background: cyan ↔ red", "Background", "Right: the background hue towards red; left: towards cyan."),
    "bg_hue_sin": ("Background: violet ↔ green", "Background",
                   "Right: the background hue towards yellow-green; left: towards violet."),
}


@dataclass(frozen=True)
class SliderSpec:
    """How the window shows one direction."""

    name: str  # the direction's name in its library (what edits refer to)
    label: str  # human name
    group: str  # one of GROUPS
    tooltip: str  # one line
    layers: tuple[int, int]  # ws rows moved, inclusive (for the advanced section)
    verified: bool  # a passing regressor check stands behind the label


# ----------------------------------------------------------------------------------------- check


def check_directions(
    G: nn.Module,  # the generator the directions are for
    model: nn.Module,  # attribute regressor (``pipelines.attributes``)
    directions: Sequence[Direction],  # directions to check (their info['check'] is set)
    n: int = 32,  # latents sampled (seeds as NVlabs: RandomState(seed))
    seed: int = 0,  # latent seed
    full_range: float = SLIDER_RANGE,  # α at the slider's end
    batch: int = 16,  # images per forward
    task: Task | None = None,  # progress + cancel
) -> list[dict[str, object]]:
    """Measure every direction at the slider's full range and store the verdict in ``d.info['check']``."""
    task = task or null_task()
    ws = sample_ws(G, n, seed)
    steps = [full_range * float(np.linalg.norm(d.step())) for d in directions]
    eff = direction_effects(G, model, ws, directions, steps, batch, task)
    out = []
    for d, e in zip(directions, eff):
        d.info["check"] = verdict(model, d, e, full_range, n)
        out.append(d.info["check"])
    return out


def target_attribute(d: Direction, attributes: Sequence[str]) -> str | None:
    """The regressor attribute a direction is named for ('bg_hue_cos_cond' -> 'bg_hue'), if any."""
    a = d.info.get("attribute") if isinstance(d.info, dict) else None
    return a if a in attributes else None


def verdict(model: nn.Module, d: Direction, effects: np.ndarray, full_range: float, n: int) -> dict[str, object]:
    """The check record of one direction from its effects [A] (σ at +full range)."""
    names = list(model.attributes)
    moved = {a: round(float(v), 3) for a, v in zip(names, effects) if np.isfinite(v)}
    target = target_attribute(d, names)
    rec: dict[str, object] = {"range": full_range, "n": n, "effects": moved, "target": target}
    if target is None:
        return rec
    t = moved.get(target, float("nan"))
    t = abs(t) if target in model.circular else t  # a hue direction's sign is a matter of where the hue starts
    excluded = {target} | {a for a, c in model.conditions.items() if c == target}  # lens tint with glasses
    others = {a: abs(v) for a, v in moved.items() if a not in excluded}
    worst = max(others, key=others.get) if others else ""
    ok = bool(np.isfinite(t) and t >= MIN_TARGET and others.get(worst, 0.0) <= t)
    rec.update({"target_sigma": round(float(t), 3), "worst": worst, "worst_sigma": others.get(worst, 0.0), "passed": ok})
    return rec


def check_summary(directions: Sequence[Direction]) -> str:
    """A markdown table of the named directions' checks."""
    lines = ["| direction | target | moves target (σ) | largest other (σ) | passes |", "|---|---|---:|---|:-:|"]
    for d in directions:
        c = d.info.get("check") or {}
        if c.get("target"):
            lines.append(f"| {d.name} | {c['target']} | {c['target_sigma']:+.2f} | {c['worst']} {c['worst_sigma']:.2f} "
                         f"| {'yes' if c['passed'] else 'no'} |")  # fmt: skip
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- names


def _base_name(name: str) -> str:
    return name[: -len("_cond")] if name.endswith("_cond") else name


def _effects_line(check: dict, top: int = 2) -> str:
    eff = sorted(((abs(v), a) for a, v in (check.get("effects") or {}).items()), reverse=True)[:top]
    return ", ".join(f"{a.replace('_', ' ')} {v:.1f}σ" for v, a in eff if v >= 0.1)


def slider_specs(directions: Sequence[Direction], num_ws: int) -> list[SliderSpec]:
    """One spec per direction: named and verified ones under their group (the best per attribute),
    the rest under "Discovered" (user-taught ones under "My sliders")."""
    best: dict[str, tuple[float, str]] = {}  # base name -> (score, direction name)
    for d in directions:
        c = d.info.get("check") or {}
        base = _base_name(d.name)
        if c.get("passed") and base in NAMES:
            score = float(c["target_sigma"]) - float(c["worst_sigma"])
            best[base] = max(best.get(base, (-1e9, "")), (score, d.name))
    chosen = {name for _, name in best.values()}
    specs, k = [], 0
    for d in directions:
        a, b = d.layer_range(num_ws)
        layers, check = (a, b - 1), d.info.get("check") or {}
        where = f"layers {a}–{b - 1}"
        if d.source == "user":
            tip = f"Taught from your marks ({d.info.get('labels', '?')} faces); {where}."
            specs.append(SliderSpec(d.name, d.info.get("label", d.name), "My sliders", tip, layers, False))
        elif d.name in chosen:
            label, group, tip = NAMES[_base_name(d.name)]
            tip += f" Checked: {check['target_sigma']:.1f}σ at the end of the slider."
            specs.append(SliderSpec(d.name, label, group, tip, layers, True))
        else:
            k += 1
            moves = _effects_line(check)
            why = ""
            if check.get("target") and not check.get("passed"):
                why = f" Named '{d.name}', but the check found {check['target'].replace('_', ' ')} moves {check['target_sigma']:.1f}σ."
            tip = (f"Found by {d.source or 'an unknown method'} ({d.name}, {where})." + why
                   + (f" Mostly moves: {moves}." if moves else ""))  # fmt: skip
            specs.append(SliderSpec(d.name, f"Discovered {k}", "Discovered", tip, layers, False))
    return specs
