"""The Restore panel on tiny random models: stages, find damage, paint/erase the mask, restore with
undo, cancel; the model library places a spandrel-only .pth under its kind."""

import numpy as np
import pytest
import torch

from ganeditor.archs import build
from ganeditor.formats import Checkpoint
from ganeditor.formats.native import save_checkpoint
from gui_support import make_window, open_and_wait, wait_idle, write_photo, write_tiny_models

SMALL = dict(channels=(4, 8, 8), blocks=(1, 1, 1))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    d = write_tiny_models(tmp_path_factory.mktemp("models"))
    torch.manual_seed(0)
    for name, arch in (("restore-scratches", "scratch-detector"), ("restore-inpaint", "inpaint-unet"),
                       ("restore-global", "restore-unet"), ("restore-colorize", "colorize-unet")):
        save_checkpoint(Checkpoint("ganeditor", "t", {"net": build(arch, **SMALL)}, {}), d / f"{name}.safetensors")
    spandrel = pytest.importorskip("spandrel")
    from spandrel.architectures import DnCNN

    torch.save(DnCNN.DnCNN(in_nc=3, out_nc=3, nc=8, nb=4).state_dict(), d / "user-dncnn.pth")
    assert spandrel
    return d


@pytest.fixture
def window(qtbot, tmp_path, models_dir, monkeypatch):
    monkeypatch.setenv("GANEDITOR_MODELS", str(models_dir))
    win = make_window(qtbot, tmp_path, monkeypatch)
    yield win
    win.discard_and_close()


def restore_small_photo(qtbot, win, tmp_path):
    """Open a 64x48 photo and restore it with the default stages (faces off); wait for the result."""
    open_and_wait(qtbot, win, write_photo(tmp_path / "old.png", (64, 48)))
    win.restore.rows["faces"].toggle.setChecked(False)
    win.restore.run()
    qtbot.waitUntil(lambda: win.doc.undo_stack.count() == 1, timeout=60000)
    wait_idle(qtbot, win.device_lane)


def test_library_identifies_spandrel_files(window, qtbot):
    qtbot.waitUntil(lambda: any(e.name == "user-dncnn" and e.kind != "unknown" for e in window.models.entries),
                    timeout=60000)
    kinds = {e.name: (e.kind, e.arch) for e in window.models.entries}
    assert kinds["user-dncnn"] == ("restorer", "spandrel:DnCNN")
    assert kinds["restore-global"] == ("restorer", "restore-unet")
    assert "user-dncnn" not in [window.restore.rows["faces"].model.itemText(i)
                                for i in range(window.restore.rows["faces"].model.count())]


def test_find_damage_paint_erase_restore_undo(window, qtbot, tmp_path):
    win, p = window, window.restore
    assert not p.run_button.isEnabled() and "Open a photo" in p.run_hint.text()
    open_and_wait(qtbot, win, write_photo(tmp_path / "old.png", (64, 48)))
    assert p.run_button.isEnabled() and [s for s, r in p.rows.items() if r.toggle.isChecked()] == \
        ["scratches", "global"]
    p.detect()
    qtbot.waitUntil(lambda: p.mask is not None, timeout=60000)
    wait_idle(qtbot, win.device_lane)
    assert p.mask.shape == (48, 64) and win.view.mask_image is not None
    p.set_mask(np.zeros((48, 64), bool))
    p.add_mode.setChecked(True)
    assert win.view.brush == float(p.brush_size.value())
    p.brush_size.setValue(2)
    win.view.mask_stroke.emit(5.0, 10.0, 40.0, 10.0)  # a horizontal stroke, as a drag would send
    assert p.mask[10, 5:39].all() and p.mask[8:12, 20].all() and not p.mask[30].any()  # edges at integers
    p.erase_mode.setChecked(True)
    win.view.mask_stroke.emit(20.0, 10.0, 20.0, 10.0)
    assert not p.mask[10, 20] and p.mask[10, 5]
    painted = p.mask.copy()
    p.rows["faces"].toggle.setChecked(False)
    assert not p.rows["faces"].strength.isEnabled() and not p.fidelity.isEnabled()
    p.rows["global"].strength.setValue(40)
    assert p.rows["global"].value.text() == "40 %"
    plan = p._plan(("scratches", "global"), "Restore")
    assert plan.options.strength_of("global") == 0.4 and plan.options.stages == ("scratches", "global")
    assert np.array_equal(plan.options.mask, painted)  # the painted mask replaces detection
    before = win.doc.current.copy()
    p.run()
    qtbot.waitUntil(lambda: win.doc.undo_stack.count() == 1, timeout=60000)
    wait_idle(qtbot, win.device_lane)
    assert not win.errors
    assert win.doc.current.shape == before.shape and not np.array_equal(win.doc.current, before)
    assert p.mask is None and win.view.mask_image is None  # filled: the mask is done with
    win.split_act.trigger()  # before/after (Ctrl+B): the original is what the split shows on the left
    assert win.view.compare == "split" and np.array_equal(win.doc.original, before)
    assert win.view.before is win.view._pixmap(win.doc.original) and win.view.after is not win.view.before
    win.doc.undo_stack.undo()
    assert np.array_equal(win.doc.current, before)
    assert painted.sum() > 0


