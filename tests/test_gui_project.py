"""Never lose work, through the real window: project files round-trip exactly, autosave + recovery after
kill -9, unsaved-changes prompts, the history (memory limit, wheel merging), bad projects and models."""

import json
import os
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QMessageBox

from ganeditor.pipelines.project import VERSION, load_project
from ganeditor.qt.settings import Key
from gui_support import (fit_portrait, make_window, open_and_wait, place_points, portrait_photo, tiny_window, wait_window_idle,
                         write_photo)

A = QMessageBox.StandardButton


@pytest.fixture
def window(tiny_window):
    return tiny_window


def edit_session(qtbot, win, tmp_path):
    """Open a portrait, translate it, align (5 points), fit (W, 20 steps), move a slider, apply."""
    path, lms = portrait_photo(tmp_path)
    open_and_wait(qtbot, win, path)
    win.scene.run_translate()
    qtbot.waitUntil(lambda: win.doc.undo_stack.count() == 1, timeout=20000)
    wait_window_idle(qtbot, win)
    place_points(qtbot, win, lms)
    p = fit_portrait(qtbot, win, "w", 20)
    name = next(iter(p.sliders.specs))
    p.sliders.row(name).slider.setValue(150)
    qtbot.waitUntil(lambda: p.frame is not None and p.frame.full, timeout=20000)
    before = win.doc.current
    p.apply()
    qtbot.waitUntil(lambda: win.doc.current is not before, timeout=20000)
    wait_window_idle(qtbot, win)
    return path, name


def test_project_round_trip_is_exact(qtbot, window, tmp_path, monkeypatch, tiny_models):
    win = window
    photo, name = edit_session(qtbot, win, tmp_path)
    assert win.doc.is_modified and "*" in win.windowTitle()
    exported = win.export(str(tmp_path / "edited.png"))
    qtbot.waitUntil(lambda: exported.state == "done", timeout=30000)
    assert b"compositeWithTrainedAlgorithmicMedia" in (tmp_path / "edited.png").read_bytes()  # marked as AI-edited
    original = photo.read_bytes()
    refused = win.export(str(photo))  # over the photo being edited: refused, the original stays
    qtbot.waitUntil(lambda: refused.state == "done", timeout=30000)
    assert photo.read_bytes() == original and win.errors and "photo being edited" in win.errors[-1][1]
    win.errors.clear()
    out = tmp_path / "work.ganedit"
    assert win.save_project(str(out), wait=True)
    assert not win.doc.is_modified and win.windowTitle().startswith("work.ganedit — ")
    pr = load_project(out)
    assert [o["op"] for o in pr.operations] == ["translate", "paste-back"]
    assert pr.operations[0]["model"] == "tiny-cyclegan" and pr.operations[0]["network"] == "G_A"
    assert pr.operations[1]["directions"] == {name: 1.5} and pr.operations[1]["model_path"].endswith("tiny-stylegan2.safetensors")
    current, aligned = win.doc.current, win.portrait.face.face.image
    recon, sliders = win.portrait.reconstruction, dict(win.portrait.edits.active())
    edited = win.portrait.frame.face
    other = tiny_window(qtbot, tmp_path / "second", monkeypatch, tiny_models)
    photo.rename(tmp_path / "moved.png")  # the embedded copy is used
    open_and_wait(qtbot, other, out)
    q = other.portrait
    qtbot.waitUntil(lambda: q.inverted and q.frame is not None and q.frame.full, timeout=30000)
    assert np.array_equal(other.doc.current, current) and other.doc.current.dtype == current.dtype
    assert np.array_equal(other.doc.original, win.doc.original)
    assert np.array_equal(q.face.face.image, aligned)
    assert np.allclose(q.face.face.transform, win.portrait.face.face.transform)
    assert np.array_equal(q.reconstruction, recon)
    assert dict(q.edits.active()) == sliders and q.sliders.row(name).slider.value() == 150
    assert np.array_equal(q.frame.face, edited)
    assert not other.doc.is_modified and other.errors == []
    assert [o["op"] for o in other.doc.operations()] == ["translate", "paste-back"]  # kept: exports still say so
    again = other.export(str(tmp_path / "again.png"))
    qtbot.waitUntil(lambda: again.state == "done", timeout=30000)
    assert b"compositeWithTrainedAlgorithmicMedia" in (tmp_path / "again.png").read_bytes()
    other.discard_and_close()


