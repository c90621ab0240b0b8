"""Image files in and out, and the only conversions between pixel arrays and tensors.

Files are opened by ``imageio_open.open_image`` (only regular files, only an allow-list of Pillow
formats: never EPS/PS/PDF or another plugin that runs a program).  ``read_image`` decodes defensively: its own pixel limit against decompression bombs
(``DEFAULT_MAX_PIXELS`` = 200 megapixels, overridable), EXIF orientation applied (and reset in the
EXIF kept), CMYK / YCbCr / palette / 1-bit converted, alpha split off, 16-bit gray and RGB(A)
PNG/TIFF kept at 16 bits, float TIFF mapped to 16 bits, animated files read at their first frame,
truncated or non-image files refused with one line.  Pillow reduces 16-bit RGB to 8 bits when it
unpacks; we decode such files twice with the high- and the low-byte unpacker and join the bytes.

``write_image`` writes PNG, JPEG, TIFF or WebP atomically, keeping ICC profile, EXIF and XMP, and 16
bits for PNG and TIFF; given a ``core.provenance.Provenance`` it stamps the AI source type and history
into the XMP (and embeds a C2PA manifest when signing is configured).  ``to_tensor``/``from_tensor``
take a ``PixelConvention`` that names the value range and the rounding of the upstream code a model
comes from.
"""

from __future__ import annotations

import io
import struct
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageCms, PngImagePlugin

from ganeditor.core.atomic import atomic_write
from ganeditor.core.errors import ImageError
from ganeditor.core.imageio_open import open_image
from ganeditor.core.imageio_raw import PNG_DEFLATE_LEVEL, encode_png16, encode_tiff16
from ganeditor.core.xmp import clean_xmp

if TYPE_CHECKING:
    from ganeditor.core.provenance import Provenance

DEFAULT_MAX_PIXELS = 200_000_000  # 200 MP: larger files are refused unless the caller raises it
ORIENTATION_TAG = 0x0112
JPEG_MAX_XMP = 65_000  # bytes of XMP that fit in a JPEG APP1 segment with its header
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}


@dataclass
class LoadedImage:
    """A decoded image: ``pixels`` [H, W, 1 or 3] uint8/uint16, optional ``alpha`` [H, W], metadata."""

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    icc_profile: bytes | None = None
    exif: bytes | None = None
    notes: list[str] = field(default_factory=list)
    xmp: bytes | None = None  # the file's XMP packet, without orientation and pixel sizes (core.xmp)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.pixels.shape[1], self.pixels.shape[0]


@dataclass(frozen=True)
class PixelConvention:
    """How a model sees pixels: tensor range [lo, hi]; output = (x-lo)/(hi-lo)*max + bias, then round or truncate."""

    lo: float
    hi: float
    rounding: str  # 'round' or 'trunc'
    bias: float = 0.0  # added before truncation (NVlabs' x*127.5 + 128 is bias 0.5)


SR_CONVENTION = PixelConvention(0.0, 1.0, "round")  # BasicSR / Real-ESRGAN: clamp(0,1)*255, round
CYCLEGAN_CONVENTION = PixelConvention(-1.0, 1.0, "trunc")  # junyanz tensor2im: (x+1)/2*255 truncated
NVLABS_CONVENTION = PixelConvention(-1.0, 1.0, "trunc", 0.5)  # NVlabs: x*127.5+128, clamp, truncated


# ----------------------------------------------------------------------------------------- reading


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1..8 to an [H, W, ...] array (the same as ImageOps.exif_transpose)."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return np.swapaxes(a, 0, 1)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return np.swapaxes(a[::-1, ::-1], 0, 1)
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def _rawmode(im: Image.Image) -> str | None:
    tile = getattr(im, "tile", None) or []
    if not tile:
        return None
    args = tile[0].args
    return args if isinstance(args, str) else (args[0] if args and isinstance(args[0], str) else None)


