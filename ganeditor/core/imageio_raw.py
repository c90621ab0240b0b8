"""Encoders for what Pillow cannot write: 16-bit RGB / RGBA / gray+alpha PNG and TIFF.

Plain byte layouts from the PNG 1.2 and TIFF 6.0 specifications; data go through ``zlib``.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png16(pixels: np.ndarray, icc_profile: bytes | None = None, exif: bytes | None = None,
                 xmp: bytes | None = None) -> bytes:
    """A 16-bit PNG of ``pixels`` [H, W, C] uint16 (C: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)."""
    assert pixels.ndim == 3 and pixels.dtype == np.uint16 and pixels.shape[2] in _PNG_COLOR_TYPE, pixels.shape
    h, w, c = pixels.shape
    out = [PNG_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, _PNG_COLOR_TYPE[c], 0, 0, 0))]
    if icc_profile:
        out.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        out.append(_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    if xmp:  # iTXt, uncompressed, as Adobe's XMP specification (part 3) places it
        out.append(_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp))
    rows = np.ascontiguousarray(pixels, dtype=">u2").reshape(h, w * c).view(np.uint8)
    comp = zlib.compressobj(6)
    idat = []
    prev = np.zeros(w * c * 2, np.uint8)
    step = max(1, (1 << 22) // max(1, w * c * 2))  # ~4 MB of rows at a time
    for y0 in range(0, h, step):
        block = rows[y0 : y0 + step]
        above = np.concatenate([prev[None], block[:-1]], axis=0)
        filtered = block - above  # filter type 2 ("Up"), modulo 256
        framed = np.concatenate([np.full((len(block), 1), 2, np.uint8), filtered], axis=1)
        idat.append(comp.compress(framed.tobytes()))
        prev = block[-1]
    idat.append(comp.flush())
    out.append(_chunk(b"IDAT", b"".join(idat)))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def encode_tiff16(pixels: np.ndarray, icc_profile: bytes | None = None, xmp: bytes | None = None) -> bytes:
    """A little-endian, deflate-compressed 16-bit TIFF of ``pixels`` [H, W, C] uint16 (C 1..4)."""
    assert pixels.ndim == 3 and pixels.dtype == np.uint16 and 1 <= pixels.shape[2] <= 4, pixels.shape
    h, w, c = pixels.shape
    data = pixels.astype("<u2", copy=False)
    rows_per_strip = max(1, min(h, (1 << 20) // max(1, w * c * 2)))
    strips = [zlib.compress(data[y : y + rows_per_strip].tobytes(), 6) for y in range(0, h, rows_per_strip)]
    color = c >= 3
    extra = c - (3 if color else 1)
    tags: list[tuple[int, int, list[int] | bytes]] = []  # (tag, type, values); types 1 BYTE 3 SHORT 4 LONG 7 UNDEFINED
    tags.append((256, 4, [w]))
    tags.append((257, 4, [h]))
    tags.append((258, 3, [16] * c))
    tags.append((259, 3, [8]))  # Adobe deflate
    tags.append((262, 3, [2 if color else 1]))  # RGB / BlackIsZero
    tags.append((273, 4, [0] * len(strips)))  # strip offsets, patched below
    tags.append((277, 3, [c]))
    tags.append((278, 4, [rows_per_strip]))
    tags.append((279, 4, [len(s) for s in strips]))
    tags.append((284, 3, [1]))  # chunky
    if extra:
        tags.append((338, 3, [2] * extra))  # unassociated alpha
    tags.append((339, 3, [1] * c))  # unsigned integers
    if xmp:
        tags.append((700, 1, xmp + b"\n" * (len(xmp) & 1)))  # XMP packet (even length keeps offsets aligned)
    if icc_profile:
        tags.append((34675, 7, icc_profile))
    tags.sort(key=lambda t: t[0])
    size = {1: 1, 3: 2, 4: 4, 7: 1}
    ifd_offset = 8
    ifd_len = 2 + 12 * len(tags) + 4
    blob_offset = ifd_offset + ifd_len
    blobs: list[bytes] = []
    # Large values live after the IFD; strip data after them.
    values_len = sum(
        (len(v) if isinstance(v, bytes) else len(v) * size[t]) for _, t, v in tags
        if (len(v) if isinstance(v, bytes) else len(v) * size[t]) > 4
    )
    strip_offset = blob_offset + values_len + (values_len & 1)
    offsets = []
    pos = strip_offset
    for s in strips:
        offsets.append(pos)
        pos += len(s)
    entries = []
    cur = blob_offset
    for tag, typ, vals in tags:
        if tag == 273:
            vals = offsets
        raw = vals if isinstance(vals, bytes) else struct.pack("<" + ("H" if typ == 3 else "I") * len(vals), *vals)
        count = len(vals)
        if len(raw) <= 4:
            entries.append(struct.pack("<HHI", tag, typ, count) + raw.ljust(4, b"\x00"))
        else:
            entries.append(struct.pack("<HHII", tag, typ, count, cur))
            blobs.append(raw)
            cur += len(raw)
    header = b"II*\x00" + struct.pack("<I", ifd_offset)
    ifd = struct.pack("<H", len(tags)) + b"".join(entries) + struct.pack("<I", 0)
    body = b"".join(blobs)
    if values_len & 1:
        body += b"\x00"
    return header + ifd + body + b"".join(strips)
