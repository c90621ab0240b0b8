"""Procedural street scenes that can be rendered by day and by night from the same parameters.

Geometry (hills, buildings, windows, trees, street lamps, road, clouds) comes only from
``SceneParams``; the time of day changes colours and lighting: by day a sun, blue sky and clouds,
dark glass windows and lamps off; by night a dark sky with stars and the moon, lit windows, and
street lamps casting warm pools of light.  Surfaces are composited with premultiplied coverage so
the night light field multiplies only surfaces, and emissive light (windows, lamps, stars) is
occluded by what stands in front of it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ganeditor.worlds import _draw as D

Tensor = torch.Tensor
TIMES = ("day", "night")


@dataclass
class SceneParams:
    """Everything that fixes a scene's geometry and materials (JSON-able; fractions of the frame)."""

    horizon: float  # y of the ground line behind the buildings
    walk_y: float  # y where the sidewalk meets the road
    sun: tuple[float, float, float]  # x, y, radius (day)
    moon: tuple[float, float, float, float]  # x, y, radius, crescent offset (night)
    sky_hue: float  # small shift of the day sky hue
    haze: float  # 0 clear .. 1 hazy
    hills: list[tuple[float, float, float]]  # (amplitude, frequency, phase) of the far hills
    buildings: list[dict]  # x0, x1, top, colour, roof, layer, win (cols, rows, w, h), lit, seed
    trees: list[dict]  # x, base, height, radius, hue, seed
    lamps: list[dict]  # x, height, side
    cars: list[dict]  # x, y (wheel line), length, colour, dir (+1 drives to the right)
    clouds: list[list[tuple[float, float, float, float]]]  # puffs (x, y, rx, ry) per cloud
    stars: list[tuple[float, float, float]]  # x, y, brightness
    lane_phase: float
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able dict of the parameters."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SceneParams":
        """Inverse of ``to_dict``."""
        return cls(**d)


def sample_scene(rng: np.random.Generator) -> SceneParams:
    """Draw a random street scene."""
    u = rng.uniform
    horizon = u(0.62, 0.74)
    walk_y = horizon + u(0.06, 0.1)
    buildings = []
    for layer, (h_lo, h_hi, w_lo, w_hi) in enumerate([(0.25, 0.5, 0.08, 0.16), (0.15, 0.55, 0.1, 0.24)]):
        x = u(-0.1, 0.0)
        while x < 1.0:
            w = u(w_lo, w_hi)
            gap = u(0.0, 0.03) if layer else u(-0.02, 0.02)
            if layer == 0 or u() < 0.8:
                top = horizon - u(h_lo, h_hi) * (0.75 if layer == 0 else 1.0)
                tone = u(0.25, 0.85)
                hue = rng.choice([0.05, 0.08, 0.1, 0.6, 0.0]) + rng.normal(0, 0.02)
                sat = u(0.05, 0.4)
                buildings.append({
                    "x0": x, "x1": x + w, "top": top, "colour": D.hsv(hue % 1, sat, tone).tolist(),
                    "roof": int(rng.choice([0, 0, 1, 2])), "layer": layer,
                    "win": [int(max(2, round(w / u(0.025, 0.045)))),
                            int(max(2, round((horizon - top) / u(0.04, 0.07)))), u(0.45, 0.7), u(0.45, 0.7)],
                    "lit": u(0.15, 0.65), "seed": int(rng.integers(1 << 30)),
                })
            x += w + gap
    trees = [{"x": u(0, 1), "base": walk_y - u(0.0, 0.02), "height": u(0.1, 0.2), "radius": u(0.045, 0.09),
              "hue": u(0.22, 0.36), "seed": int(rng.integers(1 << 30))} for _ in range(int(rng.integers(0, 5)))]
    n_l = int(rng.integers(1, 5))
    lamps = [{"x": (i + u(0.2, 0.8)) / n_l, "height": u(0.2, 0.3), "side": float(rng.choice([-1.0, 1.0]))}
             for i in range(n_l)]
    cars = []
    for _ in range(int(rng.integers(0, 4))):
        direction = float(rng.choice([-1.0, 1.0]))
        lane = walk_y + 0.05 + (1 - walk_y) * (0.3 if direction < 0 else 0.78)
        cars.append({"x": u(0, 1), "y": min(lane, 0.985), "length": u(0.13, 0.19), "dir": direction,
                     "colour": D.hsv(u(0, 1), u(0.0, 0.8), u(0.15, 0.9)).tolist()})
    clouds = []
    for _ in range(int(rng.integers(0, 6))):
        cx, cy, s = u(-0.1, 1.1), u(0.05, horizon - 0.3), u(0.04, 0.1)
        clouds.append([(cx + u(-2, 2) * s, cy + u(-0.3, 0.3) * s, s * u(0.6, 1.3), s * u(0.35, 0.6))
                       for _ in range(int(rng.integers(3, 8)))])
    stars = [(u(0, 1), u(0, horizon), float(rng.beta(1.0, 4.0))) for _ in range(int(rng.integers(80, 260)))]
    return SceneParams(
        horizon=horizon, walk_y=walk_y, sun=(u(0.1, 0.9), u(0.08, 0.3), u(0.025, 0.04)),
        moon=(u(0.1, 0.9), u(0.06, 0.25), u(0.025, 0.04), u(-0.6, 0.6)), sky_hue=float(rng.normal(0, 0.02)),
        haze=u(0, 1), hills=[(u(0.01, 0.05), u(4, 14), u(0, 6.3)) for _ in range(3)], buildings=buildings,
        trees=trees, lamps=lamps, cars=cars, clouds=clouds, stars=stars, lane_phase=u(0, 1),
        seed=int(rng.integers(1 << 30)))