def _decode16(path: Path, im: Image.Image, raw: str) -> np.ndarray | None:
    """Full 16-bit samples of an RGB(A)/LA file that Pillow would unpack to 8 bits, else None."""
    if raw in ("LA;16B", "LA;16L") and im.mode == "RGBA":  # 4 bytes per pixel: unpack them as RGBA
        with open_image(path) as im2:
            im2.tile = [t._replace(args="RGBA" if isinstance(t.args, str) else ("RGBA", *t.args[1:])) for t in im2.tile]
            b = np.asarray(im2).astype(np.uint16)
        hi, lo = (0, 1) if raw.endswith("B") else (1, 0)
        return np.stack([b[..., hi] << 8 | b[..., lo], b[..., hi + 2] << 8 | b[..., lo + 2]], axis=2)
    native = "L" if sys.byteorder == "little" else "B"
    order = native if raw.endswith("N") else raw[-1]
    swapped = raw[:-1] + ("L" if order == "B" else "B")
    try:
        hi = np.asarray(im)
        with open_image(path) as im2:
            im2.tile = [t._replace(args=swapped if isinstance(t.args, str) else (swapped, *t.args[1:])) for t in im2.tile]
            lo = np.asarray(im2)
    except (OSError, ValueError, SyntaxError):
        return None
    if lo.shape != hi.shape:
        return None
    return (hi.astype(np.uint16) << 8) | lo


