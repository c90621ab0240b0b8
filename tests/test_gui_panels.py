"""The window's panels on tiny models: portrait (points, invert, sliders, paste-back), scene
(translate, upscale), train (a 2-step run), models; cancel, responsiveness, clean close."""

import numpy as np
import pytest
from gui_support import (Heartbeat, fill_train_form, fit_portrait, open_and_wait, place_points, portrait_photo, wait_idle,
                         wait_window_idle, write_photo)


@pytest.fixture
def window(tiny_window):
    return tiny_window


def test_models_panel_sorts_models_by_kind(window):
    kinds = {e.name: e.kind for e in window.models.entries}
    assert kinds["tiny-stylegan2"] == "generator" and kinds["tiny-cyclegan"] == "translator"
    assert kinds["tiny-sr"] == "upscaler"
    assert "16 px" in window.portrait.model_label.text() and "SeFa" in window.portrait.model_label.text()
    labels = [window.scene.direction_box.itemText(i) for i in range(window.scene.direction_box.count())]
    assert labels == ["day → night  (G_A)", "night → day  (G_B)"]


def test_portrait_points_fit_live_edit_apply_and_undo(qtbot, window, tmp_path):
    win, p = window, window.portrait
    path, lms = portrait_photo(tmp_path)
    assert not p.face.points_button.isEnabled()  # no photo yet, with the reason shown
    assert "Open a photo" in p.face.hint.text()
    open_and_wait(qtbot, win, path)
    assert "Detect the face" in p.face.hint.text()  # what was missing is there: the hint says what to do next
    place_points(qtbot, win, lms)
    assert p.face.thumb.pixels.shape == (16, 16, 3) and p.invert_button.isEnabled()
    assert not p.sliders.isEnabled() and not p.bar.apply_button.isEnabled()
    fit_portrait(qtbot, win, "w", 20)
    wait_idle(qtbot, win.device_lane)
    assert "Fitted in" in p.invert_hint.text() and p.sliders.isEnabled() and win.view.preview is None
    row = next(iter(p.sliders.rows.values()))
    original = win.doc.current
    row.slider.setValue(200)
    # the edit shows on the photo itself (a live preview), then at full resolution
    qtbot.waitUntil(lambda: p.frame is not None and p.frame.full, timeout=30000)
    assert win.view.preview is not None and win.view.preview_before is not None
    assert p.frame.photo.shape == original.shape and not np.array_equal(p.frame.photo, original)
    assert win.doc.current is original and p.bar.apply_button.isEnabled()  # nothing applied yet
    p.bar.apply_button.click()
    qtbot.waitUntil(lambda: win.doc.current is not original, timeout=20000)
    assert np.array_equal(win.doc.current, p.frame.photo) and win.view.preview is None
    assert win.doc.undo_stack.text(win.doc.undo_stack.index() - 1).startswith("Portrait: ")
    assert not p.bar.apply_button.isEnabled() and "Applied" in p.bar.label.text()  # applied once
    win.doc.undo_stack.undo()  # Apply is one step
    assert win.doc.current is original and p.bar.apply_button.isEnabled()  # not applied any more
    win.doc.undo_stack.undo()  # the slider move
    assert row.slider.value() == 0
    qtbot.waitUntil(lambda: win.view.preview is None, timeout=5000)
    assert win.errors == []


def test_inversion_cancel_keeps_the_best_result_and_the_gui_stays_responsive(qtbot, window, tmp_path):
    win, p = window, window.portrait
    path, lms = portrait_photo(tmp_path)
    open_and_wait(qtbot, win, path)
    place_points(qtbot, win, lms)
    p.method_box.setCurrentIndex(p.method_box.findData("wplus"))
    p.steps_box.setValue(5000)
    hb = Heartbeat()
    hb.start()
    p.invert()
    qtbot.waitUntil(lambda: p.recon_thumb.pixels is not None, timeout=30000)  # a stage preview arrived
    assert win.job_bar.isVisible() and "Fitting the face" in win.job_bar.label.text()
    qtbot.wait(300)
    win.job_bar.cancel_button.click()
    qtbot.waitUntil(lambda: p.inverted, timeout=10000)
    hb.stop()
    assert "cancelled: best so far" in p.invert_hint.text()
    assert hb.ticks > 5  # the GUI kept running (the stall bound is measured by bench/bench_gui_latency.py)
    wait_idle(qtbot, win.device_lane)
    assert not win.job_bar.isVisible()


def test_manual_points_are_offered_when_detection_is_unavailable(qtbot, window, tmp_path, monkeypatch):
    import ganeditor.pipelines.portrait as ps

    monkeypatch.setattr(ps, "find_weights", lambda chosen=None: None)
    win, p = window, window.portrait
    p.set_generator(win.models.current("generator"), win.models.entries)
    wait_idle(qtbot, win.device_lane)
    open_and_wait(qtbot, win, portrait_photo(tmp_path)[0])
    assert not p.face.detect_button.isEnabled() and p.face.points_button.isEnabled()
    assert "Place 5 points" in p.face.hint.text() and "MTCNN" in p.face.detect_button.toolTip()