def scene_for_seed(seed: int) -> SceneParams:
    """The scene with this seed."""
    return sample_scene(np.random.default_rng([int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF, 7]))


class _Layers:
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


def render_scene(params: SceneParams, size: tuple[int, int] = (256, 256), time: str = "day",
                 device: torch.device | str = "cpu") -> np.ndarray:
    """Render ``params`` at ``size`` = (W, H) by 'day' or 'night' as uint8 [H,W,3]."""
    if time not in TIMES:
        raise ValueError(f"time must be one of {TIMES}, not {time!r}")
    with torch.inference_mode():
        img = _render(params, int(size[0]), int(size[1]), time == "night", device)
    return D.to_uint8(img)[0]


def paired(seed: int, size: tuple[int, int] = (256, 256), device: torch.device | str = "cpu",
           ) -> tuple[np.ndarray, np.ndarray]:
    """The day and the night rendering of scene ``seed``."""
    p = scene_for_seed(seed)
    return render_scene(p, size, "day", device), render_scene(p, size, "night", device)


def _rgb(c, device) -> Tensor:
    return torch.as_tensor(np.asarray(c, np.float32), device=device).view(1, 3, 1, 1)


def _render(p: SceneParams, w: int, h: int, night: bool, device) -> Tensor:
    aspect = w / h
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / h  # x in units of the height
    y = ys.view(1, 1, h, 1).expand(1, 1, h, w)
    x = xs.view(1, 1, 1, w).expand(1, 1, h, w)
    px = 1.0 / h
    T = lambda c: _rgb(c, device)  # noqa: E731
    hz = p.horizon

    # sky
    t = (y / hz).clamp(0, 1)
    if night:
        sky = T([0.005, 0.01, 0.04]) + (T([0.05, 0.06, 0.12]) - T([0.005, 0.01, 0.04])) * t ** 2
        sky = sky + T([0.16, 0.09, 0.04]) * torch.exp(-(hz - y).clamp_min(0) / 0.06) * (0.4 + 0.6 * p.haze)
        mx, my, mr, off = p.moon
        mx *= aspect
        dm = torch.sqrt((x - mx) ** 2 + (y - my) ** 2)
        sky = sky + T([0.12, 0.13, 0.18]) * torch.exp(-dm / (mr * 3))
        shadow = D.cover(D.sd_circle(x, y, mx + off * mr * 1.2, my - 0.3 * mr, mr * 0.95), px)  # crescent
        disk = D.cover(dm - mr, px) * (1 - shadow)
        maria = 1 - 0.12 * D.waves(x, y, torch.full((1, 2, 1, 1), 0.3), (90., 140.)).abs()
        sky = sky + (T([0.95, 0.93, 0.82]) - sky) * disk * maria
        sky = _stars(sky, p, w, h, aspect)
    else:
        top, bot = D.hsv(0.6 + p.sky_hue, 0.62 - 0.3 * p.haze, 0.88), D.hsv(0.58 + p.sky_hue, 0.22 - 0.1 * p.haze, 0.97)
        sky = T(top) + (T(bot) - T(top)) * t ** 0.8
        sx, sy, sr = p.sun
        ds = torch.sqrt((x - sx * aspect) ** 2 + (y - sy) ** 2)
        sky = sky + T([0.5, 0.4, 0.22]) * torch.exp(-ds / (sr * 4)) + T([0.25, 0.2, 0.1]) * torch.exp(-ds / (sr * 15))
        sky = torch.maximum(sky, D.cover(ds - sr, px) * 1.0).clamp(0, 1)
    for cloud in p.clouds:  # soft puffs, lit from above by day, faint by night
        dens = torch.zeros_like(x)
        shade = torch.zeros_like(x)
        for cx, cy, rx, ry in cloud:
            bump = (1 - ((x - cx * aspect) / rx) ** 2 - ((y - cy) / ry) ** 2).clamp_min(0)
            dens = torch.maximum(dens, bump)
            shade = torch.maximum(shade, bump * ((cy - y) / ry + 1).clamp(0, 1.5))
        a = D.smoothstep(0.0, 0.35, dens) * 0.95
        col = (T([0.98, 0.98, 1.0]) * (0.72 + 0.28 * shade.clamp(0, 1)) if not night
               else T([0.07, 0.075, 0.11]) + T([0.05, 0.05, 0.06]) * shade.clamp(0, 1))
        sky = sky + (col - sky) * a

    L = _Layers(h, w, device)
    # far hills
    hill = torch.full_like(xs, hz - 0.04)
    for amp, fr, ph in p.hills:
        hill = hill - amp * (0.5 + 0.5 * torch.sin(xs * fr + ph))
    hcol = D.hsv(0.4, 0.25, 0.45) * (1 - p.haze) + np.array([0.62, 0.7, 0.8]) * p.haze
    L.paint(T(hcol), D.cover(hill.view(1, 1, 1, w) - y, px))
    # buildings (far row first), windows grid, roofs
    for b in p.buildings:
        _building(L, b, x, y, px, hz, night, aspect, w, h, device)
    # ground: sidewalk, curb, road with lane markings
    walk = D.cover(hz - y, px)
    slab = ((x / 0.06) % 1.0 - 0.5).abs() * 0.06 - 0.029  # joints between paving slabs
    L.paint(T([0.55, 0.54, 0.52]) * (0.93 + 0.05 * D.waves(x, y, torch.full((1, 2, 1, 1), 0.7), (40., 70.))
                                     - 0.12 * D.cover(-slab, px)), walk)
    road_y = p.walk_y
    L.paint(T([0.2, 0.2, 0.21]) * (0.9 + 0.1 * D.hash_noise(x, y, 2 * px, torch.tensor(1.0))), D.cover(road_y - y, px))
    L.paint(T([0.7, 0.7, 0.68]), D.cover((y - road_y - 0.006).abs() - 0.004, px))
    lane_y = (road_y + 1.0) / 2 + 0.02
    dash = D.cover(torch.maximum((y - lane_y).abs() - 0.006,
                                 ((x / 0.16 + p.lane_phase) % 1.0 - 0.5).abs() * 0.16 - 0.045), px)
    L.paint(T([0.85, 0.82, 0.6]), dash)
    for tr in p.trees:
        _tree(L, tr, x, y, px, night, aspect, w, h, device)
    lamp_light = []
    for lp in p.lamps:
        lamp_light.append(_lamp(L, lp, x, y, px, p.walk_y, night, aspect, w, h, device))
    beams = [_car(L, c, x, y, px, night, aspect, device) for c in p.cars]

    if night:  # moonlight + lamp pools multiply surfaces; emissive light adds
        light = T([0.07, 0.08, 0.13]).expand(1, 3, h, w).clone()
        for hx, hy, base in lamp_light:
            pool = torch.exp(-((x - hx) / 0.1) ** 2 - ((y - base - 0.02) / 0.045) ** 2)
            near = 1.0 / (1.0 + ((x - hx) ** 2 + (y - hy) ** 2) / 0.003)
            light = light + T([1.0, 0.72, 0.38]) * (0.9 * pool + 0.35 * near)
        for bx, by, bd, _ in beams:  # headlight beams on the road
            ahead = ((x - bx) * bd).clamp_min(0)
            beam = torch.exp(-ahead / 0.12 - ((y - by) / (0.006 + 0.08 * ahead)) ** 2) * (ahead > 0).float()
            light = light + T([1.0, 0.95, 0.8]) * 0.8 * beam
        glow = sum(torch.exp(-torch.sqrt((x - hx) ** 2 + (y - hy) ** 2) / 0.02) for hx, hy, _ in lamp_light)
        img = sky * (1 - L.cov) + L.surf * light + L.emit
        if lamp_light:
            img = img + T([0.9, 0.7, 0.4]) * 0.7 * glow
        for bx, by, bd, tx in beams:  # halos of head and tail lights
            head = torch.exp(-torch.sqrt((x - bx) ** 2 + (y - by + 0.033) ** 2) / 0.01)
            tail = torch.exp(-torch.sqrt((x - tx) ** 2 + (y - by + 0.034) ** 2) / 0.007)
            img = img + T([1.0, 0.95, 0.8]) * 0.6 * head + T([1.0, 0.1, 0.05]) * 0.35 * tail
    else:
        img = sky * (1 - L.cov) + L.surf * T([1.02, 1.0, 0.96])
    return img.clamp(0, 1)


