"""Drawing of procedural portraits: background, body, head, hair and glasses (face details in
``_portrait_face``).  All lengths are fractions of the aligned (FFHQ-style) frame.

Head model: the head is a vertical cylinder of radius ``HEAD_R`` seen from the front; facial
features are painted on it in "feature coordinates" (xf, y), so a yaw turns them: a pixel at view
angle phi = asin((x - 0.5) / HEAD_R) shows head angle phi0 = phi - yaw, whose feature x is
0.5 + HEAD_R * sin(phi0).  Far-side features foreshorten, an ear comes into view, the nose (which
stands off the cylinder) shifts further.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ganeditor.worlds import _draw as D
from ganeditor.worlds._portrait_face import draw_face_details

Tensor = torch.Tensor
CX = 0.5  # head axis
HEAD_R = 0.27  # head cylinder radius
NOSE_DEPTH = 0.035  # how far the nose tip stands off the cylinder
FACE_CY = 0.50  # face outline centre height
MAX_YAW = math.radians(30.0)

_HAIR_STOPS = np.array([[0.05, 0.045, 0.045], [0.30, 0.18, 0.10], [0.80, 0.64, 0.40], [0.60, 0.22, 0.09]])
_SKIN_STOPS = np.array([[0.97, 0.82, 0.72], [0.80, 0.58, 0.43], [0.55, 0.36, 0.24], [0.30, 0.19, 0.13]])


def _ramp(stops: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Piecewise-linear colour ramp over evenly spaced stops; t [B] in [0,1] -> [B,3]."""
    pos = np.clip(t, 0, 1) * (len(stops) - 1)
    i = np.minimum(pos.astype(int), len(stops) - 2)
    f = (pos - i)[:, None]
    return stops[i] * (1 - f) + stops[i + 1] * f