def test_scene_translate_and_upscale_are_undoable(qtbot, window, tmp_path):
    win, s = window, window.scene
    assert not s.translate_button.isEnabled() and "Open a photo" in s.translate_hint.text()
    open_and_wait(qtbot, win, write_photo(tmp_path / "street.png", (40, 28)))
    original = win.doc.current
    s.direction_box.setCurrentIndex(1)
    s.run_translate()
    qtbot.waitUntil(lambda: win.doc.current is not original, timeout=20000)
    assert win.doc.current.shape == original.shape
    assert win.doc.undo_stack.text(0).startswith("Translate night → day")
    s.scale_box.setCurrentIndex(s.scale_box.findData(2))
    s.run_upscale()
    qtbot.waitUntil(lambda: win.doc.current.shape[:2] == (56, 80), timeout=20000)
    wait_idle(qtbot, win.device_lane)
    assert win.size_label.text() == "80×56 · 2 edits"  # counted after the step, not one behind
    win.doc.undo_stack.undo()
    assert win.size_label.text() == "40×28 · 1 edit"
    win.doc.undo_stack.undo()
    assert win.doc.current is original
    assert win.size_label.text() == "40×28"
    assert win.errors == []


def test_train_panel_runs_a_tiny_run_to_completion(qtbot, window, tmp_path):
    t = window.train
    assert not t.start_button.isEnabled()
    fill_train_form(t, tmp_path, steps=2)
    t.sample_every.setValue(1)
    t.eval_every.setValue(1)
    assert t.start_button.isEnabled()
    done = []
    t.finished.connect(done.append)
    t.start()
    assert not t.start_button.isEnabled() and t.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: bool(done), timeout=120000)
    assert done == ["done"], window.errors
    assert "Step 2/2. Finished." in t.stats.text()
    assert [len(v) for v in t.plot.series.values()] == [2] * len(t.plot.series) and "G_A" in t.plot.series
    assert t.sample.pixels is not None
    assert [len(t.health.shares.series[k]) for k in ("diversity_AtoB", "diversity_BtoA")] == [2, 2]
    assert "swd_x1e3_AtoB" in t.health.distances.series and "SWD and diversity only" in t.health.note.text()
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert t.start_button.isEnabled()
    wait_window_idle(qtbot, window)  # the finished run's model joins the library at once
    assert any(e.path == tmp_path / "run" / "model.safetensors" for e in window.models.entries)


def test_train_panel_shows_health_and_the_collapse_alarm(qtbot, window, tmp_path, monkeypatch):
    from train_support import collapse_generator_after

    monkeypatch.setenv("GANEDITOR_INCEPTION", str(tmp_path / "missing.pth"))  # the fallback space, named
    monkeypatch.setattr("torch.hub.get_dir", lambda: str(tmp_path))
    collapse_generator_after(monkeypatch, images=16)
    t = window.train
    t.recipe_box.setCurrentIndex(t.recipe_box.findData("stylegan2"))
    t.folder_a.edit.setText("world:portraits")
    t.out.edit.setText(str(tmp_path / "run"))
    t.steps.setValue(6)
    t.batch.setValue(4)
    t.sample_every.setValue(0)
    t.eval_every.setValue(2)
    t.eval_count.setValue(48)
    t.options.setText('{"resolution": 16, "z_dim": 16, "w_dim": 16, "channel_base": 256, "channel_max": 32, '
                      '"mapping_layers": 2}')
    done = []
    t.finished.connect(done.append)
    t.start()
    qtbot.waitUntil(lambda: bool(done), timeout=180000)
    assert done == ["done"], window.errors
    h = t.health
    for name in ("fid", "kid_x1e3", "swd_x1e3"):
        assert len(h.distances.series[name]) == 3, name  # steps 2, 4, 6
    for name in ("precision", "recall", "coverage_min", "diversity"):
        assert len(h.shares.series[name]) == 3, name
    assert "attribute-regressor features (FD/KD, not comparable with published FID)" in h.note.text()
    assert "Least covered attributes:" in h.note.text()
    assert h.alarm.isVisibleTo(t) and "Possible mode collapse at step 6" in h.alarm.text()
    assert "diversity collapsed" in h.alarm.text() and "Try:" in h.alarm.text()


def test_train_form_is_remembered_by_the_window(qtbot, window, tmp_path):
    from ganeditor.qt.settings import Key
    from ganeditor.qt.train_panel import TrainPanel

    t = window.train
    fill_train_form(t, tmp_path, steps=37)
    t.options.setText('{"crop_size": 64}')
    window.discard_and_close()  # closing stores the form
    stored = window.settings.get(Key.TRAIN_FORM)
    again = TrainPanel(window.train_lane)
    qtbot.addWidget(again)
    again.set_form_json(stored)
    assert again.form_json() == stored and again.steps.value() == 37 and again.out.text() == str(tmp_path / "run")
    assert again.start_button.isEnabled()
    for bad in ("{not json", "[1, 2]", '{"steps": "many", "recipe": "nope"}'):
        again.set_form_json(bad)  # ignored, never an error
    assert again.steps.value() == 37


def test_a_resumed_run_keeps_its_earlier_curves(qtbot, window, tmp_path):
    t = window.train
    fill_train_form(t, tmp_path, steps=2)
    t.sample_every.setValue(0)
    t.eval_every.setValue(1)
    done = []
    t.finished.connect(done.append)
    t.start()
    qtbot.waitUntil(lambda: len(done) == 1, timeout=120000)
    t.steps.setValue(3)
    t.resume.setChecked(True)
    t.start()
    qtbot.waitUntil(lambda: len(done) == 2, timeout=120000)
    assert done == ["done", "done"], window.errors
    assert [p[0] for p in t.plot.series["G_A"]] == [1.0, 2.0, 3.0]  # steps 1-2 from the first session, 3 resumed
    assert len(t.health.shares.series["diversity_AtoB"]) == 3