def read_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode an image file into RGB/gray uint8/uint16 pixels plus alpha, ICC, EXIF and notes."""
    path = Path(path)
    im = open_image(path)
    with im:
        w, h = im.size
        if max_pixels is not None and w * h > max_pixels:
            raise ImageError(
                f"image is {w}x{h} ({w * h / 1e6:.0f} MP), over the limit of {max_pixels / 1e6:.0f} MP "
                "that guards against decompression bombs; raise the limit if the file is trusted",
                path,
            )
        try:
            return _decode(path, im)
        except ImageError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
            msg = " ".join(str(e).split()) or type(e).__name__
            raise ImageError(f"truncated or damaged image file ({msg})", path) from None


def _decode(path: Path, im: Image.Image) -> LoadedImage:
    notes: list[str] = []
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
        notes.append(f"animated {im.format or 'image'} with {im.n_frames} frames: using the first frame")
    raw = _rawmode(im)  # before getexif(), which may decode the pixels
    mode = im.mode
    icc = im.info.get("icc_profile") or None
    exif_obj = im.getexif()
    orientation = int(exif_obj.get(ORIENTATION_TAG, 1) or 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arr16 = None
        if mode in ("RGB", "RGBA", "LA") and raw and raw.endswith((";16B", ";16L", ";16N")):
            arr16 = _decode16(path, im, raw)
            if arr16 is None:
                notes.append("16-bit samples reduced to 8 bits")
        im.load()
    bit_depth = 8
    if arr16 is not None:
        a, bit_depth = arr16, 16
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        a, bit_depth = np.asarray(im).astype(np.uint16), 16
    elif mode == "I":
        a = np.asarray(im)
        if a.max(initial=0) > 255 or im.format in ("PNG", "TIFF"):
            a, bit_depth = np.clip(a, 0, 65535).astype(np.uint16), 16
        else:
            a = np.clip(a, 0, 255).astype(np.uint8)
    elif mode == "F":
        a = np.asarray(im, dtype=np.float32)
        a = np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0)
        peak = float(a.max(initial=0.0))
        div = 1.0 if peak <= 1.0 else (255.0 if peak <= 255.0 else 65535.0)
        a, bit_depth = np.round(np.clip(a / div, 0.0, 1.0) * 65535.0).astype(np.uint16), 16
        notes.append(f"floating-point image mapped from [0, {div:g}] to 16 bits")
    else:
        im, a, icc = _pillow_to_8bit(im, icc, notes)
    if a.ndim == 2:
        a = a[:, :, None]
    a = np.ascontiguousarray(_orient(a, orientation))
    exif = None
    if orientation != 1:
        notes.append(f"EXIF orientation {orientation} applied")
    if exif_obj and im.info.get("exif"):  # TIFF tags also show up in getexif(): not EXIF to keep
        exif_obj.pop(ORIENTATION_TAG, None)
        exif = exif_obj.tobytes()
        exif = exif if exif.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + exif
    alpha = None
    if a.shape[2] in (2, 4):
        alpha, a = np.ascontiguousarray(a[:, :, -1]), np.ascontiguousarray(a[:, :, :-1])
    return LoadedImage(a, alpha, bit_depth, icc, exif, notes, clean_xmp(im.info.get("xmp")))


def _pillow_to_8bit(im: Image.Image, icc: bytes | None, notes: list[str]) -> tuple[Image.Image, np.ndarray, bytes | None]:
    """Convert any 8-bit Pillow mode to L, LA, RGB or RGBA."""
    mode = im.mode
    if mode == "CMYK":
        converted = None
        if icc:
            try:
                src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                converted = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            except (ImageCms.PyCMSError, OSError, ValueError):
                converted = None
        im = converted if converted is not None else im.convert("RGB")
        notes.append("CMYK converted to RGB" + (" through its ICC profile to sRGB" if converted is not None else ""))
        icc = None  # a CMYK profile does not describe the RGB pixels
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
        notes.append(f"palette image converted to {im.mode}")
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("RGBX", "YCbCr", "HSV"):
        im = im.convert("RGB")
    elif mode in ("RGBa", "La"):
        im = im.convert("RGBA" if mode == "RGBa" else "LA")
    elif mode == "LAB":
        im = ImageCms.applyTransform(im, ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"))
        notes.append("Lab converted to sRGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in mode else "RGB")
        notes.append(f"{mode} converted to {im.mode}")
    return im, np.asarray(im), icc


# ----------------------------------------------------------------------------------------- writing


def write_image(
    path: str | Path,
    pixels: np.ndarray,
    alpha: np.ndarray | None = None,
    bit_depth: int = 8,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    quality: int = 95,
    xmp: bytes | None = None,
    provenance: Provenance | None = None,
) -> list[str]:
    """Write atomically; the format comes from the suffix. Returns notes on what the format dropped.
    ``xmp``: the packet to keep (e.g. the input's); ``provenance``: what made the image (core.provenance)."""
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"unsupported output format {path.suffix!r} (use .png, .jpg, .tif or .webp)", path)
    if not path.parent.is_dir():
        raise ImageError("output folder does not exist", path.parent)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    assert pixels.ndim == 3 and pixels.shape[2] in (1, 3), pixels.shape
    assert alpha is None or alpha.shape == pixels.shape[:2], (alpha.shape, pixels.shape)
    notes: list[str] = []
    if alpha is not None and fmt == "JPEG":
        alpha = None
        notes.append("JPEG has no alpha channel: transparency dropped")
    if bit_depth == 16 and fmt in ("JPEG", "WEBP"):
        bit_depth = 8
        notes.append(f"{fmt} holds 8 bits per channel: reduced from 16")
    if exif and fmt == "TIFF":
        exif = None  # Pillow cannot place EXIF in 16-bit TIFFs we encode; keep TIFF output simple
        notes.append("EXIF not written to TIFF")
    a = pixels if alpha is None else np.concatenate([pixels, alpha[:, :, None].astype(pixels.dtype)], axis=2)
    a = _to_depth(a, bit_depth)
    kept_xmp = xmp
    if provenance is not None:
        xmp = provenance.xmp_packet(kept_xmp)
    if xmp and fmt == "JPEG" and len(xmp) > JPEG_MAX_XMP:  # one APP1 segment
        notes.append("the input's XMP is too large for JPEG: not kept")
        xmp = None if provenance is None else provenance.xmp_packet(None)
    if bit_depth == 16 and a.shape[2] == 2 and fmt == "TIFF":  # Pillow cannot read 16-bit gray+alpha TIFF
        a = a[:, :, [0, 0, 0, 1]]
        notes.append("16-bit gray with alpha stored as RGBA in TIFF")
    if bit_depth == 16 and (a.shape[2] > 1):
        data = encode_png16(a, icc_profile, exif, xmp) if fmt == "PNG" else encode_tiff16(a, icc_profile, xmp)
    else:
        data = _encode_pillow(a, fmt, icc_profile, exif, quality, xmp)
    if provenance is not None:
        data = provenance.seal(data, fmt, path.name, kept_xmp)
    try:
        with atomic_write(path) as f:
            f.write(data)
    except OSError as e:
        raise ImageError(f"cannot write ({e.strerror or e})", path) from None
    return notes


def to_8bit(pixels: np.ndarray) -> np.ndarray:
    """uint16 (or uint8) pixels -> uint8, rounded to the nearest level (65535 -> 255); the one such conversion."""
    if pixels.dtype == np.uint16:
        return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return pixels.astype(np.uint8, copy=False)


def _to_depth(a: np.ndarray, bit_depth: int) -> np.ndarray:
    if bit_depth == 16:
        return a.astype(np.uint16) * 257 if a.dtype == np.uint8 else a.astype(np.uint16, copy=False)
    return to_8bit(a)


