"""Physical damage of prints for the degradation model: dust, scratches, creases (with their masks)
and paper texture.  Every random draw comes from the generator passed in.

Shapes are drawn anti-aliased on a canvas ``SUPERSAMPLE`` times finer than the image and box-reduced,
so widths below a pixel come out as partial coverage.  Each mark has an opacity (varying along a
scratch, so scratches fade in and out) and a colour: bright where emulsion is gone or dust sat on
the negative, dark where dust or dirt sits on the print.  The ground-truth mask is where a mark's
visible opacity exceeds ``MASK_THRESHOLD``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

SUPERSAMPLE = 3
MASK_THRESHOLD = 0.2  # visible opacity above which a pixel counts as damaged


def blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an [H,W] or [H,W,C] float32 array (separable, reflect padding at the borders)."""
    if sigma <= 0:
        return a
    r = max(1, int(math.ceil(sigma * 3)))
    g = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
    g = g / g.sum()
    t = torch.from_numpy(np.ascontiguousarray(a if a.ndim == 3 else a[..., None], np.float32)).permute(2, 0, 1)[:, None]
    mode = "reflect" if min(t.shape[-2:]) > r else "replicate"
    t = F.conv2d(F.pad(t, (r, r, 0, 0), mode=mode), g.view(1, 1, 1, -1))
    t = F.conv2d(F.pad(t, (0, 0, r, r), mode=mode), g.view(1, 1, -1, 1))
    out = t[:, 0].permute(1, 2, 0).numpy()
    return out if a.ndim == 3 else out[..., 0]


class _Mark:
    """A local canvas covering image pixels [x0, x1) x [y0, y1), SUPERSAMPLE times finer."""

    def __init__(self, pts: np.ndarray, margin: float, h: int, w: int):
        lo, hi = pts.min(0) - margin, pts.max(0) + margin
        self.x0, self.y0 = max(0, int(math.floor(lo[0]))), max(0, int(math.floor(lo[1])))
        self.x1, self.y1 = min(w, int(math.ceil(hi[0])) + 1), min(h, int(math.ceil(hi[1])) + 1)
        self.empty = self.x1 <= self.x0 or self.y1 <= self.y0
        s = SUPERSAMPLE
        self.im = Image.new("L", (max(1, self.x1 - self.x0) * s, max(1, self.y1 - self.y0) * s), 0)
        self.draw = ImageDraw.Draw(self.im)

    def local(self, pts: np.ndarray) -> list[tuple[float, float]]:
        """Image pixel coordinates -> canvas coordinates (pixel centres map to sample centres)."""
        s = SUPERSAMPLE
        q = (pts - np.array([self.x0, self.y0])) * s + (s - 1) / 2
        return [tuple(p) for p in q]

    def composite(self, out: np.ndarray, visible: np.ndarray, colour: np.ndarray) -> None:
        """Blend the drawn opacity with ``colour`` into ``out``; keep the visible opacity."""
        if self.empty:
            return
        alpha = np.asarray(self.im.reduce(SUPERSAMPLE), np.float32) / 255.0
        region = (slice(self.y0, self.y1), slice(self.x0, self.x1))
        a = alpha[..., None]
        out[region] = out[region] * (1 - a) + colour * a
        visible[region] = np.maximum(visible[region], alpha)