def _stars(sky: Tensor, p: SceneParams, w: int, h: int, aspect: float) -> Tensor:
    """Splat the stars bilinearly (resolution independent positions)."""
    if not p.stars:
        return sky
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
    return sky + acc.view(1, 1, h, w).to(sky.device) * _rgb([0.9, 0.92, 1.0], sky.device)


def _building(L: _Layers, b: dict, x, y, px, hz, night, aspect, w, h, device) -> None:
    x0, x1, top = b["x0"] * aspect, b["x1"] * aspect, b["top"]
    roof_h = 0.04 if b["roof"] == 1 else 0.0
    sl = (slice(max(0, int((top - roof_h - 0.01) * h) - 2), min(h, int(math.ceil((hz + 0.01) * h)) + 2)),
          slice(max(0, int(x0 * h) - 2), min(w, int(math.ceil(x1 * h)) + 2)))
    if sl[1].start >= sl[1].stop:
        return
    xs, ys = x[:, :, sl[0], sl[1]], y[:, :, sl[0], sl[1]]
    col = _rgb(b["colour"], device)
    far = b["layer"] == 0
    if far:
        col = col * 0.8 + _rgb([0.55, 0.6, 0.68], device) * 0.2
    cx, hw = (x0 + x1) / 2, (x1 - x0) / 2
    d = D.sd_box(xs, ys, cx, (top + hz) / 2 + 0.005, hw, (hz - top) / 2 + 0.005)
    if b["roof"] == 1:  # peaked roof
        d = torch.minimum(d, torch.maximum((xs - cx).abs() * roof_h / hw + (ys - top + roof_h), top - ys - 0.0))
    elif b["roof"] == 2:  # stepped top
        d = torch.minimum(d, D.sd_box(xs, ys, cx, top - 0.015, hw * 0.5, 0.016))
    shade = 0.92 + 0.08 * ((xs - x0) / (2 * hw)).clamp(0, 1)  # a little light falloff across the facade
    L.paint(col * shade, D.cover(d, px), sl)
    cols, rows, fw, fh = b["win"]
    cw, ch = (2 * hw * 0.88) / cols, (hz - top - 0.04) / rows
    if ch < 3 * px or cw < 3 * px:
        return
    u_, v_ = (xs - (x0 + hw * 0.12)) / cw, (ys - (top + 0.02)) / ch
    iu, iv = u_.floor(), v_.floor()
    inside = (iu >= 0) & (iu < cols) & (iv >= 0) & (iv < rows)
    dwin = D.sd_box((u_ - iu) * cw, (v_ - iv) * ch, cw / 2, ch / 2, cw * fw / 2, ch * fh / 2)
    a = D.cover(dwin, px) * inside.float()
    rnd = D.hash_noise(iu + 0.5, iv + 0.5, 1.0, torch.tensor(float(b["seed"] % 9973)))
    if night:
        lit = (rnd < b["lit"]).float()
        warm = _rgb([1.0, 0.78, 0.42], device) + (_rgb([0.6, 0.75, 1.0], device) - _rgb([1.0, 0.78, 0.42], device)) * (
            (rnd * 7.0) % 1.0 < 0.15).float()
        L.paint(_rgb([0.02, 0.02, 0.03], device), a, sl, emit=warm * a * lit * (0.55 + 0.45 * (rnd * 13.0) % 1.0))
    else:
        glass = _rgb([0.28, 0.36, 0.46], device) * (0.75 + 0.5 * (rnd * 11.0) % 1.0)
        glass = glass + 0.12 * (1 - (ys - top) / (hz - top + 1e-3)).clamp(0, 1)  # sky reflection at the top
        L.paint(glass * (0.85 if far else 1.0), a, sl)


