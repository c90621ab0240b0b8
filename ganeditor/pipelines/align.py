"""FFHQ-style face alignment: eye centres and mouth corners -> an oriented square crop at the
generator's resolution, with the transform kept so an edited crop can be pasted back.

Geometry (facts of the FFHQ dataset script's ``recreate_aligned_images``, our own code): with
``e2e = right eye - left eye`` and ``e2m = mouth centre - eye centre``, the crop's x axis is
``e2e - rot90(e2m)`` normalised and scaled to ``max(2 |e2e|, 1.8 |e2m|)``, its y axis is x turned by
90 degrees, its centre ``eye centre + 0.1 e2m``; the quad is ``c - x - y, c - x + y, c + x + y,
c + x - y`` (top-left, bottom-left, bottom-right, top-right).  Where the quad leaves the photo the
photo is reflect-padded by at least 0.3 of the quad size, and the padding blurred (sigma 0.02 of the
quad size) and faded towards the median colour.

Coordinates are pixel indices: the centre of pixel (0, 0) is (0, 0), as detectors report them.
Resampling: the photo region is pre-shrunk with an antialiasing filter when the face is much larger
than the output, then sampled bicubically at 2x2 points per output pixel and averaged.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import max_value
from ganeditor.pipelines.face_detect import MANUAL_HINT, MTCNN, detect_faces

TINY_EYE_DISTANCE = 24.0  # px: below this the aligned face is mostly upsampled blur
SUPERSAMPLE = 2  # sample points per output pixel along each axis


@dataclass
class AlignedFace:
    """An aligned crop and how it maps back onto the photo it came from."""

    image: np.ndarray  # [S, S, C] same dtype as the photo
    quad: np.ndarray  # [4, 2] photo px: crop corners top-left, bottom-left, bottom-right, top-right
    transform: np.ndarray  # [3, 3] homogeneous (x, y, 1): aligned px -> photo px
    landmarks: np.ndarray  # [5, 2] or [4, 2] photo px that defined the crop
    detector_name: str  # 'manual' or the detector's name
    face_index: int = 0  # which face (0 = largest) when detected
    num_faces: int = 1  # how many faces the detector found (1 for manual landmarks)
    source_size: tuple[int, int] = (0, 0)  # photo (width, height)
    notes: list[str] = field(default_factory=list)

    @property
    def output_size(self) -> int:
        """Side of the aligned crop in pixels."""
        return int(self.image.shape[0])

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Aligned px [N, 2] -> photo px [N, 2]."""
        p = np.asarray(points, np.float64)
        return p @ self.transform[:2, :2].T + self.transform[:2, 2]

    def to_aligned(self, points: np.ndarray) -> np.ndarray:
        """Photo px [N, 2] -> aligned px [N, 2]."""
        inv = np.linalg.inv(self.transform)
        return np.asarray(points, np.float64) @ inv[:2, :2].T + inv[:2, 2]

    def for_photo_size(self, width: int, height: int) -> "AlignedFace":
        """The same face in the photo resized to ``width`` x ``height`` (e.g. a reduced preview copy)."""
        sx, sy = width / self.source_size[0], height / self.source_size[1]
        s = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])  # pixel centres stay centres
        pts = lambda a: np.asarray(a, np.float64) @ s[:2, :2].T + s[:2, 2]  # noqa: E731
        return replace(self, quad=pts(self.quad), transform=s @ self.transform, landmarks=pts(self.landmarks),
                       source_size=(int(width), int(height)))  # fmt: skip


# -------------------------------------------------------------------------------------- geometry


