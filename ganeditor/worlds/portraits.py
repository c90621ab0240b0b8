"""Procedural portraits with ground-truth attributes and landmarks, FFHQ-style framing.

A portrait is fully determined by (attributes, identity).  ``render_portrait(seed)`` draws both from
the seed; ``render_from_attributes(attrs, size, seed)`` keeps the person (identity from the seed)
and takes the attributes given, so exactly one attribute can be changed and the same person
re-rendered.  Rendering is batched, vectorised signed-distance drawing with analytic
anti-aliasing (see ``_portrait_draw``), on any torch device.

Attributes (``ATTRIBUTES``: name -> (low, high, meaning)) are the ground truth the demo regressor
learns.  Landmarks are the five FFHQ/MTCNN points (left eye, right eye, nose tip, left and right
mouth corner; "left" = image left) in output pixel units, (0, 0) being the top-left image corner.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch

from ganeditor.worlds import _draw
from ganeditor.worlds._portrait_draw import draw_portraits, feature_landmarks

ATTRIBUTES: dict[str, tuple[float, float, str]] = {
    "smile": (-1.0, 1.0, "-1 frown, 0 neutral, 1 broad smile (teeth show, cheeks rise, eyes squint)"),
    "age": (0.0, 1.0, "0 about 20 years, 1 about 80: wrinkles, grey hair, thinner lips, longer jaw"),
    "hair_colour": (0.0, 1.0, "0 black, 0.33 brown, 0.67 blonde, 1 red (grey comes from age)"),
    "hair_length": (0.0, 1.0, "0 cropped, 0.4 ear length, 1 long past the shoulders"),
    "glasses": (0.0, 1.0, "0 none, 1 glasses (binary)"),
    "glasses_darkness": (0.0, 1.0, "lens tint when glasses=1: 0 clear, 1 dark sunglasses"),
    "skin_tone": (0.0, 1.0, "0 very light, 1 very dark"),
    "head_yaw": (-1.0, 1.0, "head turn, -1 = 30 degrees towards image left, 1 = towards image right"),
    "eye_openness": (0.0, 1.0, "0 closed, 1 wide open"),
    "bg_hue": (0.0, 1.0, "background hue (HSV)"),
    "bg_brightness": (0.0, 1.0, "background brightness, 0 dark, 1 light"),
    "beard": (0.0, 1.0, "0 none, 0.3 stubble, 1 full beard"),
    "light_dir": (-1.0, 1.0, "key light from image left (-1) to image right (1)"),
    "mouth_open": (0.0, 1.0, "0 closed, 1 open"),
    "eyebrow": (-1.0, 1.0, "-1 lowered/frowning, 1 raised"),
}
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(ATTRIBUTES)
FFHQ_LANDMARKS_512 = np.array([[192.98, 239.95], [318.90, 240.19], [256.63, 314.02],
                               [201.26, 371.41], [313.09, 371.15]], dtype=np.float32)  # [5,2] x,y
MAX_YAW_DEG = 30.0


def _clip01(v: float) -> float:
    return float(min(1.0, max(0.0, v)))


def sample_attributes(rng: np.random.Generator) -> dict[str, float]:
    """Draw one set of attributes (marginals chosen to cover each range with a realistic bulk)."""
    u = rng.random
    smile = rng.normal(0.15, 0.45) if u() < 0.8 else rng.uniform(-1, 1)
    age = _clip01(rng.beta(1.3, 1.8))
    hair_colour = float(rng.choice([0.05, 0.3, 0.45, 0.7, 0.95], p=[0.3, 0.3, 0.15, 0.17, 0.08])
                        + rng.normal(0, 0.06))
    glasses = float(u() < 0.3)
    beard = 0.0 if u() < 0.72 else float(rng.uniform(0.15, 1.0))
    eyebrow = rng.normal(0.0, 0.35)
    attrs = {
        "smile": float(np.clip(smile, -1, 1)),
        "age": age,
        "hair_colour": _clip01(hair_colour),
        "hair_length": _clip01(rng.beta(1.1, 1.1)),
        "glasses": glasses,
        "glasses_darkness": _clip01(rng.beta(0.7, 1.6) if glasses else rng.random() * 0.3),
        "skin_tone": _clip01(rng.beta(1.4, 1.9)),
        "head_yaw": float(np.clip(rng.normal(0, 0.4), -1, 1)),
        "eye_openness": _clip01(1.0 - rng.beta(1.0, 3.5) if u() > 0.06 else rng.random() * 0.2),
        "bg_hue": float(u()),
        "bg_brightness": _clip01(rng.beta(2.0, 2.0)),
        "beard": beard,
        "light_dir": float(rng.uniform(-1, 1)),
        "mouth_open": _clip01(0.0 if u() < 0.6 else rng.beta(1.2, 2.5)),
        "eyebrow": float(np.clip(eyebrow, -1, 1)),
    }
    return attrs


def sample_identity(rng: np.random.Generator) -> dict[str, float]:
    """Draw the hidden per-person traits (face shape, colours, hair style) that attributes leave alone."""
    n, uni = rng.normal, rng.uniform
    return {
        "face_w": 0.205 + 0.012 * n(), "jaw": uni(1.75, 2.7), "chin": 0.865 + 0.012 * n(),
        "eye_dx": 0.123 + 0.004 * n(), "eye_dy": 0.469 + 0.006 * n(), "eye_w": 0.043 + 0.003 * n(),
        "iris_h": uni(0, 1), "iris_v": uni(0.15, 0.55),
        "nose_y": 0.613 + 0.008 * n(), "nose_w": 0.022 + 0.003 * n(),
        "mouth_y": 0.725 + 0.007 * n(), "mouth_w": 0.098 + 0.006 * n(), "lip_u": 0.012 + 0.002 * n(),
        "lip_l": 0.017 + 0.003 * n(), "brow_thick": uni(0.0045, 0.0085), "brow_arch": uni(0.006, 0.016),
        "hairline": 0.285 + 0.02 * n(), "hair_vol": uni(0.012, 0.04), "fringe": uni(0, 1),
        "parting": uni(-1, 1), "wave": uni(0, 1), "skin_hue": n(), "blush": uni(0, 1),
        "shirt_h": uni(0, 1), "shirt_s": uni(0.1, 0.7), "shirt_v": uni(0.15, 0.85),
        "frame_kind": uni(0, 1), "frame_round": uni(0.006, 0.03), "bg_sat": uni(0.1, 0.55),
        "bg_grad": uni(-0.3, 0.3), "wb": 0.04 * n(), "tex": uni(0, 1), "ear": uni(0.9, 1.1),
        "gaze": 0.006 * n(),
    }


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(seed) >> 32 & 0xFFFFFFFF, stream])


def attributes_for_seed(seed: int) -> dict[str, float]:
    """The attributes ``render_portrait(seed)`` uses."""
    return sample_attributes(_rng(seed, 0))


def identity_for_seed(seed: int) -> dict[str, float]:
    """The hidden identity traits of the person with this seed."""
    return sample_identity(_rng(seed, 1))


def attributes_vector(attrs: Mapping[str, float]) -> np.ndarray:
    """Attributes as a float32 vector in ``ATTRIBUTE_NAMES`` order."""
    return np.array([float(attrs[k]) for k in ATTRIBUTE_NAMES], dtype=np.float32)


def check_attributes(attrs: Mapping[str, float]) -> dict[str, float]:
    """Complete and validate an attribute dict (missing names get neutral defaults); raise on bad names."""
    unknown = set(attrs) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"unknown portrait attributes: {sorted(unknown)}")
    neutral = {k: (0.0 if lo < 0 else 0.5) for k, (lo, hi, _) in ATTRIBUTES.items()}
    neutral.update(glasses=0.0, beard=0.0, mouth_open=0.0, eye_openness=0.75)
    out = {**neutral, **{k: float(v) for k, v in attrs.items()}}
    return {k: float(min(ATTRIBUTES[k][1], max(ATTRIBUTES[k][0], v))) for k, v in out.items()}


def alignment_affine(angle_deg: float, scale: float, dx: float, dy: float) -> np.ndarray:
    """[2,3] map from output-canvas fractions to the aligned frame, for a face rotated by ``angle_deg``,
    scaled by ``scale`` (face size / canvas size) and centred at (0.5 + dx, 0.5 + dy) of the canvas."""
    a = math.radians(angle_deg)
    c, s = math.cos(a) / scale, math.sin(a) / scale
    # canvas q -> aligned p = R(-a)/scale (q - centre) + 0.5
    cx, cy = 0.5 + dx, 0.5 + dy
    return np.array([[c, s, 0.5 - c * cx - s * cy], [-s, c, 0.5 + s * cx - c * cy]], dtype=np.float32)


def random_alignment_affine(rng: np.random.Generator) -> np.ndarray:
    """A random in-plane rotation (±30°), scale (0.35–0.8) and offset, for alignment tests."""
    scale = float(rng.uniform(0.35, 0.8))
    room = (1.0 - scale) / 2
    return alignment_affine(float(rng.uniform(-30, 30)), scale, float(rng.uniform(-room, room) * 0.8),
                            float(rng.uniform(-room, room) * 0.8))


def _render(attrs_list: Sequence[Mapping[str, float]], ids: Sequence[Mapping[str, float]], size: int,
            device: torch.device | str, affines: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    b = len(attrs_list)
    assert b == len(ids) and b > 0
    params = {k: _draw.p([a[k] for a in attrs_list], device) for k in ATTRIBUTE_NAMES}
    params.update({k: _draw.p([i[k] for i in ids], device) for k in ids[0]})
    aff = None if affines is None else torch.as_tensor(np.asarray(affines, np.float32).reshape(b, 2, 3))
    with torch.inference_mode():
        img = draw_portraits(params, size, device, aff)
        out = _draw.to_uint8(img)
    lms = feature_landmarks({k: v.view(-1).cpu().numpy() for k, v in params.items()})  # [B,5,2] aligned
    if affines is not None:  # aligned frame -> canvas: invert each affine
        a = np.asarray(affines, np.float64).reshape(b, 2, 3)
        inv = np.linalg.inv(a[:, :, :2])
        lms = np.einsum("bij,bkj->bki", inv, lms - a[:, None, :, 2])
    return out, (lms * size).astype(np.float32)


def render_portraits(seeds: Sequence[int], size: int = 128, device: torch.device | str = "cpu",
                     affines: np.ndarray | None = None,
                     ) -> tuple[np.ndarray, list[dict[str, float]], np.ndarray]:
    """Render a batch: uint8 images [B,S,S,3], attribute dicts, landmarks [B,5,2] in pixels."""
    attrs = [attributes_for_seed(s) for s in seeds]
    imgs, lms = _render(attrs, [identity_for_seed(s) for s in seeds], size, device, affines)
    return imgs, attrs, lms


def render_portrait(seed: int, size: int = 128, device: torch.device | str = "cpu",
                    affine: np.ndarray | None = None, return_landmarks: bool = False):
    """Render one portrait: (uint8 HxWx3, attrs) or (image, attrs, landmarks [5,2]) if asked."""
    imgs, attrs, lms = render_portraits([seed], size, device, None if affine is None else affine[None])
    return (imgs[0], attrs[0], lms[0]) if return_landmarks else (imgs[0], attrs[0])


def render_from_attributes(attrs: Mapping[str, float] | Sequence[Mapping[str, float]], size: int = 128,
                           rng_or_seed: int | np.random.Generator | Sequence[int] = 0,
                           device: torch.device | str = "cpu", affine: np.ndarray | None = None,
                           return_landmarks: bool = False):
    """Render the person of ``rng_or_seed`` (identity) with the given attributes.

    One attribute dict and one seed/Generator give one image (HxWx3); a list of dicts with a list of
    seeds gives a batch [B,H,W,3].  Missing attributes take neutral values.
    """
    if isinstance(attrs, Mapping):
        ident = (sample_identity(rng_or_seed) if isinstance(rng_or_seed, np.random.Generator)
                 else identity_for_seed(int(rng_or_seed)))
        imgs, lms = _render([check_attributes(attrs)], [ident], size, device,
                            None if affine is None else np.asarray(affine)[None])
        return (imgs[0], lms[0]) if return_landmarks else imgs[0]
    seeds = list(rng_or_seed)  # type: ignore[arg-type]
    assert len(seeds) == len(attrs), "one seed per attribute dict"
    imgs, lms = _render([check_attributes(a) for a in attrs], [identity_for_seed(s) for s in seeds], size,
                        device, affine)
    return (imgs, lms) if return_landmarks else imgs
