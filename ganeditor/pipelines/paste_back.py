"""Paste an edited aligned crop back into the full-resolution photo it was aligned from.

The mask (``paste_mask``: the face grown to the hairline, plus where the edit acts around it, gated
off wherever the photo looks like its own background, confined inside the crop) is warped to the
photo with the inverse of ``AlignedFace.transform``, and so is the crop (bicubic; pre-shrunk with an
antialiasing filter to two crop pixels per photo pixel when the face is much smaller in the photo).
The background gate is evaluated on the photo's own pixels, at full resolution, so the edit stops at
the real edge of the hair; it is smoothed in proportion to the face's size in the photo (a quarter of
the feather) where the photo itself is smooth, so it never cuts a sharp step across plain background.  Pixels where the mask is zero are copied bit for bit, so nothing of the
edit (colour included) can reach them; the result has the photo's size, channels and bit depth.

Blends: ``'replace'`` puts the edited crop in, colour-matched so no seam shows (its mean/std per
channel matched to the photo's inside the mask's transition band, the remaining low-frequency
difference spread smoothly over the mask); ``'detail'`` adds only the edit's change (edited minus
the unedited reconstruction), so the photo keeps its own full-resolution detail wherever the edit
does not act (right for a generator much smaller than the face, or an inexact inversion; wrong for
edits that move geometry far, which then ghost); ``'auto'`` is 'detail' when a reconstruction is
given and the face covers more than twice the crop's pixels in the photo, else 'replace'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import max_value
from ganeditor.pipelines.align import AlignedFace, gaussian_blur, sample_affine
from ganeditor.pipelines.paste_mask import (  # noqa: F401 - MASK_KINDS re-exported
    FEATHER, GATE_SOFTNESS, MASK_KINDS, BackgroundModel, PasteMask, build_mask, crop_scale,
)  # fmt: skip

BLENDS = ("auto", "replace", "detail")
DETAIL_ABOVE = 2.0  # 'auto' blends by detail when the face is this many times the crop's size in the photo


def _to_float(a: np.ndarray, device: torch.device | str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device).permute(2, 0, 1)[None]  # [NCHW]


def _as_channels(a: np.ndarray, c: int, what: str) -> np.ndarray:
    """[S, S, C'] -> [S, S, c] (gray <-> RGB: a gray photo gets the edit's luminance; alpha dropped)."""
    a = a[:, :, None] if a.ndim == 2 else a
    if a.shape[2] == c:
        return a
    if c == 1 and a.shape[2] >= 3:
        y = a[:, :, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601 luma
        return np.clip(np.rint(y), 0, max_value(a.dtype)).astype(a.dtype)[:, :, None]
    out = np.repeat(a[:, :, :1], c, axis=2) if c >= 3 and a.shape[2] == 1 else a[:, :, :c]
    if out.shape[2] != c:
        raise GanEditorError(f"the {what} has {a.shape[2]} channels, the photo {c}")
    return out


def _check_inputs(orig: np.ndarray, e: np.ndarray, aligned: AlignedFace, blend: str,
                  reconstruction: np.ndarray | None) -> None:
    if blend not in BLENDS:
        raise GanEditorError(f"unknown blend {blend!r} (expected one of {', '.join(BLENDS)})")
    if blend == "detail" and reconstruction is None:
        raise GanEditorError("blend 'detail' needs the unedited reconstruction")
    assert orig.ndim == 3 and orig.dtype in (np.uint8, np.uint16), (orig.shape, orig.dtype)
    h, w = orig.shape[:2]
    if (w, h) != tuple(aligned.source_size):
        raise GanEditorError(f"the photo is {w}x{h} but the face was aligned on a {aligned.source_size[0]}x"
                             f"{aligned.source_size[1]} image")
    if e.ndim != 3 or e.shape[0] != e.shape[1] or e.dtype not in (np.uint8, np.uint16):
        raise GanEditorError(f"the edited crop must be a square uint8/uint16 image, got {list(e.shape)} {e.dtype}")
    if reconstruction is not None and reconstruction.shape[:2] != e.shape[:2]:
        raise GanEditorError(f"the reconstruction is {reconstruction.shape[1]}x{reconstruction.shape[0]}, "
                             f"the edited crop {e.shape[1]}x{e.shape[0]}")


def _photo_region(m: torch.Tensor, t_crop: np.ndarray, w: int, h: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the photo pixels the mask can touch (None if none)."""
    ys, xs = torch.nonzero(m > 0, as_tuple=True)
    if not len(ys):
        return None
    lo_x, hi_x, lo_y, hi_y = xs.min().item() - 1, xs.max().item() + 1, ys.min().item() - 1, ys.max().item() + 1
    corners = np.array([[lo_x, lo_y], [hi_x, lo_y], [lo_x, hi_y], [hi_x, hi_y]], float)
    pc = corners @ t_crop[:2, :2].T + t_crop[:2, 2]
    x0, y0 = np.maximum(np.floor(pc.min(0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(pc.max(0)).astype(int) + 3, [w, h])
    return None if x1 <= x0 or y1 <= y0 else (int(x0), int(y0), int(x1), int(y1))


def _warp_to_photo(src: torch.Tensor, t_crop: np.ndarray, box: tuple[int, int, int, int]) -> torch.Tensor:
    """``src`` [1, K, S, S] in the crop's frame sampled at the photo pixels of ``box`` -> [1, K, h, w].
    Crop pixels much smaller than photo pixels: pre-shrunk (bicubic, antialiased) to two crop pixels per
    photo pixel, then sampled once - sharper than a full-footprint filter, and alias-free in practice."""
    x0, y0, x1, y1 = box
    size = src.shape[-1]
    to_crop = np.linalg.inv(t_crop) @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], float)  # region px -> crop px
    scale = math.hypot(*to_crop[:2, 0])  # crop px per photo px
    if scale > 2.0:
        n = max(4, round(size * 2.0 / scale))
        src = F.interpolate(src, size=(n, n), mode="bicubic", antialias=True, align_corners=False)
        k = n / size
        to_crop = np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1]]) @ to_crop
    return sample_affine(src, to_crop, (y1 - y0, x1 - x0), supersample=1)