def _scratch_path(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A gently curving polyline [N, 2] (x, y) in image pixels: mostly vertical (film) or any direction (print)."""
    diag = math.hypot(h, w)
    length = diag * rng.uniform(0.05, 0.8)
    if rng.random() < 0.5:  # along the film
        angle = math.pi / 2 + rng.normal(0, 0.08)
    else:
        angle = rng.uniform(0, math.pi)
    x, y = rng.uniform(0, w), rng.uniform(0, h)
    n = max(4, int(length / 6))
    step = length / n
    turn = rng.normal(0, 0.03)
    pts = [(x, y)]
    for _ in range(n):
        turn = 0.9 * turn + rng.normal(0, 0.02)
        angle += turn
        x, y = x + step * math.cos(angle), y + step * math.sin(angle)
        pts.append((x, y))
    return np.asarray(pts)


def _blob(rng: np.random.Generator, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """An irregular closed polygon of mean radius ``r`` around (cx, cy)."""
    k = int(rng.integers(6, 11))
    angles = np.sort(rng.uniform(0, 2 * math.pi, k))
    radii = r * rng.uniform(0.5, 1.3, k)
    return [(cx + rr * math.cos(a), cy + rr * math.sin(a)) for a, rr in zip(angles, radii)]


def _fibre(rng: np.random.Generator, cx: float, cy: float, size: float) -> np.ndarray:
    """A short curly fibre or hair [N, 2] (steps of 1.5-4 pixels times ``size``)."""
    n = int(rng.integers(4, 10))
    angle = rng.uniform(0, 2 * math.pi)
    step = rng.uniform(1.5, 4.0) * size
    pts = [(cx, cy)]
    for _ in range(n):
        angle += rng.normal(0, 0.5)
        cx, cy = cx + step * math.cos(angle), cy + step * math.sin(angle)
        pts.append((cx, cy))
    return np.asarray(pts)


def _mark_colour(rng: np.random.Generator, bright: bool) -> np.ndarray:
    base = rng.uniform(0.82, 1.0) if bright else rng.uniform(0.0, 0.25)
    return np.clip(base + rng.normal(0, 0.03, 3), 0, 1).astype(np.float32)


def _draw_scratch(rng: np.random.Generator, out: np.ndarray, visible: np.ndarray, size: float) -> None:
    h, w, _ = out.shape
    pts = _scratch_path(rng, h, w)
    crease = rng.random() < 0.15
    width = (rng.uniform(2.0, 5.0) if crease else rng.uniform(0.6, 2.6)) * size
    mark = _Mark(pts, width + 2, h, w)
    q = mark.local(pts)
    phase, freq = rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 3.0)  # opacity fades in and out along it
    peak = rng.uniform(0.45, 1.0) * (0.6 if crease else 1.0)
    for i in range(len(q) - 1):
        o = peak * np.clip(0.6 + 0.6 * math.sin(phase + freq * i / len(q) * 2 * math.pi), 0, 1)
        mark.draw.line([q[i], q[i + 1]], fill=int(255 * o), width=max(1, round(width * SUPERSAMPLE)))
    mark.composite(out, visible, _mark_colour(rng, rng.random() < 0.7))


def _draw_dust(rng: np.random.Generator, out: np.ndarray, visible: np.ndarray, size: float) -> None:
    h, w, _ = out.shape
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    o = int(255 * rng.uniform(0.5, 1.0))
    if rng.random() < 0.25:
        pts = _fibre(rng, cx, cy, size)
        mark = _Mark(pts, 3 * size, h, w)
        mark.draw.line(mark.local(pts), fill=o, width=max(1, round(rng.uniform(0.6, 1.4) * size * SUPERSAMPLE)))
    else:
        r = rng.uniform(0.5, 1.0) * rng.uniform(0.5, 4.0) * size
        pts = np.asarray(_blob(rng, cx, cy, r))
        mark = _Mark(pts, 2, h, w)
        mark.draw.polygon(mark.local(pts), fill=o)
    mark.composite(out, visible, _mark_colour(rng, rng.random() < 0.5))


def draw_damage(x: np.ndarray, rng: np.random.Generator, n_scratches: int, n_dust: int,
                size: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_scratches`` scratches/creases and ``n_dust`` dust specks/fibres on ``x`` [H,W,3] float,
    their widths and radii scaled by ``size`` (a scan's resolution); returns the damaged image and the
    mask [H,W] bool of visibly damaged pixels."""
    out = np.array(x, np.float32, copy=True)
    visible = np.zeros(x.shape[:2], np.float32)
    for _ in range(n_scratches):
        _draw_scratch(rng, out, visible, size)
    for _ in range(n_dust):
        _draw_dust(rng, out, visible, size)
    return np.clip(out, 0, 1), visible > MASK_THRESHOLD


def _fractal(rng: np.random.Generator, h: int, w: int, sigmas: tuple[float, ...]) -> np.ndarray:
    """Unit-variance smooth noise: Gaussian noise blurred at several scales, summed (drawn at low res)."""
    total = np.zeros((h, w), np.float32)
    for s in sigmas:
        f = max(1, int(s // 2))  # draw at 1/f resolution, blur there, upsample
        small = rng.standard_normal((max(1, h // f + 1), max(1, w // f + 1))).astype(np.float32)
        small = blur(small, s / f)
        small /= max(float(small.std()), 1e-6)
        up = np.asarray(Image.fromarray(small).resize((w, h) if f > 1 else small.shape[::-1], Image.Resampling.BILINEAR))
        total += up[:h, :w]
    return total / max(float(total.std()), 1e-6)


def paper_texture(x: np.ndarray, rng: np.random.Generator, amount: float, vignette: float) -> np.ndarray:
    """Multiplicative paper texture (blotches and fibres) and radial vignetting."""
    h, w, _ = x.shape
    tex = _fractal(rng, h, w, (1.0, 6.0, 30.0))
    m = 1 + amount * tex
    if vignette > 0:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        m = m * (1 - vignette * 0.5 * r2)
    return np.clip(x * m[..., None], 0, 1)
