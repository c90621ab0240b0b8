"""Face details of procedural portraits: shading of sockets/nose/cheeks, wrinkles, beard, mouth,
eyes and eyebrows, drawn in feature space (see ``_portrait_draw``).  On an untransformed canvas each
group only touches the rows it can cover, which keeps rendering fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ganeditor.worlds import _draw as D

Tensor = torch.Tensor
CX = 0.5
HEAD_R = 0.27
NOSE_DEPTH = 0.035


def _bump(r2: Tensor) -> Tensor:
    """Smooth falloff 1 -> 0 over r2 in [0, 1]."""
    return (1 - r2).clamp_min(0) ** 2


def _ell2(x: Tensor, y: Tensor, cx, cy, rx, ry) -> Tensor:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2


def _rgb(r: float, g: float, b: float, like: Tensor) -> Tensor:
    return torch.tensor([r, g, b], device=like.device, dtype=torch.float32).view(1, 3, 1, 1)


@dataclass
class Face:
    """What the face-detail painters share: the image, the per-pixel fields of the head (``fields``: x, y,
    px, xf, fr, pxf, face_a, d_face, face_l, theta), the parameters ``par``, the colours ``cols``, the
    light direction, the render size and whether groups may work on bands of rows (``banded``)."""

    img: Tensor
    fields: dict[str, Tensor]
    par: dict[str, Tensor]
    cols: dict[str, Tensor]
    light: Tensor
    size: int
    banded: bool
    amp: float

    def band(self, y0: float, y1: float) -> tuple[dict[str, Tensor], Tensor]:
        """Views of the fields and the image over the rows (and the head's columns) a group can touch."""
        if not self.banded:
            return self.fields, self.img
        rows, width = self.img.shape[2], self.img.shape[3]
        cols = slice(max(0, int((CX - HEAD_R - 0.01) * width) - 2),
                     min(width, int(math.ceil((CX + HEAD_R + 0.01) * width)) + 2))
        sl = (slice(None), slice(None), slice(max(0, int(y0 * rows) - 2), min(rows, int(math.ceil(y1 * rows)) + 2)), cols)
        return {k: v[sl] if v.dim() == 4 and v.shape[2] == rows else v for k, v in self.fields.items()}, self.img[sl]

    @property
    def smile_pos(self) -> Tensor:
        return self.par["smile"].clamp_min(0)

    @property
    def mouth_w(self) -> Tensor:
        return self.par["mouth_w"] * (1 + 0.12 * self.smile_pos)


def draw_face_details(img: Tensor, fields: dict[str, Tensor], par: dict[str, Tensor], cols: dict[str, Tensor],
                      light: Tensor, size: int, banded: bool, amp: float) -> None:
    """Paint the face details onto ``img`` [B,3,H,W] in place, back to front."""
    face = Face(img, fields, par, cols, light, size, banded, amp)
    _shading(face)
    _lines(face)
    _beard(face)  # under the mouth, which is drawn after
    _mouth(face)
    _eyes(face)
    _eyebrows(face)


def _shading(face: Face) -> None:
    """Shadows of the eye sockets, blush and smile on the cheeks, the nose's sides and tip."""
    P, skin, lx, sp = face.par, face.cols["skin"], face.light[:, 0:1], face.smile_pos
    ey, edx, ny, nw = P["eye_dy"], P["eye_dx"], P["nose_y"], P["nose_w"]
    g, im = face.band(0.28, 0.9)
    xf, y, fa = g["xf"], g["y"], g["face_a"]
    shadow = skin * 0.5
    for side in (-1.0, 1.0):
        ex = CX + side * edx
        D.blend(im, shadow, _bump(_ell2(xf, y, ex, ey - 0.004, 0.066, 0.04)) * (0.16 + 0.14 * P["age"]) * fa)
        cheek = _ell2(xf, y, CX + side * 0.105, 0.61 - 0.015 * sp, 0.055, 0.04)
        D.blend(im, skin * _rgb(1.05, 0.62, 0.6, im), _bump(cheek) * (0.05 + 0.13 * P["blush"]) * fa)
        D.blend(im, skin * 1.25, _bump(cheek) * 0.12 * sp * fa)
    xn = _nose_x(g)
    bridge_a = D.smoothstep(0.46, 0.53, y) * (1 - D.smoothstep(0.59, 0.64, y)) * fa
    for side in (-1.0, 1.0):  # nose sides, darker away from the light
        a = torch.exp(-(((xn - CX - side * (nw * 0.75)) / 0.011) ** 2)) * (0.06 + 0.22 * (-side * lx).clamp_min(0))
        D.blend(im, shadow, a * bridge_a)
    D.blend(im, skin * 1.3, _bump(_ell2(xn, y, CX + 0.004 * lx, ny - 0.011, 0.013, 0.013)) * 0.2 * fa)
    D.blend(im, shadow, _bump(_ell2(xn, y, CX, ny + 0.014, 0.035, 0.012)) * 0.35 * fa)


def _nose_x(g: dict[str, Tensor]) -> Tensor:
    """Feature x of the nose, which stands off the head cylinder (shifts further when the head turns)."""
    return _view_to_feature(g["x"] - NOSE_DEPTH * torch.sin(g["theta"]), g["theta"])[0]


def _lines(face: Face) -> None:
    """Nostrils and nose-to-mouth folds; crow's feet, eye bags and marionette lines (age); forehead lines
    (age, raised brows) and frown lines."""
    P, sp, age = face.par, face.smile_pos, face.par["age"]
    ey, edx, ny, nw, mw, my = P["eye_dy"], P["eye_dx"], P["nose_y"], P["nose_w"], face.mouth_w, P["mouth_y"]
    g, im = face.band(0.28, 0.9)
    xf, y, pxf, fa = g["xf"], g["y"], g["pxf"], g["face_a"]
    xn, shadow, dark = _nose_x(g), face.cols["skin"] * 0.5, _rgb(0.05, 0.03, 0.03, face.img)
    for side in (-1.0, 1.0):
        ex, nx = CX + side * edx, CX + side * nw * 0.8
        D.blend(im, dark, D.cover(D.sd_ellipse(xn, y, nx, ny + 0.009, 0.0085, 0.0042), pxf, 2.0) * 0.7 * fa)
        ring = (D.sd_circle(xn, y, CX + side * nw * 1.05, ny + 0.001, 0.012).abs() - 0.0012)
        D.blend(im, shadow, D.cover(ring, pxf, 2.0) * (y > ny - 0.006).float() * 0.35 * fa)
        fold = D.sd_segment(xf, y, CX + side * (nw + 0.014), ny + 0.006, CX + side * (mw + 0.012), my + 0.014, 0.0)
        D.blend(im, shadow, (1 - fold / 0.009).clamp(0, 1) ** 2 * (0.03 + 0.2 * age + 0.22 * sp) * fa)
        ox = CX + side * (edx + P["eye_w"] + 0.012)
        old = D.smoothstep(0.45, 0.95, age)
        for ang in (-0.45, 0.0, 0.45):
            d = D.sd_segment(xf, y, ox, ey, ox + side * 0.016 * math.cos(ang), ey + 0.016 * math.sin(ang), 0.0009)
            D.blend(im, shadow, D.cover(d, pxf, 1.5) * (0.35 * old + 0.15 * sp * old) * fa)
        bag = D.sd_parabola_stroke(xf, y, ex, ey + 0.023, P["eye_w"] * 0.8, -0.006, 0.0012)
        D.blend(im, shadow, D.cover(bag, pxf, 2.0) * (0.08 + 0.35 * old) * fa)
        mar = D.sd_segment(xf, y, CX + side * (mw + 0.004), my + 0.012, CX + side * (mw - 0.004), my + 0.06, 0.0)
        D.blend(im, shadow, (1 - mar / 0.005).clamp(0, 1) ** 2 * 0.3 * D.smoothstep(0.55, 1.0, age) * fa)
    raise_ = P["eyebrow"].clamp_min(0)
    for k in range(3):
        d = D.sd_parabola_stroke(xf, y, CX, ey - 0.095 - 0.022 * k, 0.09 - 0.01 * k, 0.006, 0.0012)
        D.blend(im, shadow, D.cover(d, pxf, 1.8) * (0.3 * D.smoothstep(0.5, 1.0, age) + 0.25 * raise_) * fa)
    frown = (-P["eyebrow"]).clamp_min(0)
    for side in (-1.0, 1.0):
        d = D.sd_segment(xf, y, CX + side * 0.012, ey - 0.06, CX + side * 0.009, ey - 0.032, 0.0012)
        D.blend(im, shadow, D.cover(d, pxf, 1.8) * 0.35 * frown * fa)


def _beard(face: Face) -> None:
    """Stubble to full beard below the nose, hair-coloured with a per-hair texture."""
    P, beard = face.par, face.par["beard"]
    if float(beard.max()) <= 0:
        return
    g, im = face.band(0.5, 1.0)
    xf, y, pxf = g["xf"], g["y"], g["pxf"]
    top = P["nose_y"] + 0.03 - 0.05 * D.smoothstep(0.07, 0.19, (xf - CX).abs()) + 0.025 * (1 - beard)
    tex = 0.5 + 0.5 * D.hash_noise(xf, y, 1.0 / face.size, P["tex"])
    full = D.smoothstep(0.35, 0.9, beard)
    vis = D.smoothstep(0.0, 0.12, g["fr"]) * D.cover((g["x"] - CX).abs() - HEAD_R, g["px"])
    a = (D.cover(g["d_face"] - 0.014 * beard, pxf, 1.5) * D.smoothstep(top - 0.01, top + 0.025, y)
         * (beard * 1.3).clamp(0, 1) * (0.55 + 0.45 * tex) * vis)
    D.blend(im, face.cols["hair"] * (0.55 + 0.3 * g["face_l"]), a * (0.45 + 0.5 * full))


def _mouth(face: Face) -> None:
    """Lips shaped by smile and age, the open mouth with teeth, the seam and the dimples."""
    P, skin, lx, age, sp = face.par, face.cols["skin"], face.light[:, 0:1], face.par["age"], face.smile_pos
    mw, my = face.mouth_w, P["mouth_y"]
    g, im = face.band(0.62, 0.84)
    xf, y, pxf, fa = g["xf"], g["y"], g["pxf"], g["face_a"]
    t = (xf - CX) / mw
    env = (1 - t * t).clamp_min(0)
    line = my - 0.022 * P["smile"] * t * t
    gap = 0.03 * P["mouth_open"] + 0.014 * ((P["smile"] - 0.35).clamp_min(0) / 0.65)
    in_u, in_l = line - 0.5 * gap * env, line + 0.5 * gap * env
    thin = 1 - 0.45 * age
    out_u = in_u - P["lip_u"] * thin * env ** 0.6 * (1 - 0.35 * torch.exp(-(t / 0.2) ** 2)) - 0.0015
    out_l = in_l + P["lip_l"] * thin * env ** 0.7 + 0.0015
    cap = (t.abs() - 1) * mw
    lipcol = skin * 0.8 + (_rgb(0.75, 0.22, 0.26, im) * (0.55 + 0.45 * skin.mean(1, keepdim=True)) - skin * 0.8) * 0.6
    lip_l = 0.75 + 0.35 * g["face_l"]
    lips = D.cover(torch.maximum(torch.maximum(out_u - y, y - out_l), cap), pxf, 1.6) * fa
    upper = (y < line).float()
    D.blend(im, lipcol * lip_l * (0.82 + 0.18 * (1 - upper)), lips)
    D.blend(im, lipcol * 1.35, _bump(_ell2(xf, y, CX - 0.01 * lx, in_l + 0.006, 0.04, 0.005)) * 0.3 * lips)
    inside = D.cover(torch.maximum(torch.maximum(in_u - y, y - in_l), cap), pxf) * fa
    D.blend(im, _rgb(0.22, 0.06, 0.07, im), inside)
    teeth = D.cover(torch.maximum(y - (in_u + 0.5 * gap * env * 0.8), cap * 1.05), pxf, 1.5) * inside
    D.blend(im, _rgb(0.93, 0.9, 0.84, im) * (0.75 + 0.25 * env), teeth)
    seam = D.cover(torch.maximum((y - line).abs() - 0.0018 * env - 0.0004, cap), pxf, 1.3)
    D.blend(im, lipcol * 0.35, seam * fa * 0.7)
    for side in (-1.0, 1.0):
        dimple = _ell2(xf, y, CX + side * mw * 1.04, my - 0.022 * P["smile"], 0.008, 0.008)
        D.blend(im, skin * 0.5, _bump(dimple) * (0.2 + 0.3 * sp) * fa)


def _eyes(face: Face) -> None:
    """Whites, iris, pupil and highlight between the lids; lashes, lower lid and crease."""
    P, skin, lx = face.par, face.cols["skin"], face.light[:, 0:1]
    g, im = face.band(0.38, 0.55)
    xf, y, pxf, fa = g["xf"], g["y"], g["pxf"], g["face_a"]
    opn = P["eye_openness"] * (1 - 0.3 * face.smile_pos)
    h_up, h_lo = 0.025 * opn + 0.0004, 0.012 * opn + 0.0003
    ew = P["eye_w"]
    for side in (-1.0, 1.0):
        ex = CX + side * P["eye_dx"]
        t = (xf - ex) / ew
        env = (1 - t * t).clamp_min(0)
        yc = P["eye_dy"] - 0.003 * t * side
        upper = yc - h_up * env * (1 - 0.15 * t * side)
        lower = yc + h_lo * env
        cap = (t.abs() - 1) * ew
        eye = D.cover(torch.maximum(torch.maximum(upper - y, y - lower), cap), pxf) * fa
        lid_sh = 0.55 + 0.45 * D.smoothstep(0.0, 0.012, y - upper)
        D.blend(im, _rgb(0.93, 0.9, 0.87, im) * lid_sh * (0.75 + 0.25 * g["face_l"]), eye)
        ic, ir = ex + P["gaze"], 0.0185 * ew / 0.043
        r = torch.sqrt((xf - ic) ** 2 + (y - yc - 0.001) ** 2)
        iris = D.cover(r - ir, pxf) * eye
        D.blend(im, face.cols["iris"] * (1.15 - 0.55 * D.smoothstep(ir * 0.4, ir, r)) * lid_sh, iris)
        D.blend(im, _rgb(0.02, 0.02, 0.02, im), D.cover(r - ir * 0.42, pxf) * eye)
        hl = D.sd_circle(xf, y, ic - 0.005 + 0.004 * lx, yc - 0.005, 0.003)
        D.blend(im, _rgb(1.0, 1.0, 1.0, im), D.cover(hl, pxf) * eye * 0.85)
        lash = torch.maximum((y - upper).abs() - 0.0026 * (1 - 0.4 * t * t) - 0.0008 * opn,
                             (t.abs() - 1.1) * ew)
        D.blend(im, _rgb(0.07, 0.05, 0.05, im), D.cover(lash, pxf, 1.2) * fa * 0.92)
        low = torch.maximum((y - lower).abs() - 0.0009, cap)
        D.blend(im, skin * 0.45, D.cover(low, pxf, 1.5) * fa * 0.35)
        crease = torch.maximum((y - (upper - 0.009 - 0.004 * env)).abs() - 0.001, (t.abs() - 0.9) * ew)
        D.blend(im, skin * 0.55, D.cover(crease, pxf, 1.8) * fa * 0.3)


def _eyebrows(face: Face) -> None:
    """Arched strokes raised, lowered or tilted by ``eyebrow``, thinner with age, hair-textured."""
    P, age = face.par, face.par["age"]
    g, im = face.band(0.33, 0.47)
    xf, y, pxf, fa = g["xf"], g["y"], g["pxf"], g["face_a"]
    brow_col = face.cols["hair"] * 0.7 * (1 - 0.3 * face.cols["skin"].mean(1, keepdim=True)) + 0.03
    tilt = 0.009 * (-P["eyebrow"]).clamp_min(0)
    for side in (-1.0, 1.0):
        bx = CX + side * (P["eye_dx"] + 0.004)
        by = P["eye_dy"] - 0.047 - 0.014 * P["eyebrow"] + 0.003 * face.smile_pos
        yy = y + tilt * ((xf - bx) * side / 0.055)
        d = D.sd_parabola_stroke(xf, yy, bx + side * 0.003, by, 0.056, P["brow_arch"] * (1 + 0.4 * P["eyebrow"]),
                                 P["brow_thick"] * (1 - 0.3 * age), 0.55)
        tex = 0.75 + 0.25 * D.hash_noise(xf * 3, y, 1.0 / face.size, P["tex"] + side) if face.amp > 0 else 1.0
        D.blend(im, brow_col, D.cover(d, pxf, 1.3) * fa * 0.9 * tex)


def _view_to_feature(x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    s = ((x - CX) / HEAD_R).clamp(-0.999, 0.999)
    phi0 = torch.asin(s) - theta
    fr = torch.cos(phi0)
    return CX + HEAD_R * torch.sin(phi0), fr, fr.abs() / torch.sqrt(1 - s * s)