def _aligned_coords(aligned: AlignedFace, box: tuple[int, int, int, int], device) -> torch.Tensor:
    """[h, w, 2]: the aligned crop's coordinates of the photo pixels in ``box``."""
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1]
    xy = aligned.to_aligned(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(y1 - y0, x1 - x0, 2)
    return torch.from_numpy(xy).to(device)


def mask_in_photo(aligned: AlignedFace, photo: np.ndarray, pm: PasteMask,
                  device: torch.device | str = "cpu") -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """The paste mask as ``paste_back`` applies it to ``photo`` [H, W, C]: ([H, W] float32 in [0, 1],
    exactly 0 wherever the photo is kept bit for bit; the box (x0, y0, x1, y1) it can be non-zero in)."""
    h, w = photo.shape[:2]
    out = np.zeros((h, w), np.float32)
    t_crop = aligned.transform @ crop_scale(pm.size, aligned)
    box = _photo_region(pm.upper_bound(), t_crop, w, h)
    if box is None:
        return out, None
    parts = _warp_to_photo(torch.stack([pm.sure, pm.gated])[None].to(device), t_crop, box)[0].clamp(0, 1)
    gate = torch.ones_like(parts[1])
    if pm.background is not None:
        a = photo[box[1]:box[3], box[0]:box[2]]
        a = a[:, :, None] if a.ndim == 2 else a
        qsize = math.hypot(*aligned.transform[:2, 0]) * aligned.output_size  # face crop side in photo px
        soft = GATE_SOFTNESS * pm.feather * qsize  # the gate's blur grows with the face, like the main feather
        gate = 1 - pm.background.likeness(_to_float(a, device) / max_value(a.dtype), _aligned_coords(aligned, box, device),
                                          soft)
    m = torch.maximum(parts[0], parts[1] * gate)
    out[box[1]:box[3], box[0]:box[2]] = m.cpu().numpy()
    return out, box


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


# ------------------------------------------------------------------------------------------ entry


@dataclass(frozen=True)
class PasteTarget:
    """Where an edit goes: the photo and the face aligned from it, plus a reduced copy of both for live
    previews.  ``aligned`` None: the edited crop is itself the whole picture (a generated face)."""

    photo: np.ndarray  # [H, W, C] uint8/uint16, full resolution
    aligned: AlignedFace | None
    reconstruction: np.ndarray | None  # the unedited rendering (where the edit acts; 'detail' blend)
    small: np.ndarray  # the photo reduced to at most ``preview_side`` px (the photo itself when smaller)
    small_aligned: AlignedFace | None
    feather: float = FEATHER  # soft-edge width, fraction of the crop size
    background: BackgroundModel | None = None  # made once for the face (see paste_mask)

    def paste(self, edited: np.ndarray, full: bool = True, device: torch.device | str = "cpu") -> np.ndarray:
        """``edited`` pasted into the photo (``full``) or into the reduced copy (a live preview)."""
        if self.aligned is None:
            return edited
        photo, al = (self.photo, self.aligned) if full else (self.small, self.small_aligned)
        recon = self.reconstruction
        if recon is not None and recon.shape[0] != edited.shape[0]:  # a draft: smaller than the reconstruction
            recon = resized(recon, edited.shape[0], edited.shape[1], area=True)
        return paste_back(photo, edited, al, reconstruction=recon, feather=self.feather, device=device,
                          background=self.background)

    def preview_face_side(self) -> float | None:
        """The side of the aligned crop in px of the reduced copy (None: the edit is the whole picture)."""
        al = self.small_aligned
        return None if self.aligned is None or al is None else math.hypot(*al.transform[:2, 0]) * al.output_size


def resized(a: np.ndarray, h: int, w: int, area: bool = False) -> np.ndarray:
    """An image [H, W, C] or [H, W] (uint8/uint16) resized to h x w, same framing and dtype: shrinking is
    antialiased bilinear, or a plain area average with ``area``; enlarging is bicubic."""
    x = _to_float(a[:, :, None] if a.ndim == 2 else a, "cpu")
    if h > a.shape[0] or w > a.shape[1]:
        x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    else:
        x = F.interpolate(x, size=(h, w), mode="area") if area else \
            F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    out = x[0].permute(1, 2, 0).clamp(0, max_value(a.dtype)).round().numpy().astype(a.dtype)
    return out[:, :, 0] if a.ndim == 2 else out


def paste_target(photo: np.ndarray, aligned: AlignedFace | None, reconstruction: np.ndarray | None,
                 feather: float = FEATHER, preview_side: int = 1024) -> PasteTarget:
    """A PasteTarget with the reduced preview copy (area-averaged) made now."""
    h, w = photo.shape[:2]
    k = preview_side / max(h, w)
    bg = None if aligned is None else BackgroundModel.of(aligned, feather)
    if aligned is None or k >= 1:
        return PasteTarget(photo, aligned, reconstruction, photo, aligned, feather, bg)
    sw, sh = max(1, round(w * k)), max(1, round(h * k))
    return PasteTarget(photo, aligned, reconstruction, resized(photo, sh, sw), aligned.for_photo_size(sw, sh), feather, bg)


def paste_back(
    original: np.ndarray,  # [H, W, C] uint8/uint16: the full photo the face was aligned from
    edited_aligned: np.ndarray,  # [S, S, C] uint8/uint16 edited crop (any S; same framing as aligned.image)
    aligned: AlignedFace,  # from align_face(original, ...)
    *,
    mask: str | np.ndarray = "auto",  # one of MASK_KINDS or an [S, S] float array in [0, 1]
    feather: float = FEATHER,  # width of the mask's soft edge, as a fraction of the crop size
    color_match: bool = True,  # 'replace': match the edit's colours to the photo around the mask edge
    reconstruction: np.ndarray | None = None,  # unedited reconstruction [S, S, C] (where the edit acts; 'detail')
    device: torch.device | str = "cpu",  # where the warping runs
    blend: str = "auto",  # 'auto' | 'replace' | 'detail' (see the module docstring)
    background: BackgroundModel | None = None,  # the face's background model, if made already (live previews)
) -> np.ndarray:
    """The photo with the edited face blended in: same size, channels and dtype as ``original``."""
    orig = original[:, :, None] if original.ndim == 2 else original
    e = edited_aligned[:, :, None] if edited_aligned.ndim == 2 else edited_aligned
    _check_inputs(orig, e, aligned, blend, reconstruction)
    h, w, c = orig.shape
    e = _as_channels(e, c, "edited crop")
    size, peak = e.shape[0], max_value(orig.dtype)
    edit = _to_float(e, device) / max_value(e.dtype)  # [1, C, S, S] in [0, 1]
    recon = None
    if reconstruction is not None:
        recon = _to_float(_as_channels(reconstruction, c, "reconstruction"), device) / max_value(reconstruction.dtype)
    m_photo, box = mask_in_photo(aligned, orig, build_mask(aligned, edit, mask, recon, feather, background), device)
    if box is None:
        return original.copy()
    t_crop = aligned.transform @ crop_scale(size, aligned)  # edited px -> photo px
    if blend == "auto":
        face_px = math.hypot(*t_crop[:2, 0]) * size  # the crop's side in photo pixels
        blend = "detail" if recon is not None and face_px > DETAIL_ABOVE * size else "replace"
    e_ph = _warp_to_photo(edit - recon if blend == "detail" else edit, t_crop, box)
    region = (slice(box[1], box[3]), slice(box[0], box[2]))
    m_np = m_photo[region]
    m_ph = torch.from_numpy(m_np).to(device)[None, None]
    o_ph = _to_float(orig[region], device) / peak
    if blend == "detail":  # e_ph is the edit's change: add it
        out = o_ph + e_ph * m_ph
    else:
        if color_match:
            qsize = math.hypot(*aligned.transform[:2, 0]) * aligned.output_size  # face crop side in photo px
            e_ph = _match_colours(o_ph, e_ph, m_ph[0, 0], max(feather * qsize, 1.0))
        out = o_ph + (e_ph - o_ph) * m_ph
    vals = (out[0].permute(1, 2, 0).clamp(0, 1) * peak).round().cpu().numpy().astype(orig.dtype)  # [HWC]
    keep = m_np <= 0
    vals[keep] = orig[region][keep]  # outside the mask: the photo, bit for bit
    result = orig.copy()
    result[region] = vals
    return result if original.ndim == 3 else result[:, :, 0]
