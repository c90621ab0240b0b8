"""Every generative command writes the AI source type and its history, as exiftool reads them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from ganeditor.archs import build
from ganeditor.cli import main
from ganeditor.core.imageio import read_image, write_image
from ganeditor.formats import Checkpoint
from ganeditor.formats.native import save_checkpoint

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
DATA = Path(__file__).resolve().parent / "data"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _history(meta: dict) -> list[str]:
    v = meta.get("XMP-xmpMM:HistoryParameters", [])
    return v if isinstance(v, list) else [v]


def _save_photo(path, img):
    """Write ``img`` as a camera or editor leaves a photo: with an ICC profile and EXIF (Artist)."""
    exif = Image.Exif()
    exif[0x013B] = "Ada Photographer"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    write_image(path, img, icc_profile=icc, exif=exif.tobytes())
    return path


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    """A real portrait (Grace Hopper, public domain) with an ICC profile and EXIF, and its five
    landmarks (the original MTCNN's, from the alignment goldens)."""
    img = read_image(DATA / "align" / "grace_hopper.jpg").pixels
    landmarks = np.load(DATA / "align" / "mtcnn_grace_golden.npz")["landmarks"][0].astype(np.float64)
    return _save_photo(tmp_path_factory.mktemp("portrait") / "photo.jpg", img), landmarks


def _check(meta, source_type, operation, model, action):
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + source_type
    history = _history(meta)
    assert len(history) == 1 and history[0].startswith(f"{operation} with {model.stem} (SHA-256 {_sha(model)})")
    assert meta["XMP-xmpMM:HistoryAction"] == action
    return history[0]


def test_generate_edit_and_invert_write_generated_images(tmp_path, data_dir, exiftool, portrait):
    net = data_dir / "invert" / "g16.safetensors"
    assert main(["generate", "--network", str(net), "--seeds", "3", "--trunc", "0.7", "--outdir", str(tmp_path / "g"),
                 "--device", "cpu"]) == 0  # fmt: skip
    h = _check(exiftool(tmp_path / "g" / "seed0003.png"), "trainedAlgorithmicMedia", "generate", net, "created")
    assert h.endswith("seed=3, truncation=0.7, noise=const")
    assert main(["invert", "--network", str(net), str(portrait[0]), "--outdir", str(tmp_path / "i"), "--method", "w",
                 "--steps", "2", "--align", "none", "--loss", "pixel", "--device", "cpu"]) == 0  # fmt: skip
    h = _check(exiftool(tmp_path / "i" / "reconstruction.png"), "trainedAlgorithmicMedia", "invert", net, "created")
    assert "method=w, steps=2" in h
    assert "XMP-iptcExt:DigitalSourceType" not in exiftool(tmp_path / "i" / "target.png")  # the photo's crop
    np.save(tmp_path / "w.npy", np.zeros((1, 16), np.float32))
    np.save(tmp_path / "d.npy", np.eye(16)[None, 2])
    assert main(["edit", "--network", str(net), "--latent", str(tmp_path / "w.npy"), "--direction",
                 f"{tmp_path / 'd.npy'}=1.5", "--out", str(tmp_path / "e.webp"), "--device", "cpu"]) == 0  # fmt: skip
    h = _check(exiftool(tmp_path / "e.webp"), "trainedAlgorithmicMedia", "edit", net, "created")
    assert "directions=d=1.5" in h


def test_paste_back_writes_a_composite_that_keeps_the_photos_metadata(tmp_path, data_dir, exiftool, portrait):
    net = data_dir / "invert" / "g16.safetensors"
    np.save(tmp_path / "w.npy", np.zeros((1, 16), np.float32))
    align = ",".join(f"{v:.3f}" for v in portrait[1].ravel())
    out = tmp_path / "edited.jpg"
    assert main(["edit", "--network", str(net), "--latent", str(tmp_path / "w.npy"), "--paste-back", str(portrait[0]),
                 f"--align={align}", "--out", str(out), "--device", "cpu"]) == 0  # fmt: skip
    meta = exiftool(out)
    assert "blend=auto" in _check(meta, "compositeWithTrainedAlgorithmicMedia", "paste-back", net, "edited")
    assert meta["IFD0:Artist"] == "Ada Photographer" and "sRGB" in meta["ICC_Profile:ProfileDescription"]


@pytest.mark.parametrize("ext", ["png", "jpg", "tif", "webp"])
def test_translate_and_upscale_write_composites(tmp_path, exiftool, ext):
    photo = _save_photo(tmp_path / "photo.jpg", np.random.RandomState(0).randint(0, 256, (30, 40, 3)).astype(np.uint8))
    torch.manual_seed(0)
    cg, sr = tmp_path / "cg.safetensors", tmp_path / "sr.safetensors"
    save_checkpoint(Checkpoint("ganeditor", "t", {"G_A": build("cyclegan-resnet-generator", ngf=4, n_blocks=1)}), cg)
    save_checkpoint(Checkpoint("ganeditor", "t", {"net": build("srvgg", num_feat=4, num_conv=1, upscale=2)}), sr)
    assert main(["translate", str(cg), str(photo), str(tmp_path / f"t.{ext}"), "--device", "cpu"]) == 0
    meta = exiftool(tmp_path / f"t.{ext}")
    assert _check(meta, "compositeWithTrainedAlgorithmicMedia", "translate", cg, "edited").endswith(": network=G_A, fast=off")
    assert "sRGB" in meta["ICC_Profile:ProfileDescription"]
    assert main(["upscale", str(sr), str(tmp_path / f"t.{ext}"), str(tmp_path / f"u.{ext}"), "--outscale", "3",
                 "--device", "cpu"]) == 0  # fmt: skip
    meta = exiftool(tmp_path / f"u.{ext}")  # the translated photo, upscaled: both steps in its history
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + "compositeWithTrainedAlgorithmicMedia"
    assert [h.split(" ")[0] for h in _history(meta)] == ["translate", "upscale"]
    assert "outscale=3" in _history(meta)[1] and _sha(sr) in _history(meta)[1]
    if ext != "tif":  # EXIF is not written to TIFF (core.imageio)
        assert meta["IFD0:Artist"] == "Ada Photographer"