def eyes_and_mouth(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(left eye, right eye, left mouth corner, right mouth corner) from 5 (MTCNN order: eyes, nose,
    mouth corners), 4 (eyes, mouth corners) or 68 (dlib/iBUG) landmarks; 'left' = image left."""
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim == 1 and lm.size in (8, 10):
        lm = lm.reshape(-1, 2)
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] not in (4, 5, 68) or not np.isfinite(lm).all():
        raise GanEditorError(f"landmarks must be 5 or 4 (x, y) points, got shape {list(lm.shape)}; " + MANUAL_HINT)
    if lm.shape[0] == 68:
        return lm[36:42].mean(0), lm[42:48].mean(0), lm[48], lm[54]
    if lm.shape[0] == 5:
        return lm[0], lm[1], lm[3], lm[4]
    return lm[0], lm[1], lm[2], lm[3]


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop quad [4, 2] (top-left, bottom-left, bottom-right, top-right) for the landmarks."""
    eye_l, eye_r, mouth_l, mouth_r = eyes_and_mouth(landmarks)
    eye_avg = (eye_l + eye_r) * 0.5
    e2e = eye_r - eye_l
    e2m = (mouth_l + mouth_r) * 0.5 - eye_avg
    x = e2e - np.array([-e2m[1], e2m[0]])  # eye axis minus the eye->mouth axis turned by 90 degrees
    norm = math.hypot(*x)
    scale = max(math.hypot(*e2e) * 2.0, math.hypot(*e2m) * 1.8)
    if norm < 1e-9 or scale < 1e-6:
        raise GanEditorError("landmarks are degenerate (eyes and mouth coincide); " + MANUAL_HINT)
    x = x / norm * scale
    y = np.array([-x[1], x[0]])
    c = eye_avg + e2m * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def quad_transform(quad: np.ndarray, size: int) -> np.ndarray:
    """[3, 3] map aligned px -> photo px: output pixel centres (i + 0.5) / size span the quad."""
    q = np.asarray(quad, np.float64)
    ex, ey = (q[3] - q[0]) / size, (q[1] - q[0]) / size
    t = np.eye(3)
    t[:2, 0], t[:2, 1] = ex, ey
    t[:2, 2] = q[0] + 0.5 * (ex + ey)
    return t


# ------------------------------------------------------------------------------------ resampling


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [N, C, H, W] (reflect borders); large sigmas run at reduced size."""
    if sigma <= 0.3:
        return x
    h, w = x.shape[2:]
    step = int(sigma // 4)
    if step >= 2 and min(h, w) // step >= 4:
        small = F.interpolate(x, size=(math.ceil(h / step), math.ceil(w / step)), mode="area")
        small = gaussian_blur(small, sigma / step)
        return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    r = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, device=x.device, dtype=x.dtype) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    mode = "reflect" if min(h, w) > r else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def shrink_factor(scale: float, supersample: int = SUPERSAMPLE) -> float:
    """How much to pre-shrink a source sampled every ``scale`` px by ``supersample`` points per pixel."""
    return max(1.0, scale / supersample)


def resize_aa(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of [N, C, H, W] to (h, w) (a no-op at the same size)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def sample_affine(src: torch.Tensor, t: np.ndarray, out_hw: tuple[int, int], supersample: int = SUPERSAMPLE,
                  padding_mode: str = "border") -> torch.Tensor:
    """Bicubic samples of ``src`` [N, C, H, W] at ``t`` (out px -> src px, 3x3), ``supersample``^2 points
    per output pixel averaged -> [N, C, out_h, out_w]."""
    h, w = src.shape[2:]
    oh, ow = out_hw
    s = supersample
    # Compose: grid-normalised output -> supersampled px -> output px -> src px -> grid-normalised src.
    n_out = np.array([[ow * s / 2, 0, ow * s / 2 - 0.5], [0, oh * s / 2, oh * s / 2 - 0.5], [0, 0, 1]])
    sub = np.array([[1 / s, 0, 0.5 / s - 0.5], [0, 1 / s, 0.5 / s - 0.5], [0, 0, 1]])
    n_src = np.array([[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]])
    theta = torch.as_tensor((n_src @ np.asarray(t, np.float64) @ sub @ n_out)[:2], dtype=src.dtype, device=src.device)
    grid = F.affine_grid(theta[None].expand(src.shape[0], 2, 3), [src.shape[0], 1, oh * s, ow * s], align_corners=False)
    out = F.grid_sample(src, grid, mode="bicubic",
                        padding_mode=padding_mode, align_corners=False)
    return F.avg_pool2d(out, s) if s > 1 else out


def _pad_like_ffhq(img: torch.Tensor, quad: np.ndarray, qsize: float) -> tuple[torch.Tensor, np.ndarray]:
    """Reflect-pad [1, C, H, W] where ``quad`` leaves it, blur the padding and fade it to the median."""
    h, w = img.shape[2:]
    border = max(int(round(qsize * 0.1)), 3)
    lo, hi = np.floor(quad.min(0)), np.ceil(quad.max(0))
    pad = [max(-lo[0] + border, 0), max(-lo[1] + border, 0), max(hi[0] - w + border, 0), max(hi[1] - h + border, 0)]
    if max(pad) <= border - 4:
        return img, quad
    p = [int(max(v, round(qsize * 0.3))) for v in pad]  # left, top, right, bottom
    a = np.pad(img[0].cpu().numpy(), ((0, 0), (p[1], p[3]), (p[0], p[2])), mode="reflect")
    x = torch.from_numpy(a).to(img.device)[None]
    hh, ww = a.shape[1:]
    yy = torch.arange(hh, device=x.device, dtype=x.dtype)[:, None]
    xx = torch.arange(ww, device=x.device, dtype=x.dtype)[None, :]
    mask = torch.maximum(1.0 - torch.minimum(xx / p[0], (ww - 1 - xx) / p[2]),
                         1.0 - torch.minimum(yy / p[1], (hh - 1 - yy) / p[3]))  # [H, W] 0 at the photo edge
    x = x + (gaussian_blur(x, qsize * 0.02) - x) * (mask * 3.0 + 1.0).clamp(0, 1)
    median = x.flatten(2).median(dim=2).values[:, :, None, None]
    x = x + (median - x) * mask.clamp(0, 1)
    return x, quad + np.array([p[0], p[1]], np.float64)


def warp_to_quad(pixels: np.ndarray, quad: np.ndarray, size: int, device: torch.device | str = "cpu",
                 enable_padding: bool = True) -> np.ndarray:
    """Resample the ``quad`` of ``pixels`` [H, W, C] (uint8/uint16) to a size x size crop of the same dtype."""
    h, w, c = pixels.shape
    qsize = math.hypot(*(quad[3] - quad[0]))
    # Work on the quad's bounding box plus a border, clipped to the photo.
    border = max(int(round(qsize * 0.1)), 3)
    x0, y0 = (np.floor(quad.min(0)) - border).astype(int)
    x1, y1 = (np.ceil(quad.max(0)) + border + 1).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        raise GanEditorError("the face lies outside the image; " + MANUAL_HINT)
    region = np.ascontiguousarray(pixels[y0:y1, x0:x1])
    img = torch.from_numpy(region.astype(np.float32)).to(device).permute(2, 0, 1)[None]  # [NCHW]
    q = quad - np.array([x0, y0], np.float64)
    # Pre-shrink so that the supersampled grid steps about one source pixel.
    f = shrink_factor(qsize / size)
    if f > 1.0:
        rh, rw = max(1, round((y1 - y0) / f)), max(1, round((x1 - x0) / f))
        sx, sy = rw / (x1 - x0), rh / (y1 - y0)
        img = resize_aa(img, (rh, rw))
        q = (q + 0.5) * np.array([sx, sy]) - 0.5
    if enable_padding:
        img, q = _pad_like_ffhq(img, q, math.hypot(*(q[3] - q[0])))
    out = sample_affine(img, quad_transform(q, size), (size, size))
    peak = max_value(pixels.dtype)
    out = out[0].permute(1, 2, 0).clamp(0, peak).round().cpu().numpy()  # [HWC]
    return out.astype(pixels.dtype)


# ----------------------------------------------------------------------------------------- entry


def _pose_notes(lm: np.ndarray, quad: np.ndarray, w: int, h: int) -> list[str]:
    """Warnings a person should see: a face turned far away, a crop leaving the photo."""
    notes = []
    if np.asarray(lm).shape[0] == 5:  # the nose's offset from the eye-mouth midline, in eye distances
        eye_l, eye_r, mouth_l, mouth_r = eyes_and_mouth(lm)
        mid = (eye_l + eye_r + mouth_l + mouth_r) / 4
        turn = abs(float(np.dot(eye_r - eye_l, lm[2] - mid))) / max(float(np.sum((eye_r - eye_l) ** 2)), 1e-9)
        if turn > 0.35:
            notes.append("the face is turned far to the side: generators learn mostly frontal faces, the fit may be poor")
    outside = np.mean([(q[0] < 0) | (q[0] > w - 1) | (q[1] < 0) | (q[1] > h - 1) for q in quad])
    if outside > 0:
        notes.append("the face is at the edge of the photo: the part of the crop outside it is filled by mirroring")
    return notes


def align_face(
    image: np.ndarray,  # [H, W, C] uint8/uint16 photo (C = 1, 3 or 4; alpha is carried along)
    landmarks: str | np.ndarray | None = "auto",  # 'auto'/None: detect; else [5, 2], [4, 2] or [68, 2] photo px
    output_size: int = 1024,  # side of the aligned crop (the generator's resolution)
    face_index: int = 0,  # which detected face, 0 = largest
    device: torch.device | str = "cpu",  # where detection and resampling run
    detector: MTCNN | None = None,  # a loaded detector (default: MTCNN if its weights are found)
    enable_padding: bool = True,  # reflect/blur padding where the crop leaves the photo (else edge pixels)
) -> AlignedFace:
    """Align one face of ``image`` FFHQ-style; the result keeps the transform back to the photo."""
    if image.ndim == 2:
        image = image[:, :, None]
    assert image.ndim == 3 and image.dtype in (np.uint8, np.uint16), (image.shape, image.dtype)
    assert output_size >= 4, output_size
    notes: list[str] = []
    num_faces, name = 1, "manual"
    if landmarks is None or (isinstance(landmarks, str) and landmarks == "auto"):
        faces = detect_faces(image, device, detector)
        det = detector.name if detector is not None else MTCNN.name
        if not faces:
            raise GanEditorError(f"no face found in the image (detector: {det}); " + MANUAL_HINT)
        if not -len(faces) <= face_index < len(faces):
            raise GanEditorError(f"face index {face_index} is out of range: {len(faces)} face(s) found (0 = largest)")
        lm, num_faces, name = faces[face_index].landmarks, len(faces), det
        if num_faces > 1:
            notes.append(f"{num_faces} faces found; aligned face {face_index} (0 = largest)")
    elif isinstance(landmarks, str):
        raise GanEditorError(f"landmarks must be 'auto' or points, got {landmarks!r}")
    else:
        lm = np.asarray(landmarks, np.float64)
        lm = lm.reshape(-1, 2) if lm.ndim == 1 else lm
    eye_l, eye_r, _, _ = eyes_and_mouth(lm)
    eye_dist = float(np.hypot(*(eye_r - eye_l)))
    if eye_dist < TINY_EYE_DISTANCE:
        msg = (f"the face is small (eye distance {eye_dist:.0f} px, under {TINY_EYE_DISTANCE:.0f}): "
               f"the {output_size}px crop is mostly upsampled and will look soft")
        notes.append(msg)
        warnings.warn(msg, stacklevel=2)
    quad = ffhq_quad(lm)
    notes += _pose_notes(lm, quad, image.shape[1], image.shape[0])
    crop = warp_to_quad(image, quad, output_size, device, enable_padding)
    return AlignedFace(crop, quad, quad_transform(quad, output_size), np.asarray(lm, np.float64), name, face_index,
                       num_faces, (image.shape[1], image.shape[0]), notes)
