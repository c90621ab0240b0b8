"""The one place where image files are opened: only regular files (a FIFO or device is refused at
once, before anything blocks on it), and only the Pillow formats of ``DECODE_FORMATS`` -- never
EPS/PS/PDF or any other plugin that runs an external program such as Ghostscript, and nothing
exotic.  A PostScript or PDF file named ``.png`` is refused with a line saying what it is.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO

from PIL import Image

from ganeditor.core.errors import ImageError
from ganeditor.core.files import check_input_file

# Pillow plugins that decode in-process with their own or a bundled library; nothing that starts a
# program (EPS/PS/PDF: Ghostscript) and nothing exotic (FITS, GRIB, HDF5, MPEG, WMF, IM...).
DECODE_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP", "DIB", "GIF", "TGA", "PSD", "PPM", "ICO",
                  "QOI", "SGI", "PCX", "AVIF", "JPEG2000")
_DOCUMENT_MAGIC = {b"%!": "a PostScript document", b"%PDF": "a PDF document", b"\xc5\xd0\xd3\xc6": "an EPS document"}
_OPEN_LOCK = threading.Lock()  # guards Pillow's global MAX_IMAGE_PIXELS while a header is read


def open_image(src: str | Path | IO[bytes]) -> Image.Image:
    """Open an image (a path or a file object) with Pillow, allowing only ``DECODE_FORMATS``.

    Paths must be regular files (a FIFO or device is refused at once); refusals are ``ImageError``s
    naming the file.  The caller checks the size before decoding; Pillow's own pixel cap is lifted."""
    path = None if hasattr(src, "read") else Path(src)
    if path is not None:
        check_input_file(path, ImageError, "an image file")
    try:
        with _OPEN_LOCK:  # our own limit is checked by the caller; Pillow's would cap it at 179 MP
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(src, formats=_decode_formats())
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except Image.UnidentifiedImageError:
        raise ImageError(_unidentified(path), path) from None
    except OSError as e:
        if e.strerror:  # the file system refused (permissions, I/O error)
            raise ImageError(f"cannot read ({e.strerror})", path) from None
        raise ImageError(f"truncated or damaged image file ({' '.join(str(e).split())})", path) from None


def _decode_formats() -> list[str]:
    Image.init()  # registers every plugin; only ours are ever tried (AVIF may be absent from a build)
    return [f for f in DECODE_FORMATS if f in Image.OPEN]


def _unidentified(path: Path | None) -> str:
    head = b""
    if path is not None:
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError:
            pass
    doc = next((what for magic, what in _DOCUMENT_MAGIC.items() if head.lstrip(b"\x04\r\n ").startswith(magic)), None)
    if doc:
        return f"is {doc}, not an image: refused (such files are programs; they are never opened)"
    return "not an image file, or a format that cannot be read (PNG, JPEG, TIFF, WebP, BMP, GIF, TGA, PSD, ...)"
