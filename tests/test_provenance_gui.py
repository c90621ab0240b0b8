"""Images exported from the window carry the provenance of the operations applied (undo removes
them), with the Preferences' history switch; read back by exiftool."""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image, ImageCms

from ganeditor.core.imageio import write_image
from ganeditor.qt.settings import Key
from gui_support import open_and_wait, wait_window_idle

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def _export(qtbot, win, path) -> None:
    """Export on the window's I/O lane and wait until the file is written (no error box)."""
    job = win.export(str(path))
    qtbot.waitUntil(lambda: job.state == "done", timeout=30000)
    assert win.errors == [] and path.is_file()


def _history(meta: dict) -> list[str]:
    v = meta.get("XMP-xmpMM:HistoryParameters", [])
    return v if isinstance(v, list) else [v]


def test_exported_image_says_which_models_changed_it(qtbot, tiny_window, tiny_models, tmp_path, exiftool):
    win, s = tiny_window, tiny_window.scene
    exif = Image.Exif()
    exif[0x013B] = "Ada Photographer"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = tmp_path / "street.jpg"
    write_image(photo, np.random.RandomState(0).randint(0, 256, (28, 40, 3)).astype(np.uint8), icc_profile=icc,
                exif=exif.tobytes())  # fmt: skip
    open_and_wait(qtbot, win, photo)
    _export(qtbot, win, tmp_path / "unchanged.png")
    assert "XMP-iptcExt:DigitalSourceType" not in exiftool(tmp_path / "unchanged.png")  # no model touched it
    s.run_translate()
    qtbot.waitUntil(lambda: len(win.doc.operations()) == 1, timeout=20000)
    s.scale_box.setCurrentIndex(s.scale_box.findData(2))
    s.run_upscale()
    qtbot.waitUntil(lambda: len(win.doc.operations()) == 2, timeout=20000)
    wait_window_idle(qtbot, win)
    _export(qtbot, win, tmp_path / "out.jpg")
    meta = exiftool(tmp_path / "out.jpg")
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + "compositeWithTrainedAlgorithmicMedia"
    history = _history(meta)
    sha = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in tiny_models.iterdir()}
    assert history[0].startswith(f"translate with tiny-cyclegan (SHA-256 {sha['tiny-cyclegan']}): network=G_A")
    assert history[1].startswith(f"upscale with tiny-sr (SHA-256 {sha['tiny-sr']}): network=net, outscale=2")
    assert meta["IFD0:Artist"] == "Ada Photographer" and "sRGB" in meta["ICC_Profile:ProfileDescription"]
    win.doc.undo_stack.undo()  # the upscale is undone: it is no longer in the file's history
    win.settings.set(Key.PROVENANCE_HISTORY, False)
    _export(qtbot, win, tmp_path / "undone.webp")
    meta = exiftool(tmp_path / "undone.webp")
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + "compositeWithTrainedAlgorithmicMedia"
    assert not _history(meta)  # the history is off in the preferences; the source type stays
    win.settings.set(Key.PROVENANCE_HISTORY, True)
    _export(qtbot, win, tmp_path / "undone.png")
    assert [h.split(" ")[0] for h in _history(exiftool(tmp_path / "undone.png"))] == ["translate"]
