"""Drawing of the procedural street scenes (see ``scenes``): sky, clouds, hills, buildings with their
windows, meadows, greenery, paving, trees, lamps and cars, each painted into ``Layers``.

Every element is a function of its parameters and the time of day.  Only windows, lamps, car lights
and the sky's stars and moon emit light; everything else is a surface the night light multiplies.
A window is lit at night exactly when it shows a curtain by day (the curtain's colour and brightness
also set the light's), so the night a day scene becomes is predictable from the day scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ganeditor.worlds import _draw as D

Tensor = torch.Tensor
WARM_LIGHT, COOL_LIGHT = (1.0, 0.78, 0.42), (0.6, 0.75, 1.0)
WARM_CURTAIN, COOL_CURTAIN = (0.86, 0.74, 0.52), (0.74, 0.8, 0.86)


@dataclass(frozen=True)
class Frame:
    """Pixel coordinates of a canvas: x, y [1,1,H,W] (x in units of the height), pixel size, sizes."""

    x: Tensor
    y: Tensor
    xs: Tensor  # [W] column centres
    px: float
    w: int
    h: int
    aspect: float
    device: torch.device | str

    @classmethod
    def make(cls, w: int, h: int, device) -> "Frame":
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / h
        return cls(xs.view(1, 1, 1, w).expand(1, 1, h, w), ys.view(1, 1, h, 1).expand(1, 1, h, w), xs, 1.0 / h, w, h,
                   w / h, device)

    def rgb(self, c) -> Tensor:
        return torch.as_tensor(np.asarray(c, np.float32), device=self.device).view(1, 3, 1, 1)

    def region(self, y0: float, y1: float, x0: float, x1: float) -> tuple[slice, slice] | None:
        """Rows/columns covering [y0, y1] x [x0, x1] (frame units) plus 2 px, None when off the canvas."""
        rows = slice(max(0, int(y0 * self.h) - 2), min(self.h, int(math.ceil(y1 * self.h)) + 2))
        cols = slice(max(0, int(x0 * self.h) - 2), min(self.w, int(math.ceil(x1 * self.h)) + 2))
        return None if cols.start >= cols.stop or rows.start >= rows.stop else (rows, cols)

    def cut(self, sl: tuple[slice, slice]) -> tuple[Tensor, Tensor]:
        return self.x[:, :, sl[0], sl[1]], self.y[:, :, sl[0], sl[1]]


class Layers:
    """Premultiplied surface colour, surface coverage and occludable emissive light."""

    def __init__(self, h: int, w: int, device) -> None:
        self.surf = torch.zeros(1, 3, h, w, device=device)
        self.cov = torch.zeros(1, 1, h, w, device=device)
        self.emit = torch.zeros(1, 3, h, w, device=device)

    def paint(self, col, a: Tensor, sl: tuple[slice, slice] = (slice(None), slice(None)), emit=None) -> None:
        """Paint a surface of colour ``col`` with coverage ``a`` over the region ``sl`` (rows, cols)."""
        s = (slice(None), slice(None)) + sl
        surf, cov, em = self.surf[s], self.cov[s], self.emit[s]
        surf.lerp_(col if torch.is_tensor(col) else torch.as_tensor(col, dtype=surf.dtype), a)
        cov.mul_(1 - a).add_(a)
        em.mul_(1 - a)
        if emit is not None:
            em.add_(emit)


# --- sky -------------------------------------------------------------------------------------


def night_sky(p, f: Frame) -> Tensor:
    """Dark gradient, horizon glow, the moon (a crescent) and the stars."""
    x, y, T, hz = f.x, f.y, f.rgb, p.horizon
    t = (y / hz).clamp(0, 1)
    sky = T([0.005, 0.01, 0.04]) + (T([0.05, 0.06, 0.12]) - T([0.005, 0.01, 0.04])) * t ** 2
    sky = sky + T([0.16, 0.09, 0.04]) * torch.exp(-(hz - y).clamp_min(0) / 0.06) * (0.4 + 0.6 * p.haze)
    mx, my, mr, off = p.moon
    mx *= f.aspect
    dm = torch.sqrt((x - mx) ** 2 + (y - my) ** 2)
    sky = sky + T([0.12, 0.13, 0.18]) * torch.exp(-dm / (mr * 3))
    shadow = D.cover(D.sd_circle(x, y, mx + off * mr * 1.2, my - 0.3 * mr, mr * 0.95), f.px)  # crescent
    disk = D.cover(dm - mr, f.px) * (1 - shadow)
    maria = 1 - 0.12 * D.waves(x, y, torch.full((1, 2, 1, 1), 0.3), (90., 140.)).abs()
    sky = sky + (T([0.95, 0.93, 0.82]) - sky) * disk * maria
    return _stars(sky, p, f)


def day_sky(p, f: Frame) -> Tensor:
    """Blue gradient (hazier near the horizon) and the sun with its glow."""
    x, y, T = f.x, f.y, f.rgb
    t = (y / p.horizon).clamp(0, 1)
    top, bot = D.hsv(0.6 + p.sky_hue, 0.62 - 0.3 * p.haze, 0.88), D.hsv(0.58 + p.sky_hue, 0.22 - 0.1 * p.haze, 0.97)
    sky = T(top) + (T(bot) - T(top)) * t ** 0.8
    sx, sy, sr = p.sun
    ds = torch.sqrt((x - sx * f.aspect) ** 2 + (y - sy) ** 2)
    sky = sky + T([0.5, 0.4, 0.22]) * torch.exp(-ds / (sr * 4)) + T([0.25, 0.2, 0.1]) * torch.exp(-ds / (sr * 15))
    return torch.maximum(sky, D.cover(ds - sr, f.px) * 1.0).clamp(0, 1)


def clouds(sky: Tensor, p, f: Frame, night: bool) -> Tensor:
    """Soft puffs, lit from above by day, faint by night."""
    x, y, T = f.x, f.y, f.rgb
    for cloud in p.clouds:
        dens = torch.zeros_like(x)
        shade = torch.zeros_like(x)
        for cx, cy, rx, ry in cloud:
            bump = (1 - ((x - cx * f.aspect) / rx) ** 2 - ((y - cy) / ry) ** 2).clamp_min(0)
            dens = torch.maximum(dens, bump)
            shade = torch.maximum(shade, bump * ((cy - y) / ry + 1).clamp(0, 1.5))
        a = D.smoothstep(0.0, 0.35, dens) * 0.95
        col = (T([0.98, 0.98, 1.0]) * (0.72 + 0.28 * shade.clamp(0, 1)) if not night
               else T([0.07, 0.075, 0.11]) + T([0.05, 0.05, 0.06]) * shade.clamp(0, 1))
        sky = sky + (col - sky) * a
    return sky


def _stars(sky: Tensor, p, f: Frame) -> Tensor:
    """Splat the stars bilinearly (resolution independent positions)."""
    if not p.stars:
        return sky
    w, h = f.w, f.h
    s = torch.as_tensor(np.asarray(p.stars, np.float32))
    fx, fy = s[:, 0] * w - 0.5, s[:, 1] * h - 0.5
    x0, y0 = fx.floor(), fy.floor()
    acc = torch.zeros(h * w)
    for dx in (0, 1):
        for dy in (0, 1):
            wt = (1 - (fx - x0 - dx).abs()) * (1 - (fy - y0 - dy).abs())
            xi, yi = (x0 + dx).long(), (y0 + dy).long()
            ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            acc.index_add_(0, (yi * w + xi)[ok], (wt * (0.3 + 1.2 * s[:, 2]))[ok])
    return sky + acc.view(1, 1, h, w).to(sky.device) * f.rgb([0.9, 0.92, 1.0])


# --- background: hills, buildings, meadows, greenery ------------------------------------------


def hills(L: Layers, p, f: Frame) -> None:
    hill = torch.full_like(f.xs, p.horizon - 0.04)
    for amp, fr, ph in p.hills:
        hill = hill - amp * (0.5 + 0.5 * torch.sin(f.xs * fr + ph))
    hcol = D.hsv(0.4, 0.25, 0.45) * (1 - p.haze) + np.array([0.62, 0.7, 0.8]) * p.haze
    L.paint(f.rgb(hcol), D.cover(hill.view(1, 1, 1, f.w) - f.y, f.px))


def building(L: Layers, b: dict, f: Frame, hz: float, night: bool) -> None:
    """A facade (far row paler), its roof, and its grid of windows."""
    x0, x1, top = b["x0"] * f.aspect, b["x1"] * f.aspect, b["top"]
    roof_h = 0.04 if b["roof"] == 1 else 0.0
    sl = f.region(top - roof_h - 0.01, hz + 0.01, x0, x1)
    if sl is None:
        return
    xs, ys = f.cut(sl)
    col = f.rgb(b["colour"])
    far = b["layer"] == 0
    if far:
        col = col * 0.8 + f.rgb([0.55, 0.6, 0.68]) * 0.2
    cx, hw = (x0 + x1) / 2, (x1 - x0) / 2
    d = D.sd_box(xs, ys, cx, (top + hz) / 2 + 0.005, hw, (hz - top) / 2 + 0.005)
    if b["roof"] == 1:  # peaked roof
        d = torch.minimum(d, torch.maximum((xs - cx).abs() * roof_h / hw + (ys - top + roof_h), top - ys - 0.0))
    elif b["roof"] == 2:  # stepped top
        d = torch.minimum(d, D.sd_box(xs, ys, cx, top - 0.015, hw * 0.5, 0.016))
    shade = 0.92 + 0.08 * ((xs - x0) / (2 * hw)).clamp(0, 1)  # a little light falloff across the facade
    L.paint(col * shade, D.cover(d, f.px), sl)
    _windows(L, b, f, sl, xs, ys, hz, night)


def _windows(L: Layers, b: dict, f: Frame, sl, xs: Tensor, ys: Tensor, hz: float, night: bool) -> None:
    """Window grid: dark glass, or a curtain by day that glows by night (its colour and brightness)."""
    x0, x1, top = b["x0"] * f.aspect, b["x1"] * f.aspect, b["top"]
    hw = (x1 - x0) / 2
    cols, rows, fw, fh = b["win"]
    cw, ch = (2 * hw * 0.88) / cols, (hz - top - 0.04) / rows
    if ch < 3 * f.px or cw < 3 * f.px:
        return
    u_, v_ = (xs - (x0 + hw * 0.12)) / cw, (ys - (top + 0.02)) / ch
    iu, iv = u_.floor(), v_.floor()
    inside = (iu >= 0) & (iu < cols) & (iv >= 0) & (iv < rows)
    a = D.cover(D.sd_box((u_ - iu) * cw, (v_ - iv) * ch, cw / 2, ch / 2, cw * fw / 2, ch * fh / 2), f.px) * inside.float()
    rnd = D.hash_noise(iu + 0.5, iv + 0.5, 1.0, torch.tensor(float(b["seed"] % 9973)))
    curtain = (rnd < b["lit"]).float()
    cool = ((rnd * 7.0) % 1.0 < 0.15).float()
    level = 0.55 + 0.45 * ((rnd * 13.0) % 1.0)
    if night:
        glow = f.rgb(WARM_LIGHT) + (f.rgb(COOL_LIGHT) - f.rgb(WARM_LIGHT)) * cool
        L.paint(f.rgb([0.02, 0.02, 0.03]), a, sl, emit=glow * a * curtain * level)
        return
    far = b["layer"] == 0
    glass = f.rgb([0.28, 0.36, 0.46]) * (0.75 + 0.5 * (rnd * 11.0) % 1.0)
    glass = glass + 0.12 * (1 - (ys - top) / (hz - top + 1e-3)).clamp(0, 1)  # sky reflection at the top
    cloth = (f.rgb(WARM_CURTAIN) + (f.rgb(COOL_CURTAIN) - f.rgb(WARM_CURTAIN)) * cool) * (0.45 + 0.45 * level)
    folds = 0.9 + 0.1 * torch.cos((u_ - iu) * 6 * math.pi)  # vertical folds of the fabric
    L.paint((glass + (cloth * folds - glass) * curtain) * (0.85 if far else 1.0), a, sl)


def meadow(L: Layers, m: dict, f: Frame, hz: float) -> None:
    """A grassy rise between the hills and the street where no building stands, with blades of grass."""
    x0, x1 = m["x0"] * f.aspect, m["x1"] * f.aspect
    sl = f.region(hz - m["height"] - 0.02, hz + 0.01, x0 - 0.05, x1 + 0.05)
    if sl is None:
        return
    xs, ys = f.cut(sl)
    cx, hw = (x0 + x1) / 2, (x1 - x0) / 2
    crest = hz - m["height"] * (1 - ((xs - cx) / (hw + 0.05)) ** 2).clamp_min(0) ** 0.5
    blades = D.hash_noise(xs, ys * 0.25, 0.004, torch.tensor(float(m["seed"] % 9973)))  # tall thin cells
    tone = 0.7 + 0.35 * blades + 0.25 * ((ys - crest) / (m["height"] + 1e-3)).clamp(0, 1)
    L.paint(f.rgb(D.hsv(m["hue"], 0.5, 0.45)) * tone, D.cover(crest - ys, f.px) * D.cover(ys - hz - 0.005, f.px), sl)


def greenery(L: Layers, g: dict, f: Frame, base: float) -> None:
    """A band of dense foliage (a park's trees or a hedge) standing on the street line, leaves textured."""
    x0, x1, top = g["x0"] * f.aspect, g["x1"] * f.aspect, g["top"]
    sl = f.region(top - 0.05, base + 0.01, x0 - 0.05, x1 + 0.05)
    if sl is None:
        return
    xs, ys = f.cut(sl)
    seed = torch.tensor(float(g["seed"] % 9973))
    crowns = top + 0.03 * D.waves(xs, ys * 0, torch.full((1, 2, 1, 1), g["seed"] % 89 / 89.0), (60., 110.)).abs()
    edge = torch.maximum(crowns - ys, torch.maximum(x0 - xs, xs - x1))
    leaves = 0.6 * D.hash_noise(xs, ys, 0.005, seed) + 0.4 * D.hash_noise(xs, ys, 0.013, seed + 1)
    depth = ((ys - top) / (base - top + 1e-3)).clamp(0, 1)
    col = f.rgb(D.hsv(g["hue"], 0.55, 0.4)) * (0.55 + 0.7 * leaves) * (1.1 - 0.45 * depth)
    L.paint(col, D.cover(edge + 0.004 * (leaves - 0.5), f.px, 1.3) * D.cover(ys - base, f.px), sl)


# --- the street ----------------------------------------------------------------------------------


def ground(L: Layers, p, f: Frame) -> None:
    """Sidewalk (slabs or cobbles), curb, road (asphalt with lane dashes, or cobbles)."""
    x, y, T, px = f.x, f.y, f.rgb, f.px
    walk = D.cover(p.horizon - y, px)
    if p.paving == "cobbles":
        L.paint(T([0.5, 0.48, 0.45]) * _cobbles(x, y, px, 0.016, 3.0), walk)
    else:
        slab = ((x / 0.06) % 1.0 - 0.5).abs() * 0.06 - 0.029  # joints between paving slabs
        L.paint(T([0.55, 0.54, 0.52]) * (0.93 + 0.05 * D.waves(x, y, torch.full((1, 2, 1, 1), 0.7), (40., 70.))
                                         - 0.12 * D.cover(-slab, px)), walk)
    road_y = p.walk_y
    road = D.cover(road_y - y, px)
    if p.paving == "cobbles":
        L.paint(T([0.36, 0.34, 0.32]) * _cobbles(x, y, px, 0.024, 5.0), road)
    else:
        L.paint(T([0.2, 0.2, 0.21]) * (0.9 + 0.1 * D.hash_noise(x, y, 2 * px, torch.tensor(1.0))), road)
    L.paint(T([0.7, 0.7, 0.68]), D.cover((y - road_y - 0.006).abs() - 0.004, px))
    if p.paving != "cobbles":
        lane_y = (road_y + 1.0) / 2 + 0.02
        dash = D.cover(torch.maximum((y - lane_y).abs() - 0.006,
                                     ((x / 0.16 + p.lane_phase) % 1.0 - 0.5).abs() * 0.16 - 0.045), px)
        L.paint(T([0.85, 0.82, 0.6]), dash)


def _cobbles(x: Tensor, y: Tensor, px: float, size: float, seed: float) -> Tensor:
    """Brightness of a cobblestone pavement: stones in staggered rows, each its own tone, dark joints."""
    row = torch.floor(y / (size * 0.7))
    u = x / size + 0.5 * (row % 2)
    v = y / (size * 0.7)
    tone = D.hash_noise(torch.floor(u) + 0.5, row + 0.5, 1.0, torch.tensor(seed))
    joint = torch.minimum((u - torch.floor(u) - 0.5).abs() * size, (v - row - 0.5).abs() * size * 0.7)
    edge = D.cover(joint - 0.42 * size * 0.7, px, 1.5)
    return (0.8 + 0.35 * tone) * (1 - 0.55 * edge)


def tree(L: Layers, tr: dict, f: Frame) -> None:
    tx = tr["x"] * f.aspect
    base, top, r = tr["base"], tr["base"] - tr["height"], tr["radius"]
    sl = f.region(top - r * 1.5, base, tx - r * 1.8, tx + r * 1.8)
    if sl is None:
        return
    xs, ys = f.cut(sl)
    trunk = D.sd_box(xs, ys, tx, (base + top) / 2, 0.008, (base - top) / 2)
    L.paint(f.rgb([0.3, 0.2, 0.12]), D.cover(trunk, f.px), sl)
    rng = np.random.default_rng(tr["seed"])
    d = torch.full_like(xs, 1.0)
    for _ in range(5):
        ox, oy, rr = rng.uniform(-0.7, 0.7) * r, rng.uniform(-0.6, 0.3) * r, rng.uniform(0.55, 0.8) * r
        d = torch.minimum(d, D.sd_circle(xs, ys, tx + ox, top + oy, rr))
    d = d + 0.006 * D.waves(xs, ys, torch.full((1, 2, 1, 1), tr["seed"] % 97 / 97.0), (180., 260.))
    leaf = D.hsv(tr["hue"], 0.55, 0.42)
    lit = (0.75 + 0.45 * ((top - ys) / r + 0.5).clamp(0, 1))
    L.paint(f.rgb(leaf) * lit, D.cover(d, f.px, 1.3), sl)


def lamp(L: Layers, lp: dict, f: Frame, walk_y: float, night: bool) -> tuple[float, float, float]:
    """A street lamp; returns (head x, head y, foot y) for its light."""
    x, y, px = f.x, f.y, f.px
    lx, base, top = lp["x"] * f.aspect, walk_y - 0.01, walk_y - 0.01 - lp["height"]
    hx, hy = lx + lp["side"] * 0.035, top + 0.01
    pole = f.rgb([0.16, 0.18, 0.17])
    L.paint(pole, D.cover(D.sd_box(x, y, lx, (base + top) / 2, 0.0035, (base - top) / 2), px))
    L.paint(pole, D.cover(D.sd_segment(x, y, lx, top, hx, hy - 0.004, 0.0025), px))
    head = D.cover(D.sd_box(x, y, hx, hy, 0.012, 0.005, 0.003), px)
    bulb = D.cover(D.sd_box(x, y, hx, hy + 0.005, 0.008, 0.002, 0.001), px)
    L.paint(pole, head)
    if night:
        L.paint(f.rgb([0.3, 0.28, 0.2]), bulb, emit=f.rgb([1.0, 0.9, 0.65]) * bulb)
    else:
        L.paint(f.rgb([0.7, 0.72, 0.7]), bulb)
    return hx, hy + 0.006, base


def car(L: Layers, c: dict, f: Frame, night: bool) -> tuple[float, float, float, float]:
    """A side view of a car; by night headlights and tail lights.  Returns (front x, y, direction, rear x)."""
    x, y, px, T = f.x, f.y, f.px, f.rgb
    cx, base, ln, dr = c["x"] * f.aspect, c["y"], c["length"], c["dir"]
    hl = ln / 2
    body = D.sd_box(x, y, cx, base - 0.03, hl, 0.018, 0.01)
    cabin = D.sd_box(x, y, cx - dr * hl * 0.12, base - 0.058, hl * 0.55, 0.016, 0.012)
    L.paint(T(c["colour"]) * (0.85 + 0.2 * ((base - 0.045 - y) / 0.02).clamp(0, 1)), D.cover(torch.minimum(body, cabin), px))
    glass = D.cover(D.sd_box(x, y, cx - dr * hl * 0.12, base - 0.058, hl * 0.48, 0.011, 0.008), px)
    L.paint(T([0.25, 0.32, 0.4] if not night else [0.03, 0.03, 0.04]), glass)
    for wx in (cx - hl * 0.62, cx + hl * 0.62):
        L.paint(T([0.06, 0.06, 0.06]), D.cover(D.sd_circle(x, y, wx, base - 0.012, 0.014), px))
        L.paint(T([0.5, 0.5, 0.52]), D.cover(D.sd_circle(x, y, wx, base - 0.012, 0.006), px))
    front = D.cover(D.sd_box(x, y, cx + dr * (hl - 0.005), base - 0.035, 0.006, 0.005, 0.002), px)
    back = D.cover(D.sd_box(x, y, cx - dr * (hl - 0.003), base - 0.036, 0.003, 0.004, 0.001), px)
    if night:
        L.paint(T([0.8, 0.8, 0.7]), front, emit=T([1.0, 0.97, 0.85]) * front)
        L.paint(T([0.5, 0.05, 0.05]), back, emit=T([1.0, 0.1, 0.08]) * back)
    else:
        L.paint(T([0.85, 0.85, 0.8]), front)
        L.paint(T([0.6, 0.1, 0.1]), back)
    return cx + dr * hl, base - 0.002, dr, cx - dr * hl


def night_light(L: Layers, sky: Tensor, f: Frame, lamps: list, beams: list) -> Tensor:
    """Compose by night: moonlight and lamp pools multiply surfaces; emissive light adds, with halos."""
    x, y, T = f.x, f.y, f.rgb
    light = T([0.07, 0.08, 0.13]).expand(1, 3, f.h, f.w).clone()
    for hx, hy, base in lamps:
        pool = torch.exp(-((x - hx) / 0.1) ** 2 - ((y - base - 0.02) / 0.045) ** 2)
        near = 1.0 / (1.0 + ((x - hx) ** 2 + (y - hy) ** 2) / 0.003)
        light = light + T([1.0, 0.72, 0.38]) * (0.9 * pool + 0.35 * near)
    for bx, by, bd, _ in beams:  # headlight beams on the road
        ahead = ((x - bx) * bd).clamp_min(0)
        beam = torch.exp(-ahead / 0.12 - ((y - by) / (0.006 + 0.08 * ahead)) ** 2) * (ahead > 0).float()
        light = light + T([1.0, 0.95, 0.8]) * 0.8 * beam
    img = sky * (1 - L.cov) + L.surf * light + L.emit
    if lamps:
        glow = sum(torch.exp(-torch.sqrt((x - hx) ** 2 + (y - hy) ** 2) / 0.02) for hx, hy, _ in lamps)
        img = img + T([0.9, 0.7, 0.4]) * 0.7 * glow
    for bx, by, bd, tx in beams:  # halos of head and tail lights
        head = torch.exp(-torch.sqrt((x - bx) ** 2 + (y - by + 0.033) ** 2) / 0.01)
        tail = torch.exp(-torch.sqrt((x - tx) ** 2 + (y - by + 0.034) ** 2) / 0.007)
        img = img + T([1.0, 0.95, 0.8]) * 0.6 * head + T([1.0, 0.1, 0.05]) * 0.35 * tail
    return img
