"""Paste an edited aligned crop back into the full-resolution photo it was aligned from.

The crop is warped back with the inverse of ``AlignedFace.transform`` (bicubic; pre-shrunk with an
antialiasing filter to two crop pixels per photo pixel when the face is much smaller in the photo), blended through a feathered mask, and colour-matched
so no seam shows: the edit's mean/std per channel are matched to the photo's inside the mask's
transition band, then the remaining low-frequency difference in the band is spread smoothly (a
normalised-convolution membrane) and added.  Pixels where the mask is zero are copied bit for bit;
the result has the photo's size, channels and bit depth.

Blends: ``'replace'`` puts the edited crop in (colour-matched, as above); ``'detail'`` adds only the
edit's change (edited minus the unedited reconstruction) to the photo, so the photo keeps its own
full-resolution detail wherever the edit does not act (right for a generator much smaller than the
face, or an inexact inversion; wrong for edits that move geometry far, which then ghost);
``'auto'`` is 'detail' when a reconstruction is given and the face covers more than twice the
crop's pixels in the photo, else 'replace'.

Masks (built in the crop's frame): ``'ellipse'`` around the face from the landmarks (brows to chin,
cheek to cheek); ``'diff'`` where the edit differs from the unedited reconstruction, grown and
blurred; ``'auto'`` is their union when a reconstruction is given, else the ellipse; ``'full'`` is
the whole crop; or an [S, S] float array in [0, 1].  All fade to zero at the crop's border.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import max_value
from ganeditor.pipelines.align import AlignedFace, eyes_and_mouth, gaussian_blur, sample_affine

MASK_KINDS = ("auto", "ellipse", "diff", "full")
BLENDS = ("auto", "replace", "detail")
DETAIL_ABOVE = 2.0  # 'auto' blends by detail when the face is this many times the crop's size in the photo


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0, 1)
    return x * x * (3 - 2 * x)


def _crop_scale(size: int, aligned: AlignedFace) -> np.ndarray:
    """[3, 3] map from px of a size x size crop to px of the aligned crop (same frame, other resolution)."""
    k = aligned.output_size / size
    return np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1]])


def ellipse_mask(aligned: AlignedFace, size: int, feather: float = 0.08, device: torch.device | str = "cpu") -> torch.Tensor:
    """[size, size] float mask: 1 on the face ellipse, fading to 0 over ``feather`` x size outside it."""
    to_crop = np.linalg.inv(_crop_scale(size, aligned))
    lm = aligned.to_aligned(aligned.landmarks) @ to_crop[:2, :2].T + to_crop[:2, 2]
    eye_l, eye_r, mouth_l, mouth_r = eyes_and_mouth(lm)
    eye, mouth = (eye_l + eye_r) / 2, (mouth_l + mouth_r) / 2
    d_em, d_ee = max(math.hypot(*(mouth - eye)), 1e-6), math.hypot(*(eye_r - eye_l))
    v = (mouth - eye) / d_em  # face's down direction
    top, bottom = eye - 1.25 * d_em * v, mouth + 0.85 * d_em * v  # forehead above the brows, chin
    c, b = (top + bottom) / 2, max(math.hypot(*(bottom - top)) / 2, 1.0)
    a = max(1.1 * d_ee, 0.75 * b)  # half width: cheeks and ears' inner edge
    yy, xx = torch.meshgrid(torch.arange(size, device=device, dtype=torch.float32),
                            torch.arange(size, device=device, dtype=torch.float32), indexing="ij")
    px, py = xx - float(c[0]), yy - float(c[1])
    along = px * float(v[0]) + py * float(v[1])
    across = -px * float(v[1]) + py * float(v[0])
    r = torch.sqrt((across / a) ** 2 + (along / b) ** 2)
    width = max(feather * size / ((a + b) / 2), 1e-3)
    return _smoothstep((1 + width - r) / width)


def diff_mask(edited: torch.Tensor, reconstruction: torch.Tensor, feather: float = 0.08) -> torch.Tensor:
    """[S, S] mask where ``edited`` and ``reconstruction`` ([1, C, S, S] in [0, 1]) differ, grown and blurred."""
    size = edited.shape[-1]
    d = (edited - reconstruction).abs().amax(dim=1, keepdim=True)  # [N1HW]
    d = gaussian_blur(d, 0.004 * size + 0.5)
    m = _smoothstep((d - 0.03) / 0.07)
    grow = max(1, int(round(0.02 * size)))
    m = F.max_pool2d(m, 2 * grow + 1, stride=1, padding=grow)
    return gaussian_blur(m, feather * size / 2)[0, 0].clamp(0, 1)


def border_fade(size: int, width: float = 0.04, device: torch.device | str = "cpu") -> torch.Tensor:
    """[size, size]: 0 at the crop's edge rising to 1 at ``width`` x size inside."""
    r = torch.arange(size, device=device, dtype=torch.float32)
    edge = torch.minimum(r, size - 1 - r) / max(width * size, 1.0)
    return _smoothstep(torch.minimum(edge[:, None], edge[None, :]))


