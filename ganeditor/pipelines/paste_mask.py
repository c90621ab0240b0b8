"""The paste-back mask: which pixels of the photo an edited face may change (no Qt, no warping).

Built in the aligned crop's frame from the landmarks: ``head_mask`` follows the face grown to the
hairline (eyes and mouth give the face's axes; the outline reaches 1.45 eye-mouth distances above
the eyes, the chin below the mouth, the temples and ears at the sides, narrowing to the jaw);
``may_change_mask`` is the wider region hair can occupy (fuller, longer hair down to the shoulders);
``diff_mask`` is where the edit actually changes the crop (edited vs the unedited reconstruction,
grown and blurred).  The soft edge is ``feather`` x the crop size wide, centred on each outline, and
``confine`` takes every mask to zero a margin inside the crop: no crop rectangle can ever show.

A ``PasteMask`` has a ``sure`` part (applied as it is) and a ``gated`` part that applies only where
the photo does not look like its own background (``BackgroundModel``: colour clusters of the crop's
ring outside the may-change region) — so a GAN's drift can recolour hair but never the curtains,
flags or walls around it.  The 'auto' mask is: the face itself (cheek to cheek, brows to chin)
sure; the rest of the head and wherever the edit acts inside the may-change region, gated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import max_value
from ganeditor.pipelines.align import AlignedFace, eyes_and_mouth, gaussian_blur

MASK_KINDS = ("auto", "head", "ellipse", "diff", "full")
MARGIN = 0.02  # the mask is zero within this fraction of the crop size from its border
FEATHER = 0.08  # default soft-edge width, as a fraction of the crop size
BACKGROUND_TOLERANCE = 0.06  # colour distance (see _colour_space) within which a colour counts as the background's
GATE_SOFTNESS = 0.25  # the background gate's smoothing (sigma), as a fraction of the feather width in the photo
GATE_EPS = 3e-3  # the guided filter's edge threshold (variance of the photo's brightness, [0, 1] units)
GATE_DEAD = 0.25  # smoothed likeness below this counts as none, above 1 minus it as full


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return x * x * (3 - 2 * x)


def crop_scale(size: int, aligned: AlignedFace) -> np.ndarray:
    """[3, 3] map from px of a size x size crop to px of the aligned crop (same frame, other resolution)."""
    k = aligned.output_size / size
    return np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1]])


@dataclass(frozen=True)
class FaceFrame:
    """The face's axes in crop px: eye centre, unit down vector, eye-to-mouth and eye-to-eye distances."""

    eye: np.ndarray
    down: np.ndarray
    d_em: float
    d_ee: float

    @classmethod
    def of(cls, aligned: AlignedFace, size: int) -> "FaceFrame":
        to_crop = np.linalg.inv(crop_scale(size, aligned))
        lm = aligned.to_aligned(aligned.landmarks) @ to_crop[:2, :2].T + to_crop[:2, 2]
        eye_l, eye_r, mouth_l, mouth_r = eyes_and_mouth(lm)
        eye, mouth = (eye_l + eye_r) / 2, (mouth_l + mouth_r) / 2
        d_em = max(math.hypot(*(mouth - eye)), 1e-6)
        return cls(eye, (mouth - eye) / d_em, d_em, max(math.hypot(*(eye_r - eye_l)), 1e-6))

    def coords(self, size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """(along, across) [size, size]: every pixel's offset from the eye centre along the face's down
        axis and across it, in units of the eye-to-mouth distance."""
        yy, xx = torch.meshgrid(torch.arange(size, device=device, dtype=torch.float32),
                                torch.arange(size, device=device, dtype=torch.float32), indexing="ij")
        px, py = xx - float(self.eye[0]), yy - float(self.eye[1])
        v = self.down
        along = (px * float(v[0]) + py * float(v[1])) / self.d_em
        across = (-px * float(v[1]) + py * float(v[0])) / self.d_em
        return along, across


def _soft_outline(r: torch.Tensor, width: float) -> torch.Tensor:
    """1 inside the outline r = 1, 0 outside, a smooth edge ``width`` (in r units) centred on it."""
    return _smoothstep((1 + width / 2 - r) / max(width, 1e-3))


def _head_r(frame: FaceFrame, along: torch.Tensor, across: torch.Tensor, top: float, bottom: float,
            half_width: float, jaw: float) -> torch.Tensor:
    """Normalised radius of a head outline from ``top`` to ``bottom`` (along, eye-mouth units), as wide
    as ``half_width`` (eye-distance units) down to the eyes and narrowing by ``jaw`` towards the bottom."""
    centre, half = (top + bottom) / 2, (bottom - top) / 2
    below = ((along - 0.0) / max(bottom, 1e-6)).clamp(0, 1)
    a = half_width * frame.d_ee / frame.d_em * (1 - jaw * below * below)
    return torch.sqrt((across / a) ** 2 + ((along - centre) / half) ** 2)


def head_mask(aligned: AlignedFace, size: int, feather: float = FEATHER, device: torch.device | str = "cpu") -> torch.Tensor:
    """[size, size]: the face grown to the hairline — 1.45 eye-mouth distances above the eyes, the chin
    0.65 below the mouth, 1.3 eye distances wide at the temples (ears), narrowing to the jaw."""
    frame = FaceFrame.of(aligned, size)
    along, across = frame.coords(size, device)
    r = _head_r(frame, along, across, top=-1.45, bottom=1.65, half_width=1.3, jaw=0.45)
    return _soft_outline(r, feather * size / (1.55 * frame.d_em))


def may_change_mask(aligned: AlignedFace, size: int, feather: float = FEATHER, device: torch.device | str = "cpu") -> torch.Tensor:
    """[size, size]: where an edit may act beyond the face: the hair (fuller, longer, down to the shoulders)."""
    frame = FaceFrame.of(aligned, size)
    along, across = frame.coords(size, device)
    r = _head_r(frame, along, across, top=-2.0, bottom=2.5, half_width=1.7, jaw=0.0)
    return _soft_outline(r, feather * size / (2.25 * frame.d_em))


def ellipse_mask(aligned: AlignedFace, size: int, feather: float = FEATHER, device: torch.device | str = "cpu") -> torch.Tensor:
    """[size, size]: the face only, from above the brows to the chin, cheek to cheek, narrowing to the jaw."""
    frame = FaceFrame.of(aligned, size)
    along, across = frame.coords(size, device)
    r = _head_r(frame, along, across, top=-1.25, bottom=1.65, half_width=1.1, jaw=0.45)
    return _soft_outline(r, 2 * feather * size / (2.9 * frame.d_em))


def diff_mask(edited: torch.Tensor, reconstruction: torch.Tensor, feather: float = FEATHER) -> torch.Tensor:
    """[S, S] mask where ``edited`` and ``reconstruction`` ([1, C, S, S] in [0, 1]) differ, grown and blurred."""
    size = edited.shape[-1]
    d = (edited - reconstruction).abs().amax(dim=1, keepdim=True)  # [N1HW]
    d = gaussian_blur(d, 0.004 * size + 0.5)
    m = _smoothstep((d - 0.03) / 0.07)
    grow = max(1, int(round(0.02 * size)))
    m = F.max_pool2d(m, 2 * grow + 1, stride=1, padding=grow)
    return gaussian_blur(m, feather * size / 2)[0, 0].clamp(0, 1)


def _kmeans(x: torch.Tensor, k: int, iters: int = 8) -> torch.Tensor:
    """Centres [k, C] of points [N, C] (deterministic start: evenly spaced samples after sorting by brightness)."""
    order = x.mean(1).argsort()
    c = x[order[torch.linspace(0, len(x) - 1, k).round().long()]].clone()
    for _ in range(iters):
        lab = torch.cdist(x, c).argmin(1)
        for j in range(k):
            if (lab == j).any():
                c[j] = x[lab == j].mean(0)
    return c


def confine(size: int, feather: float = FEATHER, device: torch.device | str = "cpu") -> torch.Tensor:
    """[size, size]: 0 within ``MARGIN`` x size of the crop's border, rising smoothly to 1 over
    ``feather`` x size inside that — no mask can reach the crop rectangle."""
    r = torch.arange(size, device=device, dtype=torch.float32)
    edge = (torch.minimum(r, size - 1 - r) - MARGIN * size) / max(feather * size, 1.0)
    return _smoothstep(torch.minimum(edge[:, None], edge[None, :]))


def _colour_space(x: torch.Tensor) -> torch.Tensor:
    """Pixels [N, C] in [0, 1] -> brightness and two opponent chroma axes (red-green, yellow-blue) with
    chroma counted twice, so brown hair and a grey wall of the same brightness are far apart."""
    if x.shape[1] < 3:
        return x[:, :1]
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    return torch.stack([(r + g + b) / 3, 2 * (r - g), (r + g) - 2 * b], dim=1)


@dataclass(frozen=True)
class BackgroundModel:
    """The photo's background around the head, by direction: colour clusters of the ring of crop pixels
    outside the may-change region, in ``BINS`` angular sectors around the head's centre, so a pixel is
    compared with the background beside it (a vignette, a curtain on one side, clothes below)."""

    centre: tuple[float, float]  # head centre in px of the aligned crop
    colours: torch.Tensor  # [BINS, K, 3] cluster centres in _colour_space ([BINS, K, 1] for gray photos)
    tolerance: float = BACKGROUND_TOLERANCE

    BINS = 36
    PER_BIN = 3

    @classmethod
    def of(cls, aligned: AlignedFace, feather: float = FEATHER) -> "BackgroundModel | None":
        """The model of ``aligned``'s crop (None when the ring is too small to sample)."""
        img = np.asarray(aligned.image, np.float32) / max_value(aligned.image.dtype)
        size = img.shape[0]
        frame = FaceFrame.of(aligned, size)
        centre = frame.eye + 0.25 * frame.d_em * frame.down
        ring = ((may_change_mask(aligned, size, feather) == 0) & (confine(size, feather) > 0)).numpy()
        if ring.sum() < 4 * cls.BINS:
            return None
        yy, xx = np.nonzero(ring)
        bins = _sector(torch.from_numpy(xx - centre[0]), torch.from_numpy(yy - centre[1]), cls.BINS)
        samples = _colour_space(torch.from_numpy(img[yy, xx]))
        colours = []
        for k in range(cls.BINS):
            near = sum((bins == (k + j) % cls.BINS for j in (-1, 0, 1)), torch.zeros_like(bins, dtype=torch.bool))
            pick = samples[near] if near.sum() >= cls.PER_BIN else samples
            colours.append(_kmeans(pick, cls.PER_BIN))
        return cls((float(centre[0]), float(centre[1])), torch.stack(colours))

    def likeness(self, pixels: torch.Tensor, crop_xy: torch.Tensor, soft: float = 1.0) -> torch.Tensor:
        """[1, C, H, W] photo pixels in [0, 1] and their aligned-crop coordinates [H, W, 2] ->
        [H, W]: 1 within ``tolerance`` of a background colour of their sector or the two beside it (and
        1 px around such pixels), 0 beyond twice it.  ``soft`` > 1 (px): the result is smoothed by a
        guided filter of that sigma steered by the photo's brightness, so the gate falls gently where it
        crosses smooth parts of the photo (skin-coloured background) and stays sharp at the photo's
        own edges (the hair's outline), where a step does not show."""
        c, h, w = pixels.shape[1:]
        x = _colour_space(pixels[0].reshape(c, -1).T)  # [N, 3]
        rel = crop_xy.reshape(-1, 2) - torch.tensor(self.centre, dtype=crop_xy.dtype, device=crop_xy.device)
        k = _sector(rel[:, 0], rel[:, 1], self.BINS)
        cols = self.colours.to(x)
        near = torch.cat([cols[(k + j) % self.BINS] for j in (-1, 0, 1)], dim=1)  # [N, 3K, 3]
        d = (near - x[:, None]).norm(dim=2).amin(1).reshape(h, w)
        like = _smoothstep((2 * self.tolerance - d) / self.tolerance)[None, None]
        sharp = gaussian_blur(F.max_pool2d(like, 3, stride=1, padding=1), 1.0)  # the soft edge leans to the hair's side
        if soft > 1.0:  # edge-aware: smooth where the photo is, following the photo's own edges where it has them
            q = _guided(pixels.mean(1, keepdim=True), sharp, soft, GATE_EPS)
            sharp = _smoothstep((q - GATE_DEAD) / (1 - 2 * GATE_DEAD))  # a faint halo across an edge: none
        return sharp[0, 0]


def _guided(guide: torch.Tensor, p: torch.Tensor, sigma: float, eps: float) -> torch.Tensor:
    """Guided filter (He et al.; Gaussian window ``sigma``) of ``p`` [N1HW] by ``guide`` [N1HW], in [0, 1]:
    smooth where the guide is smooth, following the guide's edges where it has them."""
    mi, mp = gaussian_blur(guide, sigma), gaussian_blur(p, sigma)
    a = (gaussian_blur(guide * p, sigma) - mi * mp) / ((gaussian_blur(guide * guide, sigma) - mi * mi).clamp(min=0) + eps)
    b = mp - a * mi
    return (gaussian_blur(a, sigma) * guide + gaussian_blur(b, sigma)).clamp(0, 1)


def _sector(dx: torch.Tensor, dy: torch.Tensor, bins: int) -> torch.Tensor:
    """Angular sector index in [0, bins) of offsets (dx, dy)."""
    ang = torch.atan2(dy.double(), dx.double())  # (-pi, pi]
    return ((ang + math.pi) / (2 * math.pi) * bins).long().clamp(0, bins - 1)


@dataclass
class PasteMask:
    """A paste mask in the crop's frame: ``sure`` [S, S] applies as it is, ``gated`` [S, S] only where
    the photo does not look like ``background`` (always, when that is None)."""

    sure: torch.Tensor
    gated: torch.Tensor
    background: BackgroundModel | None = None
    feather: float = FEATHER  # the soft-edge width it was built with (the gate's blur follows it)

    @property
    def size(self) -> int:
        return int(self.sure.shape[-1])

    def upper_bound(self) -> torch.Tensor:
        """[S, S]: the most the mask can be anywhere (before the background gate)."""
        return torch.maximum(self.sure, self.gated)


def build_mask(aligned: AlignedFace, edited: torch.Tensor, mask: str | np.ndarray = "auto",
               reconstruction: torch.Tensor | None = None, feather: float = FEATHER,
               background: BackgroundModel | None = None) -> PasteMask:
    """The paste mask for an edited crop [1, C, S, S] (see the module docstring); ``background``: the
    face's BackgroundModel if already made (it depends only on the face and the feather)."""
    size, dev = edited.shape[-1], edited.device
    zero = torch.zeros(size, size, device=dev)
    if not 0.005 <= feather <= 0.5:
        raise GanEditorError(f"feather must be between 0.005 and 0.5 of the crop size, got {feather:g}")
    if isinstance(mask, np.ndarray):
        m = torch.from_numpy(np.asarray(mask, np.float32)).to(dev)
        if tuple(m.shape) != (size, size):
            raise GanEditorError(f"mask must be {size}x{size} like the edited crop, got {list(m.shape)}")
        return PasteMask(m.clamp(0, 1) * confine(size, feather, dev), zero)
    if mask not in MASK_KINDS:
        raise GanEditorError(f"unknown mask {mask!r} (expected one of {', '.join(MASK_KINDS)} or an array)")
    if mask == "diff" and reconstruction is None:
        raise GanEditorError("mask 'diff' needs the unedited reconstruction")
    fence = confine(size, feather, dev)
    if mask in ("full", "head", "ellipse"):
        m = {"full": lambda: torch.ones(size, size, device=dev), "head": lambda: head_mask(aligned, size, feather, dev),
             "ellipse": lambda: ellipse_mask(aligned, size, feather, dev)}[mask]()  # fmt: skip
        return PasteMask(m * fence, zero)
    gated = head_mask(aligned, size, feather, dev) if mask == "auto" else zero
    if reconstruction is not None:
        acts = diff_mask(edited, reconstruction, feather) * may_change_mask(aligned, size, feather, dev)
        gated = torch.maximum(gated, acts)
    sure = ellipse_mask(aligned, size, feather, dev) if mask == "auto" else zero
    # min, not product: where the hairline meets the confinement their ramps do not add up to a steeper one
    return PasteMask(torch.minimum(sure, fence), torch.minimum(gated, fence), background or BackgroundModel.of(aligned, feather), feather)
