"""The Qt-free portrait session: a fit (with the generator tuning of 'Best') saved in a project file
comes back exactly in a fresh session, a latent from another generator is refused, and live previews
of a small face render drafts while the full render stays exact."""

import numpy as np
import pytest
import torch

from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import LoadedImage
from ganeditor.core.progress import null_task
from ganeditor.pipelines import portrait
from ganeditor.pipelines.edit import apply_edits
from ganeditor.pipelines.paste_back import paste_target
from ganeditor.pipelines.portrait import PortraitSession
from ganeditor.pipelines.project import PhotoRef, PortraitState, Project, load_project, save_project
from ganeditor.worlds.portraits import alignment_affine, render_portrait
from gui_support import write_tiny_models


def run(gen):
    """Drain a generator function; its return value."""
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory):
    return write_tiny_models(tmp_path_factory.mktemp("models")) / "tiny-stylegan2.safetensors"


def test_a_tuned_fit_round_trips_through_a_project_file(tmp_path, tiny_generator):
    torch.manual_seed(0)
    s = PortraitSession()
    s.load_generator(tiny_generator, torch.device("cpu"))
    target = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    summary = run(s.invert(target, "pti", 4, 4, null_task()))
    assert summary.latent.pti_delta, "the generator tuning is part of the saved state"
    assert summary.seconds >= sum(st.seconds for st in summary.stages) * 0.99  # the whole run, not its last stage
    name = s.directions[0].name
    edited = s.render({name: 2.0})
    state = PortraitState({"name": "tiny"}, None, {name: 2.0}, {"method": "pti", "steps": 4}, summary.latent)
    photo = LoadedImage(target)
    save_project(tmp_path / "p.ganedit", Project(PhotoRef("", "", (16, 16)), photo, [], state))
    back = load_project(tmp_path / "p.ganedit").portrait
    fresh = PortraitSession()
    fresh.load_generator(tiny_generator, torch.device("cpu"))
    recon = fresh.restore_latent(back.latent)
    assert np.array_equal(recon, summary.image)  # exact: latent, noise and the tuned weights came back
    assert np.array_equal(fresh.render(back.sliders), edited)


def test_a_latent_of_another_generator_is_refused(tmp_path, tiny_generator):
    s = PortraitSession()
    s.load_generator(tiny_generator, torch.device("cpu"))
    ws = np.zeros((1, s.G.num_ws, s.G.w_dim), np.float32)
    s.use_latent(ws)
    state = s.latent_state()
    other = type(state)(state.ws, state.noise, state.pti_delta, "0" * 16)
    with pytest.raises(GanEditorError, match="another generator"):
        s.restore_latent(other)


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32-drafts", "bf16-drafts"])
def test_live_previews_of_a_small_face_are_drafts_and_the_full_render_is_exact(tiny_generator, bf16, monkeypatch):
    monkeypatch.setattr(portrait, "cpu_has_bf16", lambda: bf16)  # drafts in bf16 where the CPU has it natively
    s = PortraitSession()
    s.load_generator(tiny_generator, torch.device("cpu"))
    s.use_latent(np.random.default_rng(1).normal(size=(1, s.G.num_ws, s.G.w_dim)).astype(np.float32))
    photo, _, lm = render_portrait(5, 320, affine=alignment_affine(18.0, 0.55, 0.04, -0.03), return_landmarks=True)
    aligned = s.align(photo, lm.astype(np.float64) - 0.5)
    recon, name = s.render({}), s.directions[0].name
    big = paste_target(photo, aligned, recon)  # the face is ~100 px in the preview copy: larger than the 16 px generator
    side = big.preview_face_side()
    small = paste_target(photo, aligned, recon, preview_side=int(320 * 7 / side))  # the face ~7 px there
    assert side > 16 and 4 < small.preview_face_side() <= 8
    first = s.renderer.first_changed_block(apply_edits(s.ws, [(s.directions[0], 2.0)]))  # vs the exact render
    live = s.edit_frame({name: 2.0}, small, full=False)
    assert (s.renderer._cache[True][0] is not None) == bf16  # the draft ran in bf16 exactly when that pays
    assert live.face.shape == (8, 8, 3) and live.photo.shape == small.small.shape and not live.full
    final = s.edit_frame({name: 2.0}, small, full=True)
    assert final.face.shape == (16, 16, 3) and final.photo.shape == photo.shape
    # fp32 drafts: the release runs only the block the draft skipped (16 px); bf16 drafts are never reused
    # by it: it runs every block from the first one the edit changed, as without a draft
    assert s.renderer.last_blocks_run == (len(s.renderer._ranges) - first if bf16 else 1)
    s.renderer.invalidate()
    assert np.array_equal(s.render({name: 2.0}), final.face)  # bit for bit an uncached render
    assert s.edit_frame({name: 1.0}, big, full=False).face.shape == (16, 16, 3)  # a face as large as the generator
    generated = paste_target(recon, None, None)  # a generated face: the edit is the whole picture
    assert s.edit_frame({name: 1.0}, generated, full=False).face.shape == (16, 16, 3)


def test_an_edit_counts_as_applied_only_when_the_last_operation_pasted_exactly_these_values():
    pasted = {"op": portrait.PASTE_BACK_OP, "directions": {"glasses": 2.6}}
    assert portrait.unapplied_edit({"glasses": 2.6, "age": 0.0}, []) == {"glasses": 2.6}
    assert portrait.unapplied_edit({"glasses": 2.6, "age": 0.0}, [pasted]) == {}
    assert portrait.unapplied_edit({"glasses": 0.0}, []) == {}  # every slider at 0: nothing to apply
    assert portrait.unapplied_edit({"glasses": 2.6, "age": 1.0}, [pasted]) == {"glasses": 2.6, "age": 1.0}
    assert portrait.unapplied_edit({"glasses": 2.6}, [pasted, {"op": "translate"}]) == {"glasses": 2.6}  # changed since
