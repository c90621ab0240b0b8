"""Regenerate the odd test images in this folder (run from the repository root).

    python tests/data/images/make_images.py

Every file is made here with Pillow or with our own 16-bit encoders; no outside data.
"""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from ganeditor.core.imageio_raw import encode_png16, encode_tiff16

HERE = Path(__file__).resolve().parent
W, H = 12, 8


def pattern(c: int, dtype=np.uint8) -> np.ndarray:
    """A deterministic gradient + noise pattern [H, W, c]."""
    rng = np.random.RandomState(c)
    peak = 65535 if dtype == np.uint16 else 255
    return rng.randint(0, peak + 1, size=(H, W, c)).astype(dtype)


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def main() -> None:
    rgb = pattern(3)
    np.save(HERE / "rgb8.npy", rgb)
    Image.fromarray(rgb).save(HERE / "rgb.png")
    Image.fromarray(np.dstack([rgb, pattern(1)[:, :, 0]])).save(HERE / "rgba.png")
    Image.fromarray(pattern(1)[:, :, 0]).save(HERE / "gray.png")
    Image.fromarray(pattern(2)).save(HERE / "la.png")
    pal = Image.fromarray(rgb).quantize(colors=8)
    pal.info["transparency"] = 0
    pal.save(HERE / "palette_transparent.png", transparency=0)
    Image.fromarray(rgb).convert("CMYK").save(HERE / "cmyk.jpg", quality=95)
    # EXIF orientation 6 (rotate 90 clockwise to display) + sRGB ICC profile.
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "GAN Editor test"  # Make
    Image.fromarray(rgb).save(HERE / "exif_rot6.jpg", quality=98, subsampling=0, exif=exif.tobytes(), icc_profile=srgb_icc())
    # 16-bit images.
    g16 = pattern(1, np.uint16)
    np.save(HERE / "gray16.npy", g16)
    Image.fromarray(g16[:, :, 0]).save(HERE / "gray16.png")
    Image.fromarray(g16[:, :, 0]).save(HERE / "gray16.tif")
    rgb16 = pattern(3, np.uint16)
    rgba16 = pattern(4, np.uint16)
    np.save(HERE / "rgb16.npy", rgb16)
    np.save(HERE / "rgba16.npy", rgba16)
    (HERE / "rgb16.png").write_bytes(encode_png16(rgb16, srgb_icc()))
    (HERE / "rgba16.png").write_bytes(encode_png16(rgba16))
    (HERE / "rgb16.tif").write_bytes(encode_tiff16(rgb16))
    Image.fromarray(np.linspace(0, 1, H * W, dtype=np.float32).reshape(H, W)).save(HERE / "float.tif")
    # Animated GIF: three frames of different colours.
    frames = [Image.new("RGB", (W, H), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(HERE / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    # Truncated JPEG and PNG: first half of valid files.
    big = np.random.RandomState(7).randint(0, 256, (64, 64, 3)).astype(np.uint8)
    for fmt, name in (("JPEG", "truncated.jpg"), ("PNG", "truncated.png")):
        buf = io.BytesIO()
        Image.fromarray(big).save(buf, format=fmt)
        (HERE / name).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    # Decompression bomb: a PNG header claiming 40000 x 40000 pixels, with almost no data.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0))
    bomb += chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    (HERE / "bomb.png").write_bytes(bomb)
    (HERE / "not_an_image.png").write_text("this is text, not a PNG\n")


if __name__ == "__main__":
    main()