def _tree(L: _Layers, tr: dict, x, y, px, night, aspect, w, h, device) -> None:
    tx = tr["x"] * aspect
    base, top, r = tr["base"], tr["base"] - tr["height"], tr["radius"]
    sl = (slice(max(0, int((top - r * 1.5) * h) - 2), min(h, int(math.ceil(base * h)) + 2)),
          slice(max(0, int((tx - r * 1.8) * h) - 2), min(w, int(math.ceil((tx + r * 1.8) * h)) + 2)))
    if sl[1].start >= sl[1].stop:
        return
    xs, ys = x[:, :, sl[0], sl[1]], y[:, :, sl[0], sl[1]]
    trunk = D.sd_box(xs, ys, tx, (base + top) / 2, 0.008, (base - top) / 2)
    L.paint(_rgb([0.3, 0.2, 0.12], device), D.cover(trunk, px), sl)
    rng = np.random.default_rng(tr["seed"])
    d = torch.full_like(xs, 1.0)
    for _ in range(5):
        ox, oy, rr = rng.uniform(-0.7, 0.7) * r, rng.uniform(-0.6, 0.3) * r, rng.uniform(0.55, 0.8) * r
        d = torch.minimum(d, D.sd_circle(xs, ys, tx + ox, top + oy, rr))
    d = d + 0.006 * D.waves(xs, ys, torch.full((1, 2, 1, 1), tr["seed"] % 97 / 97.0), (180., 260.))
    leaf = D.hsv(tr["hue"], 0.55, 0.42)
    lit = (0.75 + 0.45 * ((top - ys) / r + 0.5).clamp(0, 1))
    L.paint(_rgb(leaf, device) * lit, D.cover(d, px, 1.3), sl)


