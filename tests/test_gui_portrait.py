"""The portrait workflow through the real window (issue 13): faces found out of the box, landmarks
dragged without panning, a face picked on the canvas, sliders that ignore the wheel unless focused,
the filter, teach-a-slider, the Generate panel, and the bad inputs (no face, gray, 16-bit)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from ganeditor.pipelines.face_detect import Face
from ganeditor.worlds.portraits import alignment_affine, render_portrait
import gui_support
from gui_support import open_and_wait, wait_idle, wait_window_idle, write_tiny_models

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return write_tiny_models(tmp_path_factory.mktemp("models"))


def make_window(qtbot, tmp_path, monkeypatch, generator):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the user's model folder
    win = gui_support.make_window(qtbot, tmp_path, monkeypatch)
    win.resize(1300, 850)
    win.models.select("generator", generator)
    wait_window_idle(qtbot, win)
    return win


def first_row(p):
    """The first slider row (rows of folded groups are built on demand)."""
    return p.sliders.row(next(iter(p.sliders.specs)))


@pytest.fixture
def tiny(qtbot, tmp_path, models_dir, monkeypatch):
    monkeypatch.setenv("GANEDITOR_MODELS", str(models_dir))
    win = make_window(qtbot, tmp_path, monkeypatch, "tiny-stylegan2")
    yield win
    win.discard_and_close()


def two_faces(tmp_path):
    """Two procedural people side by side (landmarks known), as a photo file."""
    a, _, la = render_portrait(3, 160, affine=alignment_affine(0, 0.7, 0, 0), return_landmarks=True)
    b, _, lb = render_portrait(8, 160, affine=alignment_affine(-10, 0.6, 0, 0.05), return_landmarks=True)
    img = np.concatenate([a, b], axis=1)
    Image.fromarray(img).save(tmp_path / "two.png")
    lb = lb + np.array([160.0, 0.0])
    faces = [Face(np.r_[lm.min(0) - 30, lm.max(0) + 30], 0.99, lm.astype(float) - 0.5) for lm in (la, lb)]
    return tmp_path / "two.png", faces


def fit(qtbot, win, method="w", steps=10):
    p = win.portrait
    p.method_box.setCurrentIndex(p.method_box.findData(method))
    p.steps_box.setValue(steps)
    p.invert()
    qtbot.waitUntil(lambda: p.inverted, timeout=60000)
    wait_idle(qtbot, win.device_lane)


def face_file(tmp_path, seed):
    """A 96 px procedural portrait saved as PNG, and its landmarks."""
    img, _, lms = render_portrait(seed, 96, return_landmarks=True)
    Image.fromarray(img).save(tmp_path / "face.png")
    return tmp_path / "face.png", lms


def open_and_fit(qtbot, win, path, lms):
    """Open ``path``, report its face as Detect would (the detector is tested on real photos), fit it."""
    open_and_wait(qtbot, win, path)
    win.portrait.face._found([Face(np.r_[lms.min(0) - 10, lms.max(0) + 10], 0.99, lms.astype(float) - 0.5)])
    qtbot.waitUntil(lambda: win.portrait.face.face is not None, timeout=20000)
    fit(qtbot, win)


def widget_pos(view, x, y) -> QPoint:
    return view.to_widget(QPointF(x + 0.5, y + 0.5)).toPoint()


def test_detect_works_on_a_fresh_install_with_the_shipped_models(qtbot, tmp_path, monkeypatch):
    monkeypatch.delenv("GANEDITOR_MODELS", raising=False)
    win = make_window(qtbot, tmp_path, monkeypatch, "portrait-stylegan2")
    p = win.portrait
    open_and_wait(qtbot, win, ROOT / "resources" / "samples" / "portrait-grace-hopper.jpg")
    assert p.face.detect_button.isEnabled()  # no set-up step: MTCNN ships in models/
    p.face.detect()
    qtbot.waitUntil(lambda: p.face.face is not None, timeout=60000)
    wait_idle(qtbot, win.device_lane)
    assert len(p.face.faces) == 1 and len(win.view.points) == 5 and win.view.points_editable
    named = [s for s in p.sliders.specs.values() if s.group not in ("Discovered", "My sliders")]
    assert named and all(s.verified for s in named)  # only checked sliders carry a name
    assert win.errors == []
    win.discard_and_close()


def test_landmark_drag_realigns_and_does_not_pan_and_a_face_is_picked_on_the_canvas(qtbot, tiny, tmp_path):
    win, p, view = tiny, tiny.portrait, tiny.view
    path, faces = two_faces(tmp_path)
    open_and_wait(qtbot, win, path)
    p.face._found(faces)  # as Detect reports them (the detector itself is tested on real photos)
    qtbot.waitUntil(lambda: p.face.face is not None, timeout=20000)
    wait_idle(qtbot, win.device_lane)
    assert p.face.selected == 0 and "click a box" in p.face.hint.text()
    # drag the nose 6 px: the view does not pan, the face re-aligns
    first, center = p.face.face, QPointF(view.center)
    nose = p.face.picked[2]
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=widget_pos(view, *nose))
    qtbot.mouseMove(view, widget_pos(view, nose[0] + 6, nose[1] + 3))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=widget_pos(view, nose[0] + 6, nose[1] + 3))
    qtbot.waitUntil(lambda: p.face.face is not first, timeout=20000)
    assert view.center == center and abs(p.face.picked[2][0] - nose[0] - 6) < 1.5
    # a click on the other face's box picks it
    x1, y1, x2, y2 = faces[1].box
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=widget_pos(view, (x1 + x2) / 2, y1 + 5))
    qtbot.waitUntil(lambda: p.face.selected == 1 and p.face.face.landmarks[0, 0] > 160, timeout=20000)
    assert view.center == center and view.selected_box == 1


def test_wheel_over_a_slider_scrolls_unless_the_slider_has_focus(qtbot, tiny, tmp_path):
    win, p = tiny, tiny.portrait
    open_and_fit(qtbot, win, *face_file(tmp_path, 3))
    slider = first_row(p).slider
    steps = win.doc.undo_stack.count()

    def wheel(notches):
        pos = QPointF(slider.width() / 2, slider.height() / 2)
        ev = QWheelEvent(pos, slider.mapToGlobal(pos), QPoint(), QPoint(0, 120 * notches), Qt.MouseButton.NoButton,
                         Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(slider, ev)

    slider.clearFocus()
    wheel(5)
    assert slider.value() == 0 and win.doc.undo_stack.count() == steps  # the panel scrolls, nothing changes
    slider.setFocus()
    qtbot.waitUntil(slider.hasFocus, timeout=2000)
    wheel(1)
    assert slider.value() != 0 and win.doc.undo_stack.count() == steps + 1


def test_filter_box_groups_and_layer_ranges(qtbot, tiny):
    s = tiny.portrait.sliders
    assert set(s.headers) == {"Discovered"} and not s.headers["Discovered"].isChecked()  # folded: SeFa only here
    assert not any(r.isVisible() for r in s.rows.values())
    s.filter.setText("discovered 3")
    assert [r.spec.label for r in s.rows.values() if not r.isHidden()] == ["Discovered 3"]
    s.filter.setText("no such slider")
    assert not s.empty.isHidden()
    s.filter.clear()
    s.show_layers.setChecked(True)
    assert all(not r.layers.isHidden() and "–" in r.layers.text() for r in s.rows.values())
    assert all(r.toolTip() for r in s.rows.values())


def test_teach_a_slider_from_marked_faces(qtbot, tiny, tmp_path, models_dir):
    from ganeditor.qt.teach_dialog import TeachDialog

    p = tiny.portrait
    dialogs = []
    real_init = TeachDialog.__init__

    def keep(self, *a, **k):
        real_init(self, *a, **k)
        dialogs.append(self)

    TeachDialog.__init__ = keep
    try:
        p.teach_button.click()
    finally:
        TeachDialog.__init__ = real_init
    d = dialogs[0]
    qtbot.waitUntil(lambda: len(d.tiles) >= 24, timeout=30000)
    assert not d.create.isEnabled()
    for t in d.tiles[:5]:
        t.click()  # more
    for t in d.tiles[5:10]:
        t.click()
        t.click()  # less
    assert "5 more, 5 less" in d.count.text() and not d.create.isEnabled()  # still needs a name
    d.name.setText("Freckles")
    assert d.create.isEnabled()
    d.create.click()
    qtbot.waitUntil(lambda: "freckles" in p.sliders.rows, timeout=30000)
    row = p.sliders.rows["freckles"]
    assert row.spec.group == "My sliders" and row.spec.label == "Freckles"
    assert (models_dir / "tiny-stylegan2-my-directions.safetensors").is_file()  # beside the generator


def test_generate_panel_sends_a_face_to_the_sliders_and_exports(qtbot, tiny, tmp_path):
    win, g, p = tiny, tiny.generate, tiny.portrait
    g.seed.setValue(5)
    qtbot.waitUntil(lambda: g.current is not None and g.edit_button.isEnabled(), timeout=30000)
    wait_idle(qtbot, win.device_lane)
    g.mix["fine"].setChecked(True)
    wait_idle(qtbot, win.device_lane)
    assert "styles of 1 (fine)" in g.preview.caption.text()
    g.edit_button.click()
    qtbot.waitUntil(lambda: p.inverted, timeout=30000)
    assert win.doc.current.shape == (16, 16, 3) and p.sliders.isEnabled() and win.doc.path is None
    first_row(p).slider.setValue(150)
    qtbot.waitUntil(lambda: p.frame is not None and p.frame.full, timeout=30000)
    assert p.frame.photo.shape == (16, 16, 3)
    g.export(str(tmp_path / "face.png"))
    wait_idle(qtbot, win.device_lane)
    assert Image.open(tmp_path / "face.png").size == (16, 16)
    assert b"trainedAlgorithmicMedia" in (tmp_path / "face.png").read_bytes()  # marked as AI-made
    win.doc.export(tmp_path / "doc.png")  # the generated face opened as the photo: still AI-made when exported
    assert b"trainedAlgorithmicMedia" in (tmp_path / "doc.png").read_bytes()


@pytest.mark.parametrize("kind", ["gray", "16-bit"])
def test_gray_and_16_bit_photos_keep_their_format(qtbot, tiny, tmp_path, kind):
    win, p = tiny, tiny.portrait
    img, _, lms = render_portrait(4, 96, return_landmarks=True)
    if kind == "gray":
        Image.fromarray(img.mean(2).astype(np.uint8)).save(tmp_path / "photo.png")
    else:
        Image.fromarray(img[:, :, 0].astype(np.uint16) * 257).save(tmp_path / "photo.png")  # 16-bit gray PNG
    open_and_fit(qtbot, win, tmp_path / "photo.png", lms)
    original = win.doc.current
    first_row(p).slider.setValue(300)
    qtbot.waitUntil(lambda: p.frame is not None and p.frame.full, timeout=30000)
    p.bar.apply_button.click()
    qtbot.waitUntil(lambda: win.doc.current is not original, timeout=20000)
    assert win.doc.current.shape == original.shape and win.doc.current.dtype == original.dtype
    assert win.errors == []


def test_no_face_says_what_to_do(qtbot, tmp_path, monkeypatch):
    monkeypatch.delenv("GANEDITOR_MODELS", raising=False)
    win = make_window(qtbot, tmp_path, monkeypatch, "portrait-stylegan2")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((120, 160, 3)) * 60 + 100).astype(np.uint8)).save(tmp_path / "wall.png")
    open_and_wait(qtbot, win, tmp_path / "wall.png")
    win.portrait.face.detect()
    qtbot.waitUntil(lambda: "No face found" in win.portrait.face.hint.text(), timeout=60000)
    assert "Place 5 points" in win.portrait.face.hint.text() and win.errors == []
    win.discard_and_close()


def test_apply_and_its_undo_keep_the_fit_and_another_change_of_the_photo_drops_it(qtbot, tiny, tmp_path):
    win, p, stack = tiny, tiny.portrait, tiny.doc.undo_stack
    open_and_fit(qtbot, win, *face_file(tmp_path, 5))
    first_row(p).slider.setValue(200)
    qtbot.waitUntil(lambda: p.frame is not None and p.frame.full, timeout=30000)
    base, face = win.doc.current, p.face.face
    p.apply()
    qtbot.waitUntil(lambda: win.doc.current is not base, timeout=20000)
    stack.undo()
    stack.redo()
    wait_idle(qtbot, win.device_lane)
    assert p.inverted and p.face.face is face and p.base is base  # our own result: the fit stays
    win.doc.apply_result(win.doc.current // 2, None, "Darken")  # another operation changes the photo
    qtbot.waitUntil(lambda: p.face.face is not face, timeout=20000)
    wait_idle(qtbot, win.device_lane)
    assert not p.inverted and p.base is win.doc.current  # aligned again from the new photo, to be fitted
    assert p.face.face.image.mean() < face.image.mean() - 10
    assert "photo changed" in win.statusBar().currentMessage() and win.errors == []