def colours(pn: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-image colours [B,3] derived from attributes and identity."""
    age = pn["age"]
    skin = _ramp(_SKIN_STOPS, pn["skin_tone"])
    skin = skin * (1 + 0.035 * pn["skin_hue"][:, None] * np.array([1.0, 0.2, -0.8]))
    skin = skin * (1 - 0.08 * age[:, None]) + 0.04 * age[:, None]
    hair = _ramp(_HAIR_STOPS, pn["hair_colour"])
    grey = np.clip((age - 0.45) / 0.45, 0, 1)[:, None] ** 1.3 * 0.9
    hair = hair * (1 - grey) + np.array([0.72, 0.71, 0.70]) * grey
    iris = _ramp(np.array([[0.20, 0.11, 0.06], [0.40, 0.24, 0.10], [0.40, 0.42, 0.22], [0.30, 0.45, 0.62]]),
                 pn["iris_h"]) * (0.6 + pn["iris_v"][:, None])
    frame = np.where(pn["frame_kind"][:, None] < 0.55,
                     _ramp(np.array([[0.05, 0.05, 0.05], [0.25, 0.13, 0.06]]), pn["frame_kind"] / 0.55),
                     _ramp(np.array([[0.75, 0.62, 0.35], [0.72, 0.72, 0.74]]), (pn["frame_kind"] - 0.55) / 0.45))
    wb = 1 + pn["wb"][:, None] * np.array([1.0, 0.0, -1.0])
    return {"skin": skin, "hair": hair, "iris": iris, "frame": frame, "wb": wb,
            "shirt": D.hsv(pn["shirt_h"], pn["shirt_s"], pn["shirt_v"]),
            "bg_top": D.hsv(pn["bg_hue"], pn["bg_sat"], 0.2 + 0.72 * pn["bg_brightness"]),
            "bg_bot": D.hsv((pn["bg_hue"] + 0.08 * pn["bg_grad"]) % 1, pn["bg_sat"] * 0.9,
                            (0.2 + 0.72 * pn["bg_brightness"]) * (0.72 + pn["bg_grad"]))}


def view_to_feature(x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Feature x, facing factor cos(phi0) and the foreshortening d(xf)/dx for view x (head yaw theta)."""
    s = ((x - CX) / HEAD_R).clamp(-0.999, 0.999)
    phi0 = torch.asin(s) - theta
    fr = torch.cos(phi0)
    return CX + HEAD_R * torch.sin(phi0), fr, fr.abs() / torch.sqrt(1 - s * s)


def feature_to_view(xf: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Inverse of ``view_to_feature`` for points on the front of the head (numpy)."""
    return CX + HEAD_R * np.sin(np.arcsin(np.clip((xf - CX) / HEAD_R, -1, 1)) + theta)


def feature_landmarks(pn: dict[str, np.ndarray]) -> np.ndarray:
    """The 5 landmarks [B,5,2] in aligned-frame fractions, consistent with what is drawn."""
    th = pn["head_yaw"] * MAX_YAW
    ex, ey = pn["eye_dx"], pn["eye_dy"]
    mw = pn["mouth_w"] * (1 + 0.12 * np.maximum(pn["smile"], 0))
    my = pn["mouth_y"] - 0.022 * pn["smile"]  # corner height
    xs = [CX - ex, CX + ex, CX, CX - mw, CX + mw]
    ys = [ey, ey, pn["nose_y"], my, my]
    out = np.stack([np.stack([feature_to_view(xv, th), yv * np.ones_like(th)], -1) for xv, yv in zip(xs, ys)], 1)
    out[:, 2, 0] += NOSE_DEPTH * np.sin(th)
    return out


def sd_face(xf: Tensor, y: Tensor, P: dict[str, Tensor]) -> Tensor:
    """Signed distance (feature space) to the face outline: round forehead, superellipse jaw."""
    fw = P["face_w"] * (1 + 0.04 * P["age"])
    dx = (xf - CX).abs().clamp_min(1e-5)
    dy = y - FACE_CY
    below = dy > 0
    ry = torch.where(below, P["chin"] + 0.01 * P["age"] - FACE_CY, torch.full_like(dy, 0.32))
    n = torch.where(below, P["jaw"] + 0.4 * P["age"], torch.full_like(dy, 2.0))
    ady = dy.abs().clamp_min(1e-5)
    ux, uy = dx / fw, ady / ry
    f = ux ** n + uy ** n - 1.0
    gx = n * ux ** (n - 1) / fw
    gy = n * uy ** (n - 1) / ry
    return f / torch.sqrt(gx * gx + gy * gy).clamp_min(1e-3)


def _lambert(x: Tensor, y: Tensor, cx, cy, rx, ry, light: Tensor) -> Tensor:
    """Diffuse shading of an ellipsoid-like bump: max(n . l, 0), light [B,3,1,1] normalised."""
    nx, ny = (x - cx) / rx, (y - cy) / ry
    nz = (1 - nx * nx - ny * ny).clamp_min(0.02).sqrt()
    return (nx * light[:, 0:1] + ny * light[:, 1:2] + nz * light[:, 2:3]).clamp_min(0)


@dataclass
class Canvas:
    """A batch being drawn: the image, pixel coordinates of the aligned frame, parameters ``par``,
    colours ``cols``, the light direction, head yaw and hair shape shared by the drawing steps."""

    img: Tensor
    x: Tensor
    y: Tensor
    px: Tensor
    size: int
    transformed: bool  # drawn through an affine (every layer may touch every pixel)
    par: dict[str, Tensor]
    cols: dict[str, Tensor]
    light: Tensor
    theta: Tensor  # head yaw (radians) [B,1,1,1]
    amp: float  # fine texture, fading out at low resolution
    vol: Tensor  # hair volume
    phase: Tensor  # per-image phases of the hair/skin/shirt textures [B,4,1,1]

    def rows(self, y0: float, y1: float, half_w: float = 1.0) -> tuple[slice, slice]:
        """Rows (and columns within ``half_w`` of the axis) a layer can touch; all of a transformed canvas."""
        if self.transformed:
            return slice(None), slice(None)
        s = self.size
        return (slice(max(0, int(y0 * s) - 2), min(s, int(math.ceil(y1 * s)) + 2)),
                slice(max(0, int((CX - half_w) * s) - 2), min(s, int(math.ceil((CX + half_w) * s)) + 2)))

    @staticmethod
    def cut(sl: tuple[slice, slice], *ts: Tensor) -> list[Tensor]:
        return [t[:, :, sl[0], sl[1]] for t in ts]


def draw_portraits(P: dict[str, Tensor], size: int, device, affine: Tensor | None) -> Tensor:
    """Render a batch of portraits as a float image [B,3,size,size] in [0,1], back to front."""
    cv = _canvas(P, size, device, affine)
    _background(cv)
    _back_hair(cv)
    _body(cv)
    ears = _ears(cv)
    fields = _head(cv, ears)
    draw_face_details(cv.img, fields, P, cv.cols, cv.light, size, affine is None, cv.amp)
    _top_hair(cv, fields)
    if float(P["glasses"].max()) > 0.5:
        sl = cv.rows(0.38, 0.56, HEAD_R + 0.01)
        _draw_glasses(cv.img[:, :, sl[0], sl[1]],
                      {k: (v[:, :, sl[0], sl[1]] if v.shape[2] == size else v) for k, v in fields.items()}, P, cv.cols,
                      cv.light)
    # white balance and a gentle vignette
    cv.img *= cv.cols["wb"] * (1 - 0.35 * ((cv.x - 0.5) ** 2 + (cv.y - 0.5) ** 2))
    return cv.img


def _canvas(P: dict[str, Tensor], size: int, device, affine: Tensor | None) -> Canvas:
    b = P["age"].shape[0]
    pn = {k: v.view(-1).cpu().numpy().astype(np.float64) for k, v in P.items()}
    C = {k: D.colour(v, device) for k, v in colours(pn).items()}
    x, y, px = D.grid(b, size, size, device, affine)
    lx = 0.8 * pn["light_dir"]
    light = np.stack([lx, -0.45 + 0 * lx, 0.75 + 0 * lx], 1)
    light = D.colour(light / np.linalg.norm(light, axis=1, keepdims=True), device)
    vol = P["hair_vol"] * (0.4 + 0.6 * P["hair_length"].clamp(0, 0.5) * 2)
    phase = P["wave"].expand(b, 4, 1, 1) + torch.arange(4, device=device).view(1, 4, 1, 1) * 0.37
    img = C["bg_top"] + (C["bg_bot"] - C["bg_top"]) * y
    return Canvas(img, x, y, px, size, affine is not None, P, C, light, P["head_yaw"] * MAX_YAW,
                  float(np.clip((size - 40) / 120, 0, 1)), vol, phase)


def _background(cv: Canvas) -> None:
    """Vertical gradient (already in ``img``) with a glow on the lit side."""
    glow = torch.exp(-((cv.x - 0.5 - 0.3 * cv.par["light_dir"]) ** 2 + (cv.y - 0.3) ** 2) * 6.0)
    cv.img += 0.12 * (0.3 + cv.par["bg_brightness"]) * glow


def _back_hair_layer(cv: Canvas, xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
    """Signed distance and colour of the hair behind the head (long hair reaches the shoulders)."""
    L, vol, phase = cv.par["hair_length"], cv.vol, cv.phase
    y_end = 0.47 + 0.62 * L
    flare = (HEAD_R + vol) * (1 + 0.25 * L * D.smoothstep(0.55, 1.0, ys))  # spreads on the shoulders
    ragged = 0.012 * D.waves(xs, ys, phase[:, :2] + 2.0, (60.0, 95.0))
    hang = torch.maximum(0.40 - ys, ys - y_end + ragged + 0.05 * ((xs - CX) / flare) ** 2)
    d = torch.minimum(D.sd_ellipse(xs, ys, CX, 0.42, HEAD_R + vol, 0.30 + vol),
                      torch.maximum((xs - CX).abs() - flare, hang))
    strands = 1 + 0.10 * cv.amp * D.waves(xs, ys * 0.15, phase, (140.0, 190.0, 230.0, 90.0))
    return d, cv.cols["hair"] * (0.45 + 0.35 * _lambert(xs, ys, CX, 0.5, 0.45, 0.8, cv.light)) * strands


def _back_hair(cv: Canvas) -> None:
    vm = float(cv.vol.max())
    sl = cv.rows(0.1 - vm, max(0.47 + 0.62 * float(cv.par["hair_length"].max()), 0.72 + vm) + 0.03,
                 (HEAD_R + vm) * 1.25 + 0.03)
    xs, ys, im = cv.cut(sl, cv.x, cv.y, cv.img)
    d_back, col = _back_hair_layer(cv, xs, ys)
    D.blend(im, col, D.cover(d_back, cv.px, 1.5))


def _body(cv: Canvas) -> None:
    """Neck with the chin's shadow, shirt with a V neckline, long hair falling in front of the shoulders."""
    P, C, px = cv.par, cv.cols, cv.px
    sl = cv.rows(0.68, 1.0)
    xs, ys, im = cv.cut(sl, cv.x, cv.y, cv.img)
    body_l = 0.55 + 0.5 * _lambert(xs, ys, CX, 1.25, 0.55, 0.45, cv.light)
    d_neck = D.sd_box(xs, ys, CX + 0.03 * torch.sin(cv.theta), 0.86, 0.098, 0.16, 0.04)
    chin_sh = 0.6 + 0.4 * D.smoothstep(P["chin"] - 0.01, P["chin"] + 0.07, ys)
    D.blend(im, C["skin"] * body_l * chin_sh * 0.9, D.cover(d_neck, px))
    torso = torch.where(ys > 1.19, (xs - CX).abs() - 0.62, D.sd_ellipse(xs, ys, CX, 1.19, 0.62, 0.30))
    d_shirt = torch.maximum(torso, (0.02 + (ys - 0.9) * 0.9 - (xs - CX).abs()) * 0.75)  # minus the V neckline
    shirt_tex = 1 + 0.06 * cv.amp * D.waves(xs, ys, cv.phase[:, :2] + 3.0, (35.0, 50.0))
    D.blend(im, C["shirt"] * body_l * shirt_tex, D.cover(d_shirt, px))
    L = P["hair_length"]
    if float(L.max()) > 0.75:
        d_back, col = _back_hair_layer(cv, xs, ys)
        d_front = torch.maximum(d_back, 0.11 - (xs - CX).abs())  # beside the neck, over the shoulders
        D.blend(im, col * 0.95, D.cover(d_front, px, 1.5) * D.smoothstep(0.8, 0.9, ys) * (L > 0.75).float())


def _ears(cv: Canvas) -> tuple[tuple[slice, slice], list[tuple[Tensor, Tensor, Tensor]]]:
    """Both ears, behind the head for now; returns their region and (distance, colour, visibility) each."""
    P, px = cv.par, cv.px
    sl_e = cv.rows(0.49, 0.6, HEAD_R * 1.3)
    xs, ys, im = cv.cut(sl_e, cv.x, cv.y, cv.img)
    ear_l = 0.45 + 0.6 * _lambert(xs, ys, CX, 0.47, HEAD_R * 1.05, 0.45, cv.light)
    ears = []
    for side in (-1.0, 1.0):
        psi = side * math.radians(93.0) + cv.theta
        ecx = CX + 1.04 * HEAD_R * torch.sin(psi)
        rx = (0.02 + 0.022 * torch.cos(psi).clamp_min(0)) * P["ear"]
        d_ear = D.sd_ellipse(xs, ys, ecx, 0.545, rx, 0.046 * P["ear"])
        inner = D.cover(D.sd_ellipse(xs, ys, ecx + 0.3 * rx * side, 0.55, rx * 0.45, 0.03), px, 2.0)
        col = cv.cols["skin"] * ear_l * 0.92 * (1 - 0.3 * inner)
        ears.append((d_ear, col, D.smoothstep(-0.05, 0.2, torch.cos(psi))))
        D.blend(im, col, D.cover(d_ear, px))
    return sl_e, ears


def _head(cv: Canvas, ears) -> dict[str, Tensor]:
    """Side/back of the head (lit like the face so no seam shows), the face front, then the visible ear
    over the side of the head; returns the per-pixel fields the face details and hair draw with."""
    P, px, x = cv.par, cv.px, cv.x
    xf, fr, dxf = view_to_feature(x, cv.theta)
    pxf = px * dxf.clamp(0.2, 5.0)
    sl = cv.rows(0.16, float(P["chin"].max()) + 0.04, HEAD_R + 0.01)
    face_a, d_face, face_l = torch.zeros_like(x), torch.ones_like(x), torch.full_like(x, 0.7)
    xs, ys, im, xfs, frs, pxs = cv.cut(sl, x, cv.y, cv.img, xf, fr, pxf)
    face_l[:, :, sl[0], sl[1]] = 0.42 + 0.62 * _lambert(xs, ys, CX, 0.53, HEAD_R * 1.05, 0.42, cv.light)
    skin_tex = 1 + 0.025 * D.waves(xs, ys, cv.phase[:, :3] + 0.5, (25.0, 47.0, 70.0))
    face_col = cv.cols["skin"] * face_l[:, :, sl[0], sl[1]] * skin_tex
    D.blend(im, face_col * 0.97, D.cover(D.sd_ellipse(xs, ys, CX, 0.43, HEAD_R * 0.97, 0.2), px))
    df = sd_face(xfs, ys, P)
    d_face[:, :, sl[0], sl[1]] = df
    face_col = face_col * (1 - 0.3 * D.smoothstep(-0.03, 0.0, df) * D.smoothstep(0.64, 0.82, ys))  # jaw shade
    face_a[:, :, sl[0], sl[1]] = (D.cover(df, pxs) * D.cover((xs - CX).abs() - HEAD_R, px)
                                  * D.smoothstep(0.0, 0.12, frs))
    D.blend(im, face_col, face_a[:, :, sl[0], sl[1]])
    sl_e, ear_list = ears
    xs, im, fa = cv.cut(sl_e, x, cv.img, face_a)
    for d_ear, col, vis in ear_list:
        D.blend(im, col, D.cover(d_ear, px) * vis * (1 - fa))
    return {"x": x, "y": cv.y, "px": px, "xf": xf, "fr": fr, "pxf": pxf, "face_a": face_a, "d_face": d_face,
            "face_l": face_l, "theta": cv.theta}


def _top_hair(cv: Canvas, fields: dict[str, Tensor]) -> None:
    """Hair on top of the head: inside the hair volume and above the hairline (feature space), with its shadow."""
    P, px, vol, hair = cv.par, cv.px, cv.vol, cv.cols["hair"]
    sl = cv.rows(0.0, 0.73 + float(vol.max()), HEAD_R + float(vol.max()) + 0.01)
    xs, ys, im, xfs, frs, pxs = cv.cut(sl, cv.x, cv.y, cv.img, fields["xf"], fields["fr"], fields["pxf"])
    d_hair = D.sd_ellipse(xs, ys, CX, 0.42, HEAD_R + vol, 0.30 + vol)
    dx = (xfs - CX).abs()
    fringe = (P["fringe"] - 0.55).clamp_min(0) / 0.45
    hl = (P["hairline"] + 0.012 * P["age"] + 0.05 * (dx / 0.17) ** 2 + 0.025 * P["parting"] * (xfs - CX) / 0.2
          + 0.06 * fringe * (1 - (dx / 0.2) ** 2).clamp_min(0))
    wisp = 0.006 * D.waves(xs, ys, cv.phase[:, :2] + 1.0, (120.0, 170.0))
    side = D.smoothstep(0.15, 0.215, dx)  # temples
    L = P["hair_length"]
    hl = hl + (0.43 + 0.2 * L - hl) * side
    back = 1 - D.smoothstep(-0.1, 0.45, frs + wisp * 8)  # side/back of the head: hair falls behind the ear
    hl = hl + (0.47 + 0.5 * L - hl) * back
    side = torch.maximum(side, back)
    hair_a = D.cover(d_hair, px, 1.5) * D.cover(ys - hl + wisp, pxs, 1.8)
    ang = torch.atan2(xs - CX - 0.06 * P["parting"], (ys - 0.1).abs() + 0.05)
    top_str = 1 + 0.08 * cv.amp * torch.sin(ang * 60 + 6 * D.waves(xs, ys, cv.phase[:, 2:], (11.0, 17.0)))
    hair_l = 0.35 + 0.75 * _lambert(xs, ys, CX, 0.42, HEAD_R + vol + 0.05, 0.36, cv.light)
    sheen = 0.2 * torch.exp(-(((ys - 0.2 + 0.5 * (xs - CX) ** 2) / 0.03) ** 2)) * (0.3 + P["hair_colour"])
    fa = fields["face_a"][:, :, sl[0], sl[1]]
    D.blend(im, hair * 0.25, D.cover(ys - hl - 0.014 + wisp, pxs, 8.0) * (1 - hair_a) * 0.35 * fa * (1 - side))
    D.blend(im, hair * hair_l * top_str + sheen * hair_l, hair_a)


def _draw_glasses(img: Tensor, G: dict[str, Tensor], P: dict[str, Tensor], C: dict[str, Tensor],
                  light: Tensor) -> None:
    """Frames, tinted lenses with a reflection, bridge and temple arms (feature space)."""
    xf, y, pxf, fr = G["xf"], G["y"], G["pxf"], G["fr"]
    on = (P["glasses"] > 0.5).float() * D.smoothstep(0.0, 0.15, fr) * D.cover((G["x"] - CX).abs() - HEAD_R, G["px"])
    th = 0.0035 + 0.002 * (P["frame_kind"] < 0.55).float()
    ey = P["eye_dy"] + 0.004
    frame = C["frame"]
    for side in (-1.0, 1.0):
        ex = CX + side * P["eye_dx"]
        d_lens = D.sd_box(xf, y, ex, ey, 0.054, 0.037, P["frame_round"])
        lens = D.cover(d_lens, pxf) * on
        tint = 0.08 + 0.82 * P["glasses_darkness"]
        D.blend(img, torch.tensor([0.06, 0.06, 0.08], device=img.device).view(1, 3, 1, 1), lens * tint)
        refl = torch.exp(-(((xf - ex) * side * 0.3 + (y - ey) + 0.012) / 0.007) ** 2)
        D.blend(img, torch.ones(1, 3, 1, 1, device=img.device), lens * refl * (0.08 + 0.2 * P["glasses_darkness"]))
        D.blend(img, frame * (0.7 + 0.3 * light[:, 2:3]), D.cover(d_lens.abs() - th, pxf) * on)
        d_arm = D.sd_segment(xf, y, ex + side * 0.054, ey - 0.02, CX + side * 0.262, ey - 0.012, th * 0.8)
        D.blend(img, frame * 0.8, D.cover(d_arm, pxf) * on)
    d_bridge = D.sd_parabola_stroke(xf, y, CX, ey - 0.012, P["eye_dx"] - 0.052, -0.006, th, 0.0)
    D.blend(img, frame, D.cover(d_bridge, pxf) * on)
