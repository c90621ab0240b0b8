"""Editing: relative/distance edits, mixing, truncation, the preview cache, latent files, the edit CLI."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ganeditor.archs import build
from ganeditor.cli import main
from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio import read_image
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.formats.native import save_checkpoint
from ganeditor.pipelines.directions import Direction
from ganeditor.pipelines.edit import PreviewRenderer, apply_edits, load_latent, save_latent, style_mix, truncate
from ganeditor.pipelines.generate import to_uint8

DATA = Path(__file__).parent / "data" / "invert"


@pytest.fixture(scope="module")
def G():
    return load_checkpoint(DATA / "g16.safetensors").primary


@pytest.fixture(scope="module")
def ws(G):
    with torch.no_grad():
        return G.mapping(torch.from_numpy(np.random.RandomState(3).randn(1, 16)), None)


def test_relative_edits_touch_only_their_layers(ws):
    d = Direction("a", np.eye(16)[0], 2, 4, "sigma", 0.5)
    out = apply_edits(ws, [(d, 3.0)])
    assert torch.equal(out[:, :2], ws[:, :2]) and torch.equal(out[:, 4:], ws[:, 4:])
    np.testing.assert_allclose((out - ws)[0, 2:4, 0].numpy(), [1.5, 1.5], rtol=1e-6)
    assert torch.equal(apply_edits(ws, [(d, 0.0)]), ws)  # α = 0 leaves the latent unchanged
    e = Direction("b", np.eye(16)[1], 0, None, "absolute")
    both = apply_edits(ws, [(d, 1.0), (e, -2.0)])
    np.testing.assert_allclose((both - ws)[0, :, 1].numpy(), [-2.0] * 6, rtol=1e-6)


def test_distance_mode_sets_the_signed_distance(ws):
    n = np.random.default_rng(0).normal(size=16)
    n /= np.linalg.norm(n)
    out = apply_edits(ws, [(Direction("b", n, 0, None, "absolute"), 2.5)], mode="distance")
    np.testing.assert_allclose(out[0].numpy() @ n, [2.5] * 6, rtol=1e-5)
    rest = (out - ws)[0].numpy()
    np.testing.assert_allclose(rest - np.outer(rest @ n, n), 0, atol=1e-5)  # moved along n only


def test_mixing_and_truncation(G, ws):
    other = torch.zeros_like(ws)
    mixed = style_mix(ws, other, [4, 5])
    assert torch.equal(mixed[:, :4], ws[:, :4]) and torch.all(mixed[:, 4:] == 0)
    z = torch.from_numpy(np.random.RandomState(3).randn(1, 16))
    with torch.no_grad():
        ref = G.mapping(z, None, truncation_psi=0.7)
    np.testing.assert_allclose(truncate(ws, G.mapping.w_avg, 0.7).numpy(), ref.numpy(), atol=1e-6)
    ref_cut = G.mapping(z, None, truncation_psi=0.7, truncation_cutoff=2)
    np.testing.assert_allclose(truncate(ws, G.mapping.w_avg, 0.7, cutoff=2).numpy(), ref_cut.numpy(), atol=1e-6)


def test_preview_cache_equals_full_render_and_skips_blocks(G, ws):
    pr = PreviewRenderer(G)
    with torch.no_grad():
        full = lambda w: G.synthesis(w, noise_mode="const")  # noqa: E731
        assert torch.allclose(pr.render(ws), full(ws), atol=1e-6) and pr.last_blocks_run == 3
        assert pr.render(ws.clone()) is not None and pr.last_blocks_run == 0
        hi = apply_edits(ws, [(Direction("hi", np.ones(16), 5, 6, "absolute"), 0.7)])  # last torgb only
        assert torch.allclose(pr.render(hi), full(hi), atol=1e-6) and pr.last_blocks_run == 1
        mid = apply_edits(hi, [(Direction("mid", np.ones(16), 2, 3, "absolute"), -0.4)])  # b8.conv1
        assert torch.allclose(pr.render(mid), full(mid), atol=1e-6) and pr.last_blocks_run == 2
        lo = apply_edits(mid, [(Direction("lo", np.ones(16), 0, 1, "absolute"), 0.3)])
        assert torch.allclose(pr.render(lo), full(lo), atol=1e-6) and pr.last_blocks_run == 3
        assert torch.allclose(pr.render(hi), full(hi), atol=1e-6)  # back again: still exact
    off = PreviewRenderer(G, cache=False)
    assert torch.allclose(off.render(hi), full(hi), atol=1e-6) and off.last_blocks_run == -1
    z = torch.from_numpy(np.random.RandomState(3).randn(1, 16))
    assert pr.mapping(z) is pr.mapping(z.clone())  # mapping output cached


def test_preview_draft_is_a_block_image_and_the_exact_render_finishes_it(G, ws):
    pr, uncached, syn = PreviewRenderer(G, draft_detail=False), PreviewRenderer(G, cache=False), G.synthesis
    assert pr.draft_resolution(5) == 8 and pr.draft_resolution(8 + 1e-9) == 8 and pr.draft_resolution(9) is None
    with torch.no_grad():
        mid = apply_edits(ws, [(Direction("mid", np.ones(16), 2, 3, "absolute"), -0.4)])  # b8.conv1
        block8 = syn.run_blocks(syn.split_ws(mid), stop=2, noise_mode="const")[1]  # the 8 px block's accumulated RGB
        draft = pr.render(mid, max_res=8)
        assert draft.shape == (1, 3, 8, 8) and torch.equal(draft, block8) and pr.last_blocks_run == 2
        assert torch.equal(pr.render(mid, max_res=6), block8) and pr.last_blocks_run == 0  # cached
        exact = pr.render(mid)  # the release after a drag: only the 16 px block runs
        assert torch.equal(exact, uncached.render(mid)) and pr.last_blocks_run == 1
        assert torch.equal(pr.render(mid, max_res=8), block8) and pr.last_blocks_run == 0
        assert torch.equal(pr.render(mid, max_res=16), exact) and pr.last_blocks_run == 0  # max_res R: the exact render
        lo = apply_edits(mid, [(Direction("lo", np.ones(16), 0, 1, "absolute"), 0.3)])  # b4: drafts re-run from block 0
        block4 = syn.run_blocks(syn.split_ws(lo), stop=1, noise_mode="const")[1]
        assert torch.equal(pr.render(lo, max_res=4), block4) and pr.last_blocks_run == 1
        assert pr.render(lo, max_res=8).shape[-1] == 8 and pr.last_blocks_run == 1
        assert torch.equal(pr.render(lo), uncached.render(lo)) and pr.last_blocks_run == 1
    assert torch.equal(block8, syn.run_blocks(syn.split_ws(mid), stop=2, noise_mode="const")[1])  # cache never mutated


def test_bf16_drafts_have_their_own_cache_and_never_reach_an_exact_render(G, ws):
    pr, uncached, syn = PreviewRenderer(G, draft_detail=False), PreviewRenderer(G, cache=False), G.synthesis
    with torch.no_grad():
        pr.render(ws)  # the exact render after an inversion
        mid = apply_edits(ws, [(Direction("mid", np.ones(16), 2, 3, "absolute"), -0.4)])
        draft = pr.render(mid, max_res=8, fast=True)
        assert draft.dtype == torch.float32 and draft.shape == (1, 3, 8, 8) and pr.last_blocks_run == 2
        with torch.autocast("cpu", dtype=torch.bfloat16):
            block8 = syn.run_blocks(syn.split_ws(mid), stop=2, noise_mode="const")[1].float()
        assert torch.equal(draft, block8)  # the bf16 blocks, not the exact ones
        exact8 = syn.run_blocks(syn.split_ws(mid), stop=2, noise_mode="const")[1]
        assert 0 < (draft - exact8).abs().max() < 0.1  # close to the exact draft, not it
        assert torch.equal(pr.render(mid, max_res=8, fast=True), draft) and pr.last_blocks_run == 0  # its own cache
        exact = pr.render(mid)  # release: the exact cache still holds the inversion's blocks, from block 2 on
        assert torch.equal(exact, uncached.render(mid)) and pr.last_blocks_run == 2


def test_preview_draft_adds_the_detail_it_misses_in_the_last_exact_render(G, ws):
    pr, uncached, syn = PreviewRenderer(G), PreviewRenderer(G, cache=False), G.synthesis
    block8 = lambda w: syn.run_blocks(syn.split_ws(w), stop=2, noise_mode="const")[1]  # noqa: E731
    mid = apply_edits(ws, [(Direction("mid", np.ones(16), 2, 3, "absolute"), -0.4)])
    with torch.no_grad():
        assert torch.equal(pr.render(ws, max_res=8), block8(ws))  # no exact render yet: the plain block image
        exact = pr.render(ws)
        down = torch.nn.functional.avg_pool2d(exact, 2)
        assert torch.allclose(pr.render(ws, max_res=8), down, atol=1e-6)  # unmoved: the exact render, downscaled
        draft = pr.render(mid, max_res=8)
        assert torch.allclose(draft, block8(mid) + down - block8(ws), atol=1e-6) and pr.last_blocks_run == 1
        assert torch.equal(pr.render(mid), uncached.render(mid)) and pr.last_blocks_run == 1  # exact renders stay exact
        pr.invalidate()
        assert torch.equal(pr.render(mid, max_res=8), block8(mid))


def test_preview_of_a_non_skip_generator_renders_whole(G, ws):
    kw = dict(G.init_kwargs)
    kw["synthesis_kwargs"] = {**kw.get("synthesis_kwargs", {}), "architecture": "orig"}
    torch.manual_seed(0)
    orig = build("stylegan2-generator", **kw).eval()
    pr = PreviewRenderer(orig)
    assert pr.draft_resolution(5) is None
    with torch.no_grad():
        out = pr.render(ws, max_res=8)
        assert torch.equal(out, orig.synthesis(ws, noise_mode="const")) and pr.last_blocks_run == 3


def test_latent_files(G, ws, tmp_path):
    np.save(tmp_path / "w.npy", ws[:, 0].numpy())
    w, noise = load_latent(tmp_path / "w.npy", G)
    assert w.shape == (1, 6, 16) and noise is None and torch.equal(w[:, 3], ws[:, 0])
    save_latent(tmp_path / "p.npz", ws, {"b4.conv1.noise_const": torch.ones(4, 4)})
    w2, noise2 = load_latent(tmp_path / "p.npz", G)
    assert torch.equal(w2, ws) and torch.equal(noise2["b4.conv1.noise_const"], torch.ones(4, 4))
    np.savez(tmp_path / "bad.npz", w=np.zeros((1, 6, 8)))
    with pytest.raises(GanEditorError, match=r"latent has shape \[1, 6, 8\]; this generator needs \[1, 16\]"):
        load_latent(tmp_path / "bad.npz", G)
    np.savez(tmp_path / "nokey.npz", x=np.zeros((1, 16)))
    with pytest.raises(GanEditorError, match="no key 'w'"):
        load_latent(tmp_path / "nokey.npz", G)


def test_edit_cli_end_to_end(G, ws, tmp_path, capsys):
    net = DATA / "g16.safetensors"
    np.savez(tmp_path / "projected_w.npz", w=ws.numpy())
    lib = tmp_path / "lib.safetensors"
    assert main(["directions", "--network", str(net), "--method", "sefa", "--num", "3", "--layers", "0-2",
                 "--out", str(lib), "--device", "cpu"]) == 0  # fmt: skip
    out = tmp_path / "edit.png"
    rc = main(["edit", "--network", str(net), "--latent", str(tmp_path / "projected_w.npz"),
               "--direction", f"{lib}:sefa_1=2.5", "--out", str(out), "--device", "cpu"])  # fmt: skip
    assert rc == 0
    from ganeditor.pipelines.direction_io import load_directions

    d = load_directions(lib)["sefa_1"]
    with torch.no_grad():
        ref = to_uint8(G.synthesis(apply_edits(ws, [(d, 2.5)]), noise_mode="const"))[0]
    assert np.array_equal(read_image(out).pixels, ref)
    # an InterFaceGAN boundary file; a library of another generator; a wrong latent
    np.save(tmp_path / "attr_boundary.npy", np.eye(16)[None, 2])
    assert main(["edit", "--network", str(net), "--latent", str(tmp_path / "projected_w.npz"),
                 "--direction", f"{tmp_path / 'attr_boundary.npy'}=1", "--out", str(out)]) == 0  # fmt: skip
    other = build("stylegan2-generator", **G.init_kwargs)
    save_checkpoint(Checkpoint("t", "t", {"G_ema": other}), tmp_path / "other.safetensors")
    capsys.readouterr()
    rc = main(["edit", "--network", str(tmp_path / "other.safetensors"), "--latent", str(tmp_path / "projected_w.npz"),
               "--direction", f"{lib}:sefa_1=1", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "made for another generator" in err and len(err.strip().splitlines()) == 1
    np.save(tmp_path / "w8.npy", np.zeros((1, 8)))
    rc = main(["edit", "--network", str(net), "--latent", str(tmp_path / "w8.npy"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "latent has shape [1, 8]" in err and len(err.strip().splitlines()) == 1


def test_edit_cli_finds_the_library_made_for_the_network(G, ws, tmp_path, capsys):
    net = tmp_path / "mine.safetensors"
    shutil.copy(DATA / "g16.safetensors", net)
    np.savez(tmp_path / "w.npz", w=ws.numpy())
    assert main(["directions", "--network", str(net), "--method", "sefa", "--num", "2",
                 "--out", str(tmp_path / "mine-directions.safetensors")]) == 0  # fmt: skip
    out = tmp_path / "e.png"
    assert main(["edit", "--network", str(net), "--latent", str(tmp_path / "w.npz"), "--direction", "sefa_1=2",
                 "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["info", str(tmp_path / "mine-directions.safetensors")]) == 0
    listing = capsys.readouterr().out
    assert "direction library" in listing and "generator" in listing and re.search(r"\nsefa_1 +sefa +0-\d+ ", listing)
    from ganeditor.pipelines.direction_io import load_directions

    d = load_directions(tmp_path / "mine-directions.safetensors")["sefa_1"]
    with torch.no_grad():
        ref = to_uint8(G.synthesis(apply_edits(ws, [(d, 2.0)]), noise_mode="const"))[0]
    assert np.array_equal(read_image(out).pixels, ref)
    capsys.readouterr()
    rc = main(["edit", "--network", str(DATA / "g16.safetensors"), "--latent", str(tmp_path / "w.npz"),
               "--direction", "sefa_1=2", "--out", str(out)])  # no library beside this one
    err = capsys.readouterr().err
    assert rc == 2 and "no such file or model name" in err and len(err.strip().splitlines()) == 1