def build_mask(aligned: AlignedFace, edited: torch.Tensor, mask: str | np.ndarray = "auto",
               reconstruction: torch.Tensor | None = None, feather: float = 0.08) -> torch.Tensor:
    """The paste mask [S, S] in the edited crop's frame (see the module docstring)."""
    size, dev = edited.shape[-1], edited.device
    if isinstance(mask, np.ndarray):
        m = torch.from_numpy(np.asarray(mask, np.float32)).to(dev)
        if tuple(m.shape) != (size, size):
            raise GanEditorError(f"mask must be {size}x{size} like the edited crop, got {list(m.shape)}")
        m = m.clamp(0, 1)
    elif mask == "full":
        m = torch.ones(size, size, device=dev)
    elif mask in ("auto", "ellipse", "diff"):
        if mask == "diff" and reconstruction is None:
            raise GanEditorError("mask 'diff' needs the unedited reconstruction")
        m = ellipse_mask(aligned, size, feather, dev) if mask != "diff" else torch.zeros(size, size, device=dev)
        if reconstruction is not None and mask != "ellipse":
            m = torch.maximum(m, diff_mask(edited, reconstruction, feather))
    else:
        raise GanEditorError(f"unknown mask {mask!r} (expected one of {', '.join(MASK_KINDS)} or an array)")
    return m * border_fade(size, device=dev)


def _to_float(a: np.ndarray, device: torch.device | str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device).permute(2, 0, 1)[None]  # [NCHW]


def _match_colours(orig: torch.Tensor, edit: torch.Tensor, m: torch.Tensor, sigma: float) -> torch.Tensor:
    """``edit`` [1, C, H, W] corrected so it agrees with ``orig`` in low frequencies in ``m``'s band."""
    band = (4 * m * (1 - m))[None, None]  # [N1HW], peaks where the mask is 0.5
    wsum = band.sum()
    if float(wsum) < 1.0:
        return edit
    mean_o, mean_e = (orig * band).sum((2, 3), keepdim=True) / wsum, (edit * band).sum((2, 3), keepdim=True) / wsum
    sd_o = (((orig - mean_o) ** 2 * band).sum((2, 3), keepdim=True) / wsum).sqrt()
    sd_e = (((edit - mean_e) ** 2 * band).sum((2, 3), keepdim=True) / wsum).sqrt()
    gain = (sd_o / sd_e.clamp(min=1e-6)).clamp(0.7, 1.4)
    edit = (edit - mean_e) * gain + mean_o
    # Spread the band's remaining low-frequency difference over the mask (a smooth membrane).
    num, den = gaussian_blur((orig - edit) * band, sigma), gaussian_blur(band, sigma)
    conf = (den / den.amax().clamp(min=1e-12) * 4).clamp(0, 1)
    return edit + num / den.clamp(min=1e-6) * conf


