"""Axis ranges and tick labels for the small live plots (pure Python, no Qt: tested on its own).

A plot's ranges are always finite and non-empty, whatever its points: none, one, all at the same
step or value, or spanning the whole float range.  A lone value gets a range around it (centred),
a range gets 5 % of headroom, and ticks fall on round numbers (1, 2 or 5 times a power of ten, or
whole decades on a log scale) with just enough decimals to tell them apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BIG = 1e300  # values are clipped to +-BIG so that a range's width stays finite
LOG_FLOOR = -300.0  # log10 of the smallest value a log axis shows


@dataclass(frozen=True)
class Axes:
    """A plot's data ranges (y in transformed units: log10 of the value on a log scale) and its ticks."""

    x0: float
    x1: float
    y0: float
    y1: float
    xticks: list[tuple[float, str]]  # (step, label)
    yticks: list[tuple[float, str]]  # (transformed value, label)


def transform(y: float, log: bool) -> float | None:
    """Where ``y`` goes on the axis (log10 on a log scale); None for what cannot be shown there
    (NaN, inf, and zero or negative values on a log scale)."""
    if not math.isfinite(y):
        return None
    if log:
        return max(math.log10(y), LOG_FLOOR) if y > 0 else None
    return min(max(y, -BIG), BIG)


def span(lo: float, hi: float, pad: float = 0.05, lone: float = 0.1) -> tuple[float, float]:
    """A finite range lo < hi around the data's [lo, hi]: ``pad`` of its width on each side, or, for a
    single value, ``lone`` of its size (1 around 0) so that the value sits in the middle."""
    lo, hi = max(lo, -BIG), min(hi, BIG)
    if hi - lo > 0:
        d = (hi - lo) * pad
    else:
        d = abs(lo) * lone or 1.0
    return lo - d, hi + d


def nice_step(lo: float, hi: float, most: int = 7) -> float:
    """The widest round tick spacing (1, 2 or 5 times a power of ten) that puts at least 3 ticks in
    [lo, hi], or 2 when that would take more than ``most``."""
    power = 10.0 ** math.floor(math.log10(hi - lo))
    two = None
    for step in [m * power / 10**k for k in range(4) for m in (5, 2, 1)]:
        n = math.floor(hi / step) - math.ceil(lo / step) + 1
        if n >= 3:
            return step if n <= most or two is None else two
        two = two or (step if n == 2 else None)
    return step


def label(v: float, step: float) -> str:
    """``v`` with as many digits as a tick spacing of ``step`` needs (no '0.6931' for every tick)."""
    if v == 0 or abs(v) < step * 1e-6:
        return "0"
    big = max(abs(v), step)
    if 1e-3 <= big < 1e7:
        return f"{v:.{max(0, -math.floor(math.log10(step)))}f}"
    digits = math.floor(math.log10(big)) - math.floor(math.log10(step)) + 1
    return f"{v:.{min(max(digits, 1), 12)}g}"


def linear_ticks(lo: float, hi: float, most: int = 7) -> list[tuple[float, str]]:
    """Round values inside [lo, hi] (3, or 2 where 3 would be more than ``most``) with their labels."""
    step = nice_step(lo, hi, most)
    first = math.ceil(lo / step)
    n = int(math.floor(hi / step)) - first + 1
    return [((first + i) * step, label((first + i) * step, step)) for i in range(max(n, 0))]


def log_ticks(lo: float, hi: float, most: int = 7) -> list[tuple[float, str]]:
    """Ticks of a log axis spanning log10 values [lo, hi]: every k-th decade when it spans many, 1-2-5,
    1-3 or whole decades when it spans a few, else round values between 10**lo and 10**hi, at their log10."""
    if hi - lo >= 3:
        every = max(1, math.ceil((hi - lo + 1) / most))
        return [(float(e), f"{10.0 ** e:g}") for e in range(math.ceil(lo / every) * every, math.floor(hi) + 1, every)]
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        ticks = [(math.log10(m) + e, f"{m * 10.0 ** e:g}") for e in range(math.floor(lo), math.ceil(hi) + 1)
                 for m in mantissas if lo <= math.log10(m) + e <= hi]
        if 2 <= len(ticks) <= most:
            return ticks
    return [(math.log10(v), text) for v, text in linear_ticks(10.0 ** lo, 10.0 ** hi, most) if v > 0]


def layout(points: list[tuple[float, float]], log: bool = False, most: int = 7) -> Axes | None:
    """Ranges and at most about ``most`` ticks for ``points`` (step, value); points that cannot be shown
    are left out.  None when no point can be shown."""
    shown = [(x, t) for x, y in points if math.isfinite(x) and (t := transform(y, log)) is not None]
    if not shown:
        return None
    xs, ys = [x for x, _ in shown], [t for _, t in shown]
    lo, hi = min(xs), max(xs)
    if hi > lo:
        x0, x1 = lo, hi
        xticks = [(lo, f"{lo:g}"), (hi, f"step {hi:g}")]
    else:  # one step: the points sit in the middle, under their step's label
        x0, x1 = lo - 1.0, hi + 1.0
        xticks = [(lo, f"step {lo:g}")]
    if log and max(ys) == min(ys):
        y0, y1 = min(ys) - 0.5, max(ys) + 0.5  # half a decade either side
    else:
        y0, y1 = span(min(ys), max(ys))
    yticks = log_ticks(y0, y1, most) if log else linear_ticks(y0, y1, most)
    return Axes(x0, x1, y0, y1, xticks, yticks)
