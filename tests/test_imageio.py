"""Image I/O: odd files in tests/data/images (made by make_images.py there), round trips, conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.core.errors import ImageError
from ganeditor.core.imageio import (CYCLEGAN_CONVENTION, NVLABS_CONVENTION, SR_CONVENTION, from_tensor, read_image,
                                    resize_lanczos, to_tensor, write_image)


@pytest.fixture
def images(data_dir):
    return data_dir / "images"


def test_8bit_modes(images):
    rgb = np.load(images / "rgb8.npy")
    im = read_image(images / "rgb.png")
    assert im.pixels.dtype == np.uint8 and im.bit_depth == 8 and im.alpha is None
    np.testing.assert_array_equal(im.pixels, rgb)
    im = read_image(images / "rgba.png")
    np.testing.assert_array_equal(im.pixels, rgb)
    assert im.alpha is not None and im.alpha.shape == rgb.shape[:2]
    assert read_image(images / "gray.png").pixels.shape == (8, 12, 1)
    la = read_image(images / "la.png")
    assert la.pixels.shape == (8, 12, 1) and la.alpha.shape == (8, 12)


def test_palette_with_transparency(images):
    im = read_image(images / "palette_transparent.png")
    src = Image.open(images / "palette_transparent.png")
    idx = np.asarray(src)
    assert im.pixels.shape == (8, 12, 3) and "palette image converted to RGBA" in im.notes
    np.testing.assert_array_equal(im.alpha == 0, idx == 0)


def test_16bit_exact(images):
    rgb16, rgba16, g16 = (np.load(images / f"{n}.npy") for n in ("rgb16", "rgba16", "gray16"))
    for name in ("rgb16.png", "rgb16.tif"):
        im = read_image(images / name)
        assert im.bit_depth == 16 and im.pixels.dtype == np.uint16, name
        np.testing.assert_array_equal(im.pixels, rgb16)
    im = read_image(images / "rgba16.png")
    np.testing.assert_array_equal(im.pixels, rgba16[:, :, :3])
    np.testing.assert_array_equal(im.alpha, rgba16[:, :, 3])
    for name in ("gray16.png", "gray16.tif"):
        im = read_image(images / name)
        assert im.bit_depth == 16
        np.testing.assert_array_equal(im.pixels, g16)
    assert read_image(images / "rgb16.png").icc_profile  # sRGB profile written by our encoder


def test_float_tiff(images):
    im = read_image(images / "float.tif")
    assert im.bit_depth == 16 and im.pixels[0, 0, 0] == 0 and im.pixels[-1, -1, 0] == 65535
    assert any("floating-point" in n for n in im.notes)


def test_cmyk_jpeg(images):
    im = read_image(images / "cmyk.jpg")
    assert im.pixels.shape == (8, 12, 3) and "CMYK converted to RGB" in im.notes and im.icc_profile is None
    assert np.abs(im.pixels.astype(int) - np.load(images / "rgb8.npy")).mean() < 25  # lossy JPEG of noise


def test_exif_orientation_applied_and_reset(images):
    im = read_image(images / "exif_rot6.jpg")
    raw = np.asarray(Image.open(images / "exif_rot6.jpg"))
    np.testing.assert_array_equal(im.pixels, np.rot90(raw, -1))  # 6 = rotate 90 clockwise
    assert "EXIF orientation 6 applied" in im.notes
    exif = Image.Exif()
    exif.load(im.exif[6:])
    assert 0x0112 not in exif and exif[0x010F] == "GAN Editor test"
    assert im.icc_profile is not None


def test_animated_gif_first_frame(images):
    im = read_image(images / "animated.gif")
    assert tuple(im.pixels[0, 0]) == (255, 0, 0)
    assert any("animated GIF with 3 frames" in n for n in im.notes)


@pytest.mark.parametrize("name, words", [
    ("truncated.jpg", "truncated or damaged"),
    ("truncated.png", "truncated or damaged"),
    ("bomb.png", "40000x40000 (1600 MP), over the limit of 200 MP"),
    ("not_an_image.png", "not an image file"),
    ("missing.png", "file not found"),
])
def test_bad_files_one_line_errors(images, name, words):
    with pytest.raises(ImageError) as e:
        read_image(images / name)
    assert words in str(e.value) and name in str(e.value) and "\n" not in str(e.value)


def test_pixel_limit_is_overridable(images):
    with pytest.raises(ImageError, match="over the limit of 0 MP"):
        read_image(images / "rgb.png", max_pixels=50)
    assert read_image(images / "rgb.png", max_pixels=96).pixels.shape == (8, 12, 3)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels, alpha", [(3, False), (3, True), (1, False), (1, True)])
def test_16bit_round_trip(tmp_path, suffix, channels, alpha):
    rng = np.random.RandomState(channels)
    px = rng.randint(0, 65536, (9, 7, channels)).astype(np.uint16)
    a = rng.randint(0, 65536, (9, 7)).astype(np.uint16) if alpha else None
    icc = b"fake icc profile bytes"
    notes = write_image(tmp_path / f"x{suffix}", px, a, bit_depth=16, icc_profile=icc)
    im = read_image(tmp_path / f"x{suffix}")
    assert im.bit_depth == 16
    if suffix == ".tif" and channels == 1 and alpha:
        assert notes == ["16-bit gray with alpha stored as RGBA in TIFF"]
        px = np.repeat(px, 3, axis=2)
    np.testing.assert_array_equal(im.pixels, px)
    if alpha:
        np.testing.assert_array_equal(im.alpha, a)
    assert im.icc_profile == icc
    assert [p.name for p in tmp_path.iterdir()] == [f"x{suffix}"]  # no temp files left


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_png_is_deflated_at_the_fast_level(tmp_path, bit_depth):
    """Every PNG we write uses zlib level 4 (about 2x faster than the default 6 for a few % more bytes): the
    zlib header's FLEVEL field is 1 for levels 2-5 (2 is the default 6's)."""
    import struct

    px = (np.arange(64 * 48 * 3).reshape(48, 64, 3) % 251).astype(np.uint8)
    write_image(tmp_path / "x.png", px, None, bit_depth)
    data = (tmp_path / "x.png").read_bytes()
    pos = 8
    while data[pos + 4 : pos + 8] != b"IDAT":
        pos += 12 + struct.unpack(">I", data[pos : pos + 4])[0]
    flg = data[pos + 9]
    assert flg >> 6 == 1, f"zlib FLEVEL {flg >> 6}"
    np.testing.assert_array_equal(read_image(tmp_path / "x.png").pixels, px if bit_depth == 8 else px.astype(np.uint16) * 257)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_8bit_keeps_icc_and_exif(tmp_path, images, suffix):
    src = read_image(images / "exif_rot6.jpg")
    notes = write_image(tmp_path / f"y{suffix}", src.pixels, None, 8, src.icc_profile, src.exif, quality=100)
    back = read_image(tmp_path / f"y{suffix}")
    assert back.icc_profile == src.icc_profile
    if suffix == ".tif":
        assert "EXIF not written to TIFF" in notes
    else:
        assert back.exif is not None and b"GAN Editor test" in back.exif and back.notes == []  # orientation reset
    if suffix in (".png", ".tif"):
        np.testing.assert_array_equal(back.pixels, src.pixels)


def test_write_errors_and_dropped_channels(tmp_path):
    px = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ImageError, match="output folder does not exist"):
        write_image(tmp_path / "nope" / "a.png", px)
    with pytest.raises(ImageError, match="unsupported output format '.bmp'"):
        write_image(tmp_path / "a.bmp", px)
    notes = write_image(tmp_path / "a.jpg", px.astype(np.uint16), np.zeros((4, 4), np.uint16), bit_depth=16)
    assert notes == ["JPEG has no alpha channel: transparency dropped", "JPEG holds 8 bits per channel: reduced from 16"]


def test_tensor_conventions():
    px = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    x = to_tensor(px, SR_CONVENTION)
    assert x.shape == (1, 1, 16, 16) and float(x.max()) == 1.0
    np.testing.assert_array_equal(from_tensor(x, SR_CONVENTION), px)
    x = to_tensor(px, CYCLEGAN_CONVENTION)
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    # junyanz: ((y + 1) / 2 * 255) truncated; Real-ESRGAN: clamp, * 255, round; NVlabs: y * 127.5 + 128 truncated
    y = torch.tensor([-1.0, -0.001, 0.0, 0.999, 1.0, 1.5]).view(1, 1, 1, 6)
    assert from_tensor(y, CYCLEGAN_CONVENTION).ravel().tolist() == [0, 127, 127, 254, 255, 255]
    assert from_tensor(y, NVLABS_CONVENTION).ravel().tolist() == [0, 127, 128, 255, 255, 255]
    z = torch.tensor([-0.1, 0.5 / 255, 0.49 / 255, 0.5, 1.2]).view(1, 1, 1, 5)
    assert from_tensor(z, SR_CONVENTION).ravel().tolist() == [0, 0, 0, 128, 255]  # round half to even at .5
    assert from_tensor(torch.ones(1, 3, 2, 2), SR_CONVENTION, np.uint16).max() == 65535
    p16 = np.array([[[0, 1, 65535]]], np.uint16)
    np.testing.assert_array_equal(from_tensor(to_tensor(p16, SR_CONVENTION), SR_CONVENTION, np.uint16), p16)


def test_resize_lanczos_16bit():
    a = np.full((10, 12, 3), 40000, np.uint16)
    out = resize_lanczos(a, (24, 20))
    assert out.shape == (20, 24, 3) and out.dtype == np.uint16 and np.all(out == 40000)
