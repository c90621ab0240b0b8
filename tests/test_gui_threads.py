"""The slow calls of the window run on worker threads, checked by thread identity (never by timing):
photo decoding, export encoding, project save/open, the model scan, model loading and description,
the engines' warm-up, translate/upscale set-up, detection-free alignment, inversion, the paste target
and the paste-back of every preview frame."""

import threading

import ganeditor.pipelines.catalog as catalog
import ganeditor.pipelines.paste_back as paste_back
import ganeditor.pipelines.portrait as portrait
import ganeditor.qt.main_window as main_window
import ganeditor.qt.models_panel as models_panel
import ganeditor.qt.portrait_panel as portrait_panel
import ganeditor.qt.scene_panel as scene_panel
import ganeditor.qt.window_files as window_files
from gui_support import align_portrait, fit_portrait, open_and_wait, tiny_window, wait_window_idle


def test_slow_calls_never_run_on_the_gui_thread(qtbot, tmp_path, tiny_models, monkeypatch):
    calls: dict[str, list[threading.Thread]] = {}

    def spy(module, name):
        original = getattr(module, name)

        def wrapper(*a, **k):
            calls.setdefault(name, []).append(threading.current_thread())
            return original(*a, **k)

        monkeypatch.setattr(module, name, wrapper)

    for module, name in ((window_files, "read_image"), (window_files, "export_image"), (window_files, "save_project"),
                         (window_files, "load_project"), (models_panel, "catalog"), (models_panel, "describe"),
                         (main_window, "warm_up"), (scene_panel, "load_checkpoint"), (catalog, "load_checkpoint"),
                         (portrait, "load_checkpoint"), (portrait, "align_face"), (portrait, "invert"),
                         (paste_back, "paste_back"), (portrait_panel, "paste_target")):  # fmt: skip
        spy(module, name)
    win = tiny_window(qtbot, tmp_path, monkeypatch, tiny_models)
    align_portrait(qtbot, win, tmp_path)
    p = fit_portrait(qtbot, win, "w", 5)
    p.sliders.row(next(iter(p.sliders.specs))).slider.setValue(100)
    qtbot.waitUntil(lambda: p.frame is not None and p.frame.full, timeout=20000)
    p.apply()
    win.scene.run_upscale()
    wait_window_idle(qtbot, win)
    win.export(str(tmp_path / "out.png"))
    win.save_project(str(tmp_path / "w.ganedit"), wait=True)
    win.models.tree.setCurrentItem(win.models.tree.topLevelItem(0).child(0))
    win.models.describe_button.click()
    win.add_model(str(tiny_models / "tiny-sr.safetensors"))
    wait_window_idle(qtbot, win)
    win.answers = [window_files.Answer.Discard]
    open_and_wait(qtbot, win, tmp_path / "w.ganedit")
    main = threading.main_thread()
    expected = {"read_image", "export_image", "save_project", "load_project", "catalog", "describe", "warm_up",
                "load_checkpoint", "align_face", "invert", "paste_back", "paste_target"}  # fmt: skip
    assert expected <= set(calls), expected - set(calls)
    on_gui = {name for name, threads in calls.items() if any(t is main for t in threads)}
    assert on_gui == set(), f"called on the GUI thread: {on_gui}"
    assert win.errors == []
    win.discard_and_close()