def paste_back(
    original: np.ndarray,  # [H, W, C] uint8/uint16: the full photo the face was aligned from
    edited_aligned: np.ndarray,  # [S, S, C] uint8/uint16 edited crop (any S; same framing as aligned.image)
    aligned: AlignedFace,  # from align_face(original, ...)
    mask: str | np.ndarray = "auto",  # 'auto' | 'ellipse' | 'diff' | 'full' | [S, S] float array in [0, 1]
    feather: float = 0.08,  # width of the mask's soft edge, as a fraction of the crop size
    color_match: bool = True,  # match the edit's colours to the photo around the mask edge
    reconstruction: np.ndarray | None = None,  # unedited reconstruction [S, S, C], for the 'diff' mask
    device: torch.device | str = "cpu",  # where the warping runs
    blend: str = "auto",  # 'auto' | 'replace' | 'detail' (see the module docstring)
) -> np.ndarray:
    """The photo with the edited face blended in: same size, channels and dtype as ``original``."""
    if blend not in BLENDS:
        raise GanEditorError(f"unknown blend {blend!r} (expected one of {', '.join(BLENDS)})")
    if blend == "detail" and reconstruction is None:
        raise GanEditorError("blend 'detail' needs the unedited reconstruction")
    orig = original[:, :, None] if original.ndim == 2 else original
    assert orig.ndim == 3 and orig.dtype in (np.uint8, np.uint16), (orig.shape, orig.dtype)
    h, w, c = orig.shape
    if (w, h) != tuple(aligned.source_size):
        raise GanEditorError(f"the photo is {w}x{h} but the face was aligned on a {aligned.source_size[0]}x"
                             f"{aligned.source_size[1]} image")
    e = edited_aligned[:, :, None] if edited_aligned.ndim == 2 else edited_aligned
    if e.ndim != 3 or e.shape[0] != e.shape[1] or e.dtype not in (np.uint8, np.uint16):
        raise GanEditorError(f"the edited crop must be a square uint8/uint16 image, got {list(e.shape)} {e.dtype}")
    if e.shape[2] != c:  # gray <-> RGB
        e = np.repeat(e[:, :, :1], c, axis=2) if c >= 3 and e.shape[2] == 1 else e[:, :, :c]
        if e.shape[2] != c:
            raise GanEditorError(f"the edited crop has {edited_aligned.shape[2]} channels, the photo {c}")
    size, e_peak, peak = e.shape[0], max_value(e.dtype), max_value(orig.dtype)
    edit = _to_float(e, device) / e_peak  # [1, C, S, S] in [0, 1]
    recon = None
    if reconstruction is not None:
        r = reconstruction[:, :, None] if reconstruction.ndim == 2 else reconstruction
        if r.shape[:2] != e.shape[:2]:
            raise GanEditorError(f"the reconstruction is {r.shape[1]}x{r.shape[0]}, the edited crop {size}x{size}")
        recon = _to_float(r[:, :, :c] if r.shape[2] >= c else np.repeat(r[:, :, :1], c, 2), device) / max_value(r.dtype)
    m = build_mask(aligned, edit, mask, recon, feather)
    t_crop = aligned.transform @ _crop_scale(size, aligned)  # edited px -> photo px
    if blend == "auto":
        face_px = math.hypot(*t_crop[:2, 0]) * size  # the crop's side in photo pixels
        blend = "detail" if recon is not None and face_px > DETAIL_ABOVE * size else "replace"

    # The photo region the mask can touch.
    ys, xs = torch.nonzero(m > 0, as_tuple=True)
    if not len(ys):
        return original.copy()
    corners = np.array([[xs.min().item() - 1, ys.min().item() - 1], [xs.max().item() + 1, ys.min().item() - 1],
                        [xs.min().item() - 1, ys.max().item() + 1], [xs.max().item() + 1, ys.max().item() + 1]], float)
    pc = corners @ t_crop[:2, :2].T + t_crop[:2, 2]
    x0, y0 = np.maximum(np.floor(pc.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(pc.max(0)).astype(int) + 3, [w, h])
    if x1 <= x0 or y1 <= y0:
        return original.copy()
    region = (slice(y0, y1), slice(x0, x1))
    to_crop = np.linalg.inv(t_crop) @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], float)  # region px -> crop px

    # Crop pixels much smaller than photo pixels: pre-shrink (bicubic, antialiased) to two crop pixels per
    # photo pixel, then sample once - sharper than a full-footprint filter, and alias-free in practice.
    scale = math.hypot(*to_crop[:2, 0])  # crop px per photo px
    src = torch.cat([edit - recon if blend == "detail" else edit, m[None, None]], dim=1)
    if scale > 2.0:
        n = max(4, round(size * 2.0 / scale))
        src = F.interpolate(src, size=(n, n), mode="bicubic", antialias=True, align_corners=False)
        k = n / size
        to_crop = np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1]]) @ to_crop
    warped = sample_affine(src, to_crop, (y1 - y0, x1 - x0), supersample=1)
    e_ph, m_ph = warped[:, :c], warped[0, c].clamp(0, 1)
    o_ph = _to_float(orig[region], device) / peak
    if blend == "detail":  # e_ph is the edit's change: add it
        out = o_ph + e_ph * m_ph[None, None]
    else:
        if color_match:
            qsize = math.hypot(*aligned.transform[:2, 0]) * aligned.output_size  # face crop side in photo px
            e_ph = _match_colours(o_ph, e_ph, m_ph, max(feather * qsize, 1.0))
        out = o_ph + (e_ph - o_ph) * m_ph[None, None]
    vals = (out[0].permute(1, 2, 0).clamp(0, 1) * peak).round().cpu().numpy().astype(orig.dtype)  # [HWC]
    keep = (m_ph <= 0).cpu().numpy()
    vals[keep] = orig[region][keep]
    result = orig.copy()
    result[region] = vals
    return result if original.ndim == 3 else result[:, :, 0]
