"""Images exported from the window carry the provenance of the operations applied (undo removes
them), with the Preferences' history switch; read back by exiftool."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image, ImageCms
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from ganeditor.core.imageio import write_image
from ganeditor.qt.main_window import MainWindow
from ganeditor.qt.settings import Key, Settings
from gui_support import wait_idle, write_tiny_models

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    models = write_tiny_models(tmp_path / "models")
    monkeypatch.setenv("GANEDITOR_MODELS", str(models))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: pytest.fail(f"message box: {a[1:3]}"))
    win = MainWindow(Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(win)
    win.show()
    win.models.select("translator", "tiny-cyclegan")
    win.models.select("upscaler", "tiny-sr")
    wait_idle(qtbot, win.device_lane)
    win.model_files = models
    yield win
    assert win.shutdown()


def _history(meta: dict) -> list[str]:
    v = meta.get("XMP-xmpMM:HistoryParameters", [])
    return v if isinstance(v, list) else [v]


def test_exported_image_says_which_models_changed_it(qtbot, window, tmp_path, exiftool):
    win, s = window, window.scene
    exif = Image.Exif()
    exif[0x013B] = "Ada Photographer"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = tmp_path / "street.jpg"
    write_image(photo, np.random.RandomState(0).randint(0, 256, (28, 40, 3)).astype(np.uint8), icc_profile=icc,
                exif=exif.tobytes())  # fmt: skip
    assert win.open_path(str(photo))
    qtbot.waitUntil(lambda: win.doc.is_open, timeout=20000)
    win.export(str(tmp_path / "unchanged.png"))
    assert "XMP-iptcExt:DigitalSourceType" not in exiftool(tmp_path / "unchanged.png")  # no model touched it
    s.run_translate()
    qtbot.waitUntil(lambda: len(win.doc.operations()) == 1, timeout=20000)
    s.scale_box.setCurrentIndex(s.scale_box.findData(2))
    s.run_upscale()
    qtbot.waitUntil(lambda: len(win.doc.operations()) == 2, timeout=20000)
    wait_idle(qtbot, win.device_lane)
    assert win.export(str(tmp_path / "out.jpg"))
    meta = exiftool(tmp_path / "out.jpg")
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + "compositeWithTrainedAlgorithmicMedia"
    history = _history(meta)
    sha = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in win.model_files.iterdir()}
    assert history[0].startswith(f"translate with tiny-cyclegan (SHA-256 {sha['tiny-cyclegan']}): network=G_A")
    assert history[1].startswith(f"upscale with tiny-sr (SHA-256 {sha['tiny-sr']}): network=net, outscale=2")
    assert meta["IFD0:Artist"] == "Ada Photographer" and "sRGB" in meta["ICC_Profile:ProfileDescription"]
    win.doc.undo_stack.undo()  # the upscale is undone: it is no longer in the file's history
    win.settings.set(Key.PROVENANCE_HISTORY, False)
    assert win.export(str(tmp_path / "undone.webp"))
    meta = exiftool(tmp_path / "undone.webp")
    assert meta["XMP-iptcExt:DigitalSourceType"] == IPTC + "compositeWithTrainedAlgorithmicMedia"
    assert not _history(meta)  # the history is off in the preferences; the source type stays
    win.settings.set(Key.PROVENANCE_HISTORY, True)
    assert win.export(str(tmp_path / "undone.png"))
    assert [h.split(" ")[0] for h in _history(exiftool(tmp_path / "undone.png"))] == ["translate"]
