"""Procedural street scenes that can be rendered by day and by night from the same parameters.

Geometry (hills, buildings, windows, meadows, park greenery, trees, street lamps, paving slabs or
cobbles, road, clouds) comes only from ``SceneParams``; the time of day changes colours and lighting:
by day a sun, blue sky and clouds, windows of dark glass or with curtains, lamps off; by night a dark
sky with stars and the moon, the curtained windows lit, and street lamps casting warm pools of light.
Only windows, lamps and cars emit light: foliage, grass and cobbles stay dark at night, so a
translator learns that texture is not a window.  Surfaces are composited with premultiplied coverage
so the night light field multiplies only surfaces, and emissive light (windows, lamps, stars) is
occluded by what stands in front of it.  Drawing: ``_scene_draw``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ganeditor.worlds import _draw as D
from ganeditor.worlds import _scene_draw as S

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
    paving: str = "slabs"  # sidewalk/road: "slabs" (asphalt road with lane dashes) or "cobbles" (old town)
    meadows: list[dict] = field(default_factory=list)  # x0, x1, height, hue, seed: grass where no building stands
    greenery: list[dict] = field(default_factory=list)  # x0, x1, top, hue, seed: park trees / hedges on the street

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
    trees = [_tree(rng, walk_y) for _ in range(int(rng.integers(0, 5)))]
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
    p = SceneParams(
        horizon=horizon, walk_y=walk_y, sun=(u(0.1, 0.9), u(0.08, 0.3), u(0.025, 0.04)),
        moon=(u(0.1, 0.9), u(0.06, 0.25), u(0.025, 0.04), u(-0.6, 0.6)), sky_hue=float(rng.normal(0, 0.02)),
        haze=u(0, 1), hills=[(u(0.01, 0.05), u(4, 14), u(0, 6.3)) for _ in range(3)], buildings=buildings,
        trees=trees, lamps=lamps, cars=cars, clouds=clouds, stars=stars, lane_phase=u(0, 1),
        seed=int(rng.integers(1 << 30)))
    _add_open_ground(p, rng)
    return p


def _add_open_ground(p: SceneParams, rng: np.random.Generator) -> None:
    """Meadows (buildings there are removed), park greenery and cobbles, drawn after everything else."""
    u = rng.uniform
    if u() < 0.35:
        x0 = u(-0.1, 0.7)
        m = {"x0": x0, "x1": x0 + u(0.2, 0.5), "height": u(0.03, 0.1), "hue": u(0.2, 0.32),
             "seed": int(rng.integers(1 << 30))}
        p.meadows.append(m)
        p.buildings = [b for b in p.buildings if b["x1"] < m["x0"] or b["x0"] > m["x1"]]
    p.greenery += [_greenery(rng, p.horizon) for _ in range(int(rng.choice([0, 0, 1, 1, 2])))]
    p.paving = "cobbles" if u() < 0.35 else "slabs"


def _tree(rng: np.random.Generator, walk_y: float, height: float = 0.2, radius: float = 0.09) -> dict:
    """A street tree on the sidewalk (``height``, ``radius``: the upper ends of their ranges)."""
    u = rng.uniform
    return {"x": u(0, 1), "base": walk_y - u(0.0, 0.02), "height": u(0.1, height), "radius": u(0.045, radius),
            "hue": u(0.22, 0.36), "seed": int(rng.integers(1 << 30))}


def _greenery(rng: np.random.Generator, horizon: float, width: float = 0.45, rise: float = 0.28) -> dict:
    """Park trees / hedges along the street (``width``, ``rise``: the upper ends of their ranges)."""
    u = rng.uniform
    x0 = u(-0.1, 0.9)
    return {"x0": x0, "x1": x0 + u(0.12, width), "top": horizon - u(0.05, rise), "hue": u(0.2, 0.38),
            "seed": int(rng.integers(1 << 30))}


def countryside(p: SceneParams, rng: np.random.Generator) -> SceneParams:
    """``p`` with no buildings, lamps or cars: a meadow across the whole width, park greenery and trees.

    At night nothing in it emits light, so a translator trained on some of these learns that leaves and
    grass stay dark (a day->night model trained on streets alone lit "windows" along foliage in photos)."""
    u = rng.uniform
    p.buildings, p.lamps, p.cars = [], [], []
    p.meadows = [{"x0": -0.1, "x1": 1.1, "height": u(0.03, 0.12), "hue": u(0.2, 0.32),
                  "seed": int(rng.integers(1 << 30))}]
    p.greenery += [_greenery(rng, p.horizon, width=0.5, rise=0.3) for _ in range(int(rng.integers(1, 4)))]
    p.trees += [_tree(rng, p.walk_y, height=0.25, radius=0.1) for _ in range(int(rng.integers(2, 7)))]
    return p


def _scene_rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF, stream])


def scene_for_seed(seed: int, countryside_share: float = 0.0) -> SceneParams:
    """The scene with this seed; a share ``countryside_share`` of seeds (drawn from the seed) are
    ``countryside`` scenes instead of streets (the street scenes of the other seeds are unchanged)."""
    p = sample_scene(_scene_rng(seed, 7))
    if countryside_share > 0:
        rng = _scene_rng(seed, 11)
        if rng.random() < countryside_share:
            return countryside(p, rng)
    return p


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


def _render(p: SceneParams, w: int, h: int, night: bool, device) -> Tensor:
    """The scene as a float image [1,3,H,W] in [0,1]: sky, then surfaces back to front, then the light."""
    f = S.Frame.make(w, h, device)
    sky = S.clouds(S.night_sky(p, f) if night else S.day_sky(p, f), p, f, night)
    L = S.Layers(h, w, device)
    S.hills(L, p, f)
    for m in p.meadows:
        S.meadow(L, m, f, p.horizon)
    for b in p.buildings:  # far row first
        S.building(L, b, f, p.horizon, night)
    for g in p.greenery:
        S.greenery(L, g, f, p.horizon + 0.005)
    S.ground(L, p, f)
    for tr in p.trees:
        S.tree(L, tr, f)
    lamps = [S.lamp(L, lp, f, p.walk_y, night) for lp in p.lamps]
    beams = [S.car(L, c, f, night) for c in p.cars]
    if night:
        return S.night_light(L, sky, f, lamps, beams).clamp(0, 1)
    return (sky * (1 - L.cov) + L.surf * f.rgb([1.02, 1.0, 0.96])).clamp(0, 1)