def _lamp(L: _Layers, lp: dict, x, y, px, walk_y, night, aspect, w, h, device) -> tuple[float, float, float]:
    lx, base, top = lp["x"] * aspect, walk_y - 0.01, walk_y - 0.01 - lp["height"]
    hx, hy = lx + lp["side"] * 0.035, top + 0.01
    pole = _rgb([0.16, 0.18, 0.17], device)
    L.paint(pole, D.cover(D.sd_box(x, y, lx, (base + top) / 2, 0.0035, (base - top) / 2), px))
    L.paint(pole, D.cover(D.sd_segment(x, y, lx, top, hx, hy - 0.004, 0.0025), px))
    head = D.cover(D.sd_box(x, y, hx, hy, 0.012, 0.005, 0.003), px)
    bulb = D.cover(D.sd_box(x, y, hx, hy + 0.005, 0.008, 0.002, 0.001), px)
    L.paint(pole, head)
    if night:
        L.paint(_rgb([0.3, 0.28, 0.2], device), bulb, emit=_rgb([1.0, 0.9, 0.65], device) * bulb)
    else:
        L.paint(_rgb([0.7, 0.72, 0.7], device), bulb)
    return hx, hy + 0.006, base


def _car(L: _Layers, c: dict, x, y, px, night, aspect, device) -> tuple[float, float, float]:
    """A side view of a car; by night headlights, tail lights and a beam on the road."""
    cx, base, ln, dr = c["x"] * aspect, c["y"], c["length"], c["dir"]
    hl = ln / 2
    body = D.sd_box(x, y, cx, base - 0.03, hl, 0.018, 0.01)
    cabin = D.sd_box(x, y, cx - dr * hl * 0.12, base - 0.058, hl * 0.55, 0.016, 0.012)
    col = _rgb(c["colour"], device)
    L.paint(col * (0.85 + 0.2 * ((base - 0.045 - y) / 0.02).clamp(0, 1)), D.cover(torch.minimum(body, cabin), px))
    glass = D.cover(D.sd_box(x, y, cx - dr * hl * 0.12, base - 0.058, hl * 0.48, 0.011, 0.008), px)
    L.paint(_rgb([0.25, 0.32, 0.4] if not night else [0.03, 0.03, 0.04], device), glass)
    for wx in (cx - hl * 0.62, cx + hl * 0.62):
        L.paint(_rgb([0.06, 0.06, 0.06], device), D.cover(D.sd_circle(x, y, wx, base - 0.012, 0.014), px))
        L.paint(_rgb([0.5, 0.5, 0.52], device), D.cover(D.sd_circle(x, y, wx, base - 0.012, 0.006), px))
    front = D.cover(D.sd_box(x, y, cx + dr * (hl - 0.005), base - 0.035, 0.006, 0.005, 0.002), px)
    back = D.cover(D.sd_box(x, y, cx - dr * (hl - 0.003), base - 0.036, 0.003, 0.004, 0.001), px)
    if night:
        L.paint(_rgb([0.8, 0.8, 0.7], device), front, emit=_rgb([1.0, 0.97, 0.85], device) * front)
        L.paint(_rgb([0.5, 0.05, 0.05], device), back, emit=_rgb([1.0, 0.1, 0.08], device) * back)
    else:
        L.paint(_rgb([0.85, 0.85, 0.8], device), front)
        L.paint(_rgb([0.6, 0.1, 0.1], device), back)
    return cx + dr * hl, base - 0.002, dr, cx - dr * hl