def test_cancel_keeps_the_image(window, qtbot, tmp_path):
    win, p = window, window.restore
    open_and_wait(qtbot, win, write_photo(tmp_path / "big.png", (640, 480)))
    before = win.doc.current.copy()
    p.rows["faces"].toggle.setChecked(False)
    p.run()
    qtbot.waitUntil(lambda: win.device_lane.busy("restore"), timeout=10000)
    win.device_lane.cancel("restore")
    wait_idle(qtbot, win.device_lane)
    assert np.array_equal(win.doc.current, before) and win.doc.undo_stack.count() == 0


def test_the_window_restore_maps_large_allocations(window, qtbot, tmp_path, monkeypatch):
    """The window's restore job goes through the tilers' memory setting (the same as ``ganeditor
    restore``: freed tile activations go back to the system), here with the size limit lowered."""
    import ganeditor.core.tiling_common as tc

    calls = []
    monkeypatch.setattr(tc, "MAPPED_FROM", 64 * 48)
    monkeypatch.setattr(tc, "_mallopt", lambda param, value: calls.append((param, value)) or True)
    win = window
    restore_small_photo(qtbot, win, tmp_path)
    assert not win.errors and tc._mapping_runs == [0]
    assert calls == [(tc.M_MMAP_THRESHOLD, tc.MMAP_THRESHOLD), *tc.GLIBC_GROWN]  # once for the whole job


def test_closing_during_a_restoration_asks_then_stops_and_joins_every_thread(window, qtbot, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    A = QMessageBox.StandardButton
    win, p = window, window.restore
    open_and_wait(qtbot, win, write_photo(tmp_path / "big.png", (1600, 1200)))
    p.rows["faces"].toggle.setChecked(False)
    p.run()
    qtbot.waitUntil(lambda: win.device_lane.current is not None and win.device_lane.current.key == "restore"
                    and win.device_lane.current.state == "running", timeout=10000)  # fmt: skip
    threads = [ln._thread for ln in (win.device_lane, win.train_lane, win.io_lane) if ln._thread is not None]
    win.answers = [A.Yes, A.Discard]
    win.close()
    assert "Still running: Restoring" in win.questions[0][1]
    assert not win.isVisible() and threads and all(t.isFinished() for t in threads)
    assert win.doc.undo_stack.count() == 0  # nothing partial was applied


def test_restore_is_saved_in_projects_and_exported_with_provenance(window, qtbot, tmp_path, monkeypatch, models_dir):
    from ganeditor.pipelines.project import load_project

    win = window
    restore_small_photo(qtbot, win, tmp_path)
    restored = win.doc.current.copy()
    out = tmp_path / "work.ganedit"
    assert win.save_project(str(out), wait=True)
    ops = load_project(out).operations
    assert [(o["op"], o["stages"]) for o in ops] == [("restore", ["scratches", "global"])]
    assert [s["model"] for s in ops[0]["provenance"]] == ["restore-scratches", "restore-inpaint", "restore-global"]
    other = make_window(qtbot, tmp_path / "second", monkeypatch)
    try:
        open_and_wait(qtbot, other, out)
        assert np.array_equal(other.doc.current, restored) and other.errors == []
        job = other.export(str(tmp_path / "restored.png"))
        qtbot.waitUntil(lambda: job.state == "done", timeout=30000)
        data = (tmp_path / "restored.png").read_bytes()
        assert b"compositeWithTrainedAlgorithmicMedia" in data and b"restore with restore-global (SHA-256" in data
    finally:
        other.discard_and_close()
