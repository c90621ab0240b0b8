"""The document and its undo stack, odd images, export, typed settings, the resource helper."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings

from ganeditor.core.imageio import read_image
from ganeditor.core.resources import resource
from ganeditor.qt.document import Document, EditState
from ganeditor.qt.settings import Key, Settings
from ganeditor.pipelines.sliders import SliderSpec
from ganeditor.qt.sliders import DirectionSliders


@pytest.fixture
def settings(tmp_path):
    return Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


def test_settings_are_typed_and_coerced_from_ini_strings(tmp_path, settings):
    q = settings.q
    q.setValue(Key.TILE_SIZE.path, "512")
    q.setValue(Key.FAST_MODE.path, "true")
    q.setValue(Key.RECENT_FILES.path, "/only/one.png")  # INI gives a single-item list back as a string
    q.setValue(Key.DEVICE.path, 3)
    assert settings.get(Key.TILE_SIZE) == 512
    assert settings.get(Key.FAST_MODE) is True
    assert settings.get(Key.RECENT_FILES) == ["/only/one.png"]
    assert settings.get(Key.DEVICE) == "3"
    q.setValue(Key.TILE_SIZE.path, "not a number")
    assert settings.get(Key.TILE_SIZE) == 0  # the default, not an exception
    for i in range(12):
        settings.add_recent(f"/p/{i}.png")
    settings.add_recent("/p/5.png")
    settings.sync()
    again = Settings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    recent = again.get(Key.RECENT_FILES)
    assert recent[0] == "/p/5.png" and len(recent) == 10 and recent.count("/p/5.png") == 1
    again.set(Key.WINDOW_STATE, b"\x00\x01binary")
    assert again.get(Key.WINDOW_STATE) == b"\x00\x01binary"


def test_resource_helper_finds_shipped_files_and_refuses_escapes(monkeypatch, tmp_path):
    assert resource("icons/open.svg").read_text().startswith("<svg")
    assert "QLabel#hint" in resource("style.qss").read_text()
    with pytest.raises(FileNotFoundError, match="nope.svg"):
        resource("icons/nope.svg")
    with pytest.raises(ValueError):
        resource("../pyproject.toml")
    import sys

    (tmp_path / "resources" / "icons").mkdir(parents=True)
    (tmp_path / "resources" / "icons" / "x.svg").write_text("<svg/>")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)  # a frozen build
    assert resource("icons/x.svg") == tmp_path / "resources" / "icons" / "x.svg"


@pytest.mark.parametrize("name, size, depth", [("rgb16.png", None, 16), ("cmyk.jpg", None, 8),
                                                ("exif_rot6.jpg", "rotated", 8), ("palette_transparent.png", None, 8)])
def test_odd_images_open_in_the_window(qtbot, data_dir, tmp_path, monkeypatch, name, size, depth):
    from gui_support import make_window, open_and_wait

    win = make_window(qtbot, tmp_path, monkeypatch)
    path = data_dir / "images" / name
    open_and_wait(qtbot, win, path)
    img = read_image(path)
    assert win.view.after.width() == img.size[0] and win.view.after.height() == img.size[1]
    if size == "rotated":
        with Image.open(path) as raw:
            assert (raw.height, raw.width) == img.size  # EXIF orientation 6 turned the picture
    assert win.doc.current.dtype == (np.uint16 if depth == 16 else np.uint8)
    assert ("16-bit" in win.statusBar().currentMessage()) == (depth == 16)
    win.shutdown()


def test_undo_redo_of_slider_edits_merges_a_drag(qtbot):
    doc = Document()
    edits = EditState()
    sliders = DirectionSliders(edits, doc.undo_stack)
    qtbot.addWidget(sliders)
    sliders.set_specs([SliderSpec("smile", "Smile", "Expression", "", (0, 9), True),
                       SliderSpec("age", "Age", "Age", "", (0, 9), True)])  # fmt: skip
    smile = sliders.row("smile").slider
    smile.setSliderDown(True)  # a drag: many values, one undo step
    for v in (10, 40, 90, 150):
        smile.setValue(v)
    smile.setSliderDown(False)
    sliders.row("age").slider.setValue(-50)  # a keyboard step: its own undo step
    stack = doc.undo_stack
    assert stack.count() == 2 and edits.values == {"smile": 1.5, "age": -0.5}
    assert stack.text(0) == "Edit Smile"
    stack.undo()
    assert edits.values == {"smile": 1.5, "age": 0.0} and sliders.row("age").slider.value() == 0
    stack.undo()
    assert edits.values == {"smile": 0.0, "age": 0.0} and smile.value() == 0
    assert sliders.row("smile").value_label.text() == "0.0"
    stack.redo()
    assert edits.values["smile"] == 1.5 and smile.value() == 150
    sliders.reset_all.click()
    assert edits.active() == {} and smile.value() == 0
    stack.undo()
    assert edits.values["smile"] == 1.5


def test_results_are_undoable_and_export_keeps_bit_depth_and_icc(tmp_path, data_dir):
    doc = Document()
    src = data_dir / "images" / "rgb16.png"
    doc.open(src)
    original = doc.current
    edited = (original // 2).astype(np.uint16)
    doc.apply_result(edited, None, "Darken")
    assert doc.current is edited
    doc.undo_stack.undo()
    assert doc.current is original
    doc.undo_stack.redo()
    out = tmp_path / "out.png"
    assert doc.export(out) == []
    back = read_image(out)
    assert back.bit_depth == 16 and np.array_equal(back.pixels, edited)
    icc = Image.new("RGB", (1, 1)).info.get("icc_profile")  # Pillow has none by default: build one
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    p = tmp_path / "icc.png"
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(p, icc_profile=icc)
    doc.open(p)
    doc.export(tmp_path / "icc_out.jpg")
    assert read_image(tmp_path / "icc_out.jpg").icc_profile == icc
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no temp file left behind