def test_unsaved_changes_prompt_on_open_drop_and_close(qtbot, window, tmp_path):
    win = window
    first, second = write_photo(tmp_path / "a.png"), write_photo(tmp_path / "b.png", seed=1)
    open_and_wait(qtbot, win, first)
    win.doc.apply_result(win.doc.current // 2, None, "Darken")
    win.answers = [A.Cancel]
    assert not win.open_path(str(second))  # Cancel: nothing changes
    assert win.doc.path.name == "a.png" and win.doc.undo_stack.count() == 1
    assert "Save the changes to a.png" in win.questions[-1][1]
    win.answers = [A.Discard]
    open_and_wait(qtbot, win, second)
    assert win.doc.path.name == "b.png" and win.doc.undo_stack.count() == 0
    win.doc.apply_result(win.doc.current // 2, None, "Darken")
    win.answers = [A.Cancel]
    win.close()
    assert win.isVisible()  # closing was cancelled
    win.answers = [A.Discard]
    win.close()
    assert not win.isVisible()


def test_the_real_question_boxes_name_their_buttons_for_what_they_do(qtbot, window):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from ganeditor.qt.window_files import FileActions

    seen = []

    def answer(button):
        def look():
            box = QApplication.activeModalWidget()
            seen.append(sorted(b.text().replace("&", "") for b in box.buttons()))
            box.button(button).click()
        QTimer.singleShot(0, look)

    answer(A.Cancel)  # the platform's "Close without Saving" would be wrong before an Open
    assert FileActions.ask(window, "Unsaved changes", "Save?", A.Save | A.Discard | A.Cancel, A.Save) == A.Cancel
    answer(A.Discard)
    assert FileActions.ask(window, "Edit not applied", "Apply?", A.Apply | A.Discard | A.Cancel, A.Apply) == A.Discard
    assert seen[0] == ["Cancel", "Don't Save", "Save"] and seen[1] == ["Apply", "Cancel", "Discard"]


def fit_and_move_a_slider(qtbot, win, tmp_path):
    """Open a portrait, align and fit it (W, 20 steps), move its first slider to +1.5 (not applied)."""
    path, lms = portrait_photo(tmp_path)
    open_and_wait(qtbot, win, path)
    place_points(qtbot, win, lms)
    p = fit_portrait(qtbot, win, "w", 20)
    wait_window_idle(qtbot, win)
    name = next(iter(p.sliders.specs))
    p.sliders.row(name).slider.setValue(150)
    return p, name


def test_an_unapplied_slider_edit_is_offered_before_quitting_or_opening(qtbot, window, tmp_path):
    win = window
    p, name = fit_and_move_a_slider(qtbot, win, tmp_path)
    qtbot.waitUntil(lambda: p.frame is not None and p.frame.full, timeout=20000)
    steps = win.doc.undo_stack.count()
    win.answers = [A.Cancel]
    win.close()  # Cancel keeps everything
    assert win.isVisible() and win.questions == [("Edit not applied", "1 slider edit is not applied "
                                                  f"({p.sliders.label(name)} +1.5). Apply it before you quit?")]
    assert p.sliders.row(name).slider.value() == 150 and p.unapplied_edit() == {name: 1.5}
    assert win.doc.undo_stack.count() == steps and p.frame.full and p.inverted
    win.answers = [A.Cancel]
    assert not win.open_path(str(write_photo(tmp_path / "other.png")))  # opening asks the same
    assert "before you open another file?" in win.questions[-1][1] and win.doc.path.name == "portrait3.png"
    win.answers = [A.Cancel]
    win._edit_generated(None, np.zeros((16, 16, 3), np.uint8), "seed-5", {})  # the Generate panel's 'Edit this face'
    assert "before you edit the generated face?" in win.questions[-1][1] and win.doc.path.name == "portrait3.png"
    win.answers = [A.Discard, A.Cancel]  # Discard the edit, then the usual question (Cancel: stay)
    win.close()
    assert [q[0] for q in win.questions[-2:]] == ["Edit not applied", "Unsaved changes"] and win.isVisible()
    p.sliders.reset_all.click()  # every slider at 0: nothing to apply, only the usual question
    assert p.unapplied_edit() == {}
    win.answers = [A.Discard]
    asked = len(win.questions)
    win.close()
    assert not win.isVisible() and [q[0] for q in win.questions[asked:]] == ["Unsaved changes"]
    assert all(o["op"] != "paste-back" for o in win.doc.operations())


def test_apply_in_the_question_waits_for_the_full_render_applies_and_goes_on(qtbot, window, tmp_path):
    win = window
    p, name = fit_and_move_a_slider(qtbot, win, tmp_path)
    assert p.frame is None  # quit at once: the full-resolution frame is not rendered yet
    win.answers = [A.Apply, A.Cancel]
    win.close()
    assert [q[0] for q in win.questions] == ["Edit not applied", "Unsaved changes"] and win.isVisible()
    last = win.doc.operations()[-1]
    assert last["op"] == "paste-back" and last["directions"] == {name: 1.5}
    assert win.doc.undo_stack.text(win.doc.undo_stack.index() - 1) == f"Portrait: {p.sliders.label(name)} +1.5"
    assert win.doc.current is p.frame.photo and p.unapplied_edit() == {}
    assert not p.bar.apply_button.isEnabled() and p.bar.label.text().startswith("Applied")  # the bar agrees
    win.answers = [A.Discard]
    win.close()  # the edit is applied: only the usual question
    assert not win.isVisible() and [q[0] for q in win.questions[2:]] == ["Unsaved changes"]


def test_history_memory_limit_drops_the_oldest_steps_and_undo_still_works(qtbot, window, tmp_path):
    win, doc = window, window.doc
    open_and_wait(qtbot, win, write_photo(tmp_path / "p.png", (100, 100)))
    doc.memory_limit = 3 * 100 * 100 * 3  # room for three images besides the original and the current
    results = [np.full((100, 100, 3), v, np.uint8) for v in (10, 20, 30, 40, 50, 60)]
    for i, r in enumerate(results):
        doc.apply_result(r, None, f"Step {i}")
    assert doc.history_bytes() <= doc.memory_limit and doc.undo_stack.count() < 6
    assert doc.undo_stack.text(doc.undo_stack.count() - 1) == "Step 5" and doc.current is results[-1]
    assert [o["label"] for o in doc.operations()] == [f"Step {i}" for i in range(6)]  # dropped steps stay recorded
    doc.undo_stack.undo()
    assert doc.current is results[-2]
    doc.undo_stack.redo()
    assert doc.current is results[-1]
    assert win.history.model().rowCount() == doc.undo_stack.count() + 1  # the History dock lists the steps
    win.history.setCurrentIndex(win.history.model().index(1, 0))  # click a row: jump there
    assert doc.undo_stack.index() == 1


def test_wheel_notches_on_a_slider_merge_into_one_step(qtbot):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from ganeditor.pipelines.sliders import SliderSpec
    from ganeditor.qt.document import Document, EditState
    from ganeditor.qt.sliders import DirectionSliders

    doc, edits = Document(), EditState()
    sliders = DirectionSliders(edits, doc.undo_stack)
    qtbot.addWidget(sliders)
    sliders.set_specs([SliderSpec("smile", "Smile", "Expression", "", (0, 9), True)])
    sliders.show()
    slider = sliders.row("smile").slider
    slider.setFocus()  # an unfocused slider lets the wheel scroll the panel instead
    qtbot.waitUntil(slider.hasFocus, timeout=2000)
    for _ in range(4):
        ev = QWheelEvent(QPointF(5, 5), QPointF(5, 5), QPoint(0, 0), QPoint(0, 120), Qt.MouseButton.NoButton,
                         Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(slider, ev)
    assert edits.value("smile") > 0 and doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert edits.value("smile") == 0.0


def test_bad_projects_give_one_line_and_lose_nothing(qtbot, window, tmp_path):
    win = window
    photo = write_photo(tmp_path / "p.png")
    open_and_wait(qtbot, win, photo)
    good = tmp_path / "good.ganedit"
    assert win.save_project(str(good), wait=True)
    before = good.read_bytes()
    truncated = tmp_path / "truncated.ganedit"
    truncated.write_bytes(before[: len(before) // 2])
    newer = tmp_path / "newer.ganedit"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(newer, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "project.json":
                doc = json.loads(data)
                doc["version"] = VERSION + 1
                data = json.dumps(doc).encode()
            dst.writestr(info, data)
    (tmp_path / "text.ganedit").write_text("hello")
    for bad, words in ((truncated, "damaged"), (newer, "newer GAN Editor"), (tmp_path / "text.ganedit", "not a GAN Editor project")):
        open_and_wait(qtbot, win, bad)
        assert words in win.errors[-1][1] and bad.name in win.errors[-1][1]
        assert win.doc.path == photo  # the open document is untouched
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions: a missing folder stands in
            ro = tmp_path / "missing"
        assert not win.save_project(str(ro / "x.ganedit"), wait=True)
        assert "x.ganedit" in win.errors[-1][1] or str(ro) in win.errors[-1][1]
    finally:
        os.chmod(tmp_path / "ro", 0o700)
    assert good.read_bytes() == before


def test_a_moved_photo_is_asked_for_and_the_rest_still_loads(qtbot, window, tmp_path):
    win = window
    win.settings.set(Key.EMBED_PHOTO, False)
    photo = write_photo(tmp_path / "p.png")
    open_and_wait(qtbot, win, photo)
    win.doc.apply_result(win.doc.current // 3, None, "Darken")
    out = tmp_path / "p.ganedit"
    assert win.save_project(str(out), wait=True)
    result = win.doc.current
    photo.unlink()
    win.answers = [A.No]  # do not locate it
    open_and_wait(qtbot, win, out)
    assert any(q[0] == "Photo moved" for q in win.questions)
    assert np.array_equal(win.doc.current, result)


def test_a_broken_model_leaves_the_working_setup_intact(qtbot, window, tmp_path):
    win = window
    good = win.models.current("generator")
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    win.add_model(str(bad))
    wait_window_idle(qtbot, win)
    assert win.errors and "broken.safetensors" in win.errors[-1][1]
    assert win.models.current("generator") == good and all(e.path != bad for e in win.models.entries)
    upscaler = next(e for e in win.models.entries if e.name == "tiny-sr")
    win.portrait.set_generator(upscaler, win.models.entries)  # the wrong kind of model for the role
    wait_window_idle(qtbot, win)
    assert "not a StyleGAN generator" in win.errors[-1][1]
    assert win.portrait.generator.name == "tiny-stylegan2" and win.portrait.loaded
    assert "Loading" not in win.portrait.model_label.text() and "Loading" not in win.portrait.face.hint.text()
    assert win.models.current("generator").name == "tiny-stylegan2"


def test_a_dropped_checkpoint_joins_the_library_and_is_chosen(qtbot, window, tmp_path, tiny_models):
    import shutil

    win = window
    copy = tmp_path / "my-upscaler.safetensors"
    shutil.copy(tiny_models / "tiny-sr.safetensors", copy)
    win.add_model(str(copy))
    wait_window_idle(qtbot, win)
    assert win.models.current("upscaler").name == "my-upscaler" and win.scene.upscaler.path == copy
    assert str(copy) in win.settings.get(Key.EXTRA_MODELS)


DRIVER = r"""
import sys, time
from pathlib import Path
from ganeditor.qt.app import create_app
from ganeditor.qt.main_window import MainWindow
from ganeditor.qt.settings import Settings
from PySide6.QtCore import QSettings
app = create_app()
tmp = Path(sys.argv[1])
win = MainWindow(Settings(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)), tmp / "autosave", 0.2)
win.show()
win.open_path(sys.argv[2])
while not win.doc.is_open:
    app.processEvents(); time.sleep(0.01)
win.doc.apply_result(255 - win.doc.current, None, "Invert colours")
while not list((tmp / "autosave").glob("autosave-*.ganedit")):
    app.processEvents(); time.sleep(0.01)
print("autosaved", flush=True)
while True:
    app.processEvents(); time.sleep(0.01)
"""


def test_autosave_survives_kill_9_and_is_recovered(qtbot, tmp_path, monkeypatch, tiny_models):
    monkeypatch.setenv("GANEDITOR_MODELS", str(tiny_models))
    photo = write_photo(tmp_path / "p.png", (64, 48))
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(photo)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "autosaved"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    win = make_window(qtbot, tmp_path, monkeypatch)
    win.answers = [A.Yes]
    win.start_up()
    wait_window_idle(qtbot, win)
    assert win.questions and win.questions[0][0] == "Recover unsaved work"
    expected = 255 - np.asarray(Image.open(photo))
    assert np.array_equal(win.doc.current, expected) and win.doc.is_modified
    assert np.array_equal(win.doc.original, np.asarray(Image.open(photo)))
    assert win.doc.undo_stack.count() == 0  # the history starts at the recovered result...
    assert [o["label"] for o in win.doc.operations()] == ["Invert colours"]  # ...which keeps its operations
    qtbot.waitUntil(lambda: any(p.name == f"autosave-{os.getpid()}.ganedit" for p in (tmp_path / "autosave").iterdir()), timeout=20000)
    win.discard_and_close()
    assert not list((tmp_path / "autosave").glob("autosave-*.ganedit"))  # a clean exit leaves nothing behind