def _encode_pillow(a: np.ndarray, fmt: str, icc: bytes | None, exif: bytes | None, quality: int,
                   xmp: bytes | None = None) -> bytes:
    c = a.shape[2]
    if a.dtype == np.uint16:
        im = Image.fromarray(np.ascontiguousarray(a[:, :, 0]))  # I;16
    else:
        im = Image.fromarray(np.ascontiguousarray(a[:, :, 0] if c == 1 else a))  # L, LA, RGB, RGBA
    kw: dict = {}
    if icc:
        kw["icc_profile"] = icc
    if exif:
        kw["exif"] = exif
    if xmp and fmt in ("JPEG", "WEBP"):
        kw["xmp"] = xmp
    elif xmp and fmt == "PNG":
        kw["pnginfo"] = PngImagePlugin.PngInfo()
        kw["pnginfo"].add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"))
    elif xmp:
        kw["tiffinfo"] = {700: xmp}
    if fmt == "JPEG":
        kw.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        kw.update(quality=quality)
    elif fmt == "PNG":
        kw.update(compress_level=PNG_DEFLATE_LEVEL)
    elif fmt == "TIFF":
        kw.update(compression="tiff_deflate")
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


# ------------------------------------------------------------------------------- tensor <-> array


def max_value(dtype: np.dtype) -> float:
    """255 for uint8, 65535 for uint16."""
    return 65535.0 if np.dtype(dtype) == np.uint16 else 255.0


def to_tensor(
    pixels: np.ndarray,
    conv: PixelConvention,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """[H, W, C] uint8/uint16 -> [1, C, H, W] float in the convention's range, on ``device``."""
    assert pixels.ndim == 3 and pixels.dtype in (np.uint8, np.uint16), (pixels.shape, pixels.dtype)
    t = torch.from_numpy(np.ascontiguousarray(pixels)).to(device)
    t = t.to(torch.int32 if pixels.dtype == np.uint16 else torch.uint8).permute(2, 0, 1)[None]  # [NCHW]
    x = t.to(torch.float32) / max_value(pixels.dtype)
    if conv.lo != 0.0 or conv.hi != 1.0:
        x = x * (conv.hi - conv.lo) + conv.lo
    return x.to(dtype)


def from_tensor(x: torch.Tensor, conv: PixelConvention, out_dtype: type = np.uint8) -> np.ndarray:
    """[1, C, H, W] (or [C, H, W]) float -> [H, W, C] uint8/uint16 with the convention's rounding."""
    if x.ndim == 4:
        assert x.shape[0] == 1, x.shape
        x = x[0]
    assert x.ndim == 3, x.shape
    return quantize(x.permute(1, 2, 0), conv, out_dtype).cpu().numpy().astype(out_dtype, copy=False)  # [HWC]


def quantize(x: torch.Tensor, conv: PixelConvention, out_dtype: type = np.uint8) -> torch.Tensor:
    """Float values in the convention's range -> integer tensor (uint8, or int32 holding uint16 values)."""
    peak = max_value(out_dtype)
    x = x.float()
    if conv.lo != 0.0 or conv.hi != 1.0:
        x = (x - conv.lo) / (conv.hi - conv.lo)
    v = x * peak + conv.bias if conv.rounding == "trunc" else (x.clamp(0.0, 1.0) * peak).round()
    v = v.clamp(0.0, peak)
    return v.to(torch.int32).to(torch.uint8) if peak == 255.0 else v.to(torch.int32)


def resize_lanczos(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Lanczos-resize [H, W, C] or [H, W] uint8/uint16 pixels to ``size`` = (width, height)."""
    squeeze = pixels.ndim == 2
    a = pixels[:, :, None] if squeeze else pixels
    if a.dtype == np.uint8 and a.shape[2] in (1, 3):
        im = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
        out = np.asarray(im.resize(size, Image.Resampling.LANCZOS))
        out = out[:, :, None] if out.ndim == 2 else out
    else:
        chans = [np.asarray(Image.fromarray(np.ascontiguousarray(a[:, :, i])).resize(size, Image.Resampling.LANCZOS))
                 for i in range(a.shape[2])]
        out = np.stack(chans, axis=2).astype(a.dtype)
    return out[:, :, 0] if squeeze else out
