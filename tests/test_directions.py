"""Directions: SeFa, GANSpace, InterFaceGAN fitting/projection, the library format and imports."""

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ganeditor.archs import build
from ganeditor.core.errors import GanEditorError
from ganeditor.formats import load_checkpoint
from ganeditor.pipelines.direction_io import (
    generator_fingerprint, import_factor, import_ganspace, import_interfacegan, load_directions, load_library,
    save_library,
)  # fmt: skip
from ganeditor.pipelines.directions import (
    Direction, DirectionLibrary, fit_boundary, fit_boundary_from_scores, ganspace, label_with_scorer, pca_w,
    project_out, sefa, style_affines,
)  # fmt: skip
from ganeditor.pipelines.edit import apply_edits

DATA = Path(__file__).parent / "data" / "invert"


@pytest.fixture(scope="module")
def G():
    return load_checkpoint(DATA / "g16.safetensors").primary


def test_style_affines_follow_ws_order(G):
    names = [n for n, _ in style_affines(G)]
    assert names == ["b4.conv1", "b8.conv0", "b8.conv1", "b16.conv0", "b16.conv1", "b16.torgb"]


def test_sefa_orthonormal_sorted_deterministic_and_fast(G):
    t = time.perf_counter()
    dirs = sefa(G, None, num=16, sigma_samples=0)
    assert time.perf_counter() - t < 1.0
    V = np.stack([d.vector for d in dirs]).astype(np.float64)
    np.testing.assert_allclose(V @ V.T, np.eye(16), atol=1e-5)
    eig = [d.info["eigenvalue"] for d in dirs]
    assert eig == sorted(eig, reverse=True)
    again = sefa(G, None, num=16, sigma_samples=0)
    assert all(np.array_equal(a.vector, b.vector) for a, b in zip(dirs, again))
    assert all(v[np.abs(v).argmax()] > 0 for v in V)  # sign convention
    # the definition: eigenvectors of W Wᵀ, W = concatenated affine weights (transposed), unit columns
    W = np.concatenate([w.double().numpy().T for _, w in style_affines(G)], axis=1)
    W /= np.linalg.norm(W, axis=0, keepdims=True)
    M = W @ W.T
    for d in dirs[:4]:
        v = d.vector.astype(np.float64)
        np.testing.assert_allclose(M @ v, d.info["eigenvalue"] * v, atol=1e-4)


def test_sefa_layer_subset_sets_range_and_sigma(G):
    dirs = sefa(G, [1, 2], num=3, sigma_samples=500)
    assert all((d.start, d.end, d.unit) == (1, 3, "sigma") and d.sigma > 0 for d in dirs)
    with pytest.raises(GanEditorError, match="within"):
        sefa(G, [0, 9])


def test_ganspace_pca_and_sigma_units(G):
    dirs = ganspace(G, num=4, layers=(0, 3), samples=3000)
    V = np.stack([d.vector for d in dirs]).astype(np.float64)
    np.testing.assert_allclose(V @ V.T, np.eye(4), atol=1e-5)
    sig = [d.sigma for d in dirs]
    assert sig == sorted(sig, reverse=True)
    p = pca_w(G, 4, 3000)
    w = np.random.RandomState(0).randn(3000, 16)
    assert p.mean.shape == (16,) and w.shape[1] == 16
    ws = torch.zeros(1, 6, 16)
    out = apply_edits(ws, [(dirs[0], 2.0)])
    np.testing.assert_allclose(out[0, 0].numpy(), 2.0 * dirs[0].sigma * dirs[0].vector, rtol=1e-5)
    assert torch.all(out[0, 3:] == 0)


def test_interfacegan_fit_recovers_planted_direction():
    rng = np.random.default_rng(0)
    n_true = rng.normal(size=16)
    n_true /= np.linalg.norm(n_true)
    x = rng.normal(size=(800, 16)) * rng.uniform(0.5, 2, 16) + 3
    y = (x @ n_true + 0.1 * rng.normal(size=800) > (3 * n_true.sum())).astype(float)
    normal, acc = fit_boundary(x, y)
    assert abs(np.linalg.norm(normal) - 1) < 1e-9 and acc > 0.95
    assert normal @ n_true > 0.95
    normal2, _ = fit_boundary_from_scores(x, x @ n_true, ratio=0.3)
    assert normal2 @ n_true > 0.95
    with pytest.raises(GanEditorError, match="both classes"):
        fit_boundary(x, np.ones(800))


def test_labels_from_a_scoring_function(G):
    w, s = label_with_scorer(G, lambda img: img[:, 0].mean(dim=(1, 2)).numpy(), num=64, batch=32)
    assert w.shape == (64, 16) and s.shape == (64,)
    normal, acc = fit_boundary_from_scores(w, s, ratio=0.25)
    assert normal.shape == (16,) and acc >= 0.9


def test_conditional_projection_is_orthogonal():
    rng = np.random.default_rng(1)
    p, c1, c2 = rng.normal(size=(3, 16))
    c1 /= np.linalg.norm(c1)
    out = project_out(p, c1, c2)
    assert abs(out @ c1) < 1e-10 and abs(out @ c2) < 1e-10 and abs(np.linalg.norm(out) - 1) < 1e-12
    single = project_out(p, c1)
    expected = p - (p @ c1) * c1  # InterFaceGAN project_boundary with one condition
    np.testing.assert_allclose(single, expected / np.linalg.norm(expected), atol=1e-12)
    with pytest.raises(GanEditorError, match="span"):
        project_out(c1, c1)


def test_library_round_trip(G, tmp_path):
    dirs = sefa(G, [0, 1, 2], num=2, sigma_samples=200) + [Direction("smile", np.ones(16), 2, 5, "absolute", 1.0, "user", {"acc": 0.9})]
    lib = DirectionLibrary(dirs, 16, 6, generator_fingerprint(G), {"method": "test", "network": "g16"})
    save_library(lib, tmp_path / "lib.safetensors")
    back = load_directions(tmp_path / "lib.safetensors")
    assert back.names() == ["sefa_0", "sefa_1", "smile"] and back.generator == lib.generator
    assert back.provenance == {"method": "test", "network": "g16"} and (back.w_dim, back.num_ws) == (16, 6)
    for a, b in zip(dirs, back.directions):
        assert np.array_equal(a.vector, b.vector)
        assert (a.start, a.end, a.unit, a.sigma, a.source) == (b.start, b.end, b.unit, b.sigma, b.source)
    assert back["smile"].info == {"acc": 0.9}
    # readable without running code: plain safetensors header
    from safetensors import safe_open

    with safe_open(str(tmp_path / "lib.safetensors"), "np") as f:
        assert f.get_tensor("vectors").shape == (3, 16) and "smile" in f.metadata()["library"]
    other = build("stylegan2-generator", **G.init_kwargs)
    with pytest.raises(GanEditorError, match="another generator"):
        back.check_generator(generator_fingerprint(other), 16)
    with pytest.raises(GanEditorError, match="w_dim 16"):
        back.check_generator(lib.generator, 512)


def test_imports_of_upstream_layouts(tmp_path):
    rng = np.random.default_rng(2)
    b = rng.normal(size=(1, 16))
    b /= np.linalg.norm(b)
    np.save(tmp_path / "stylegan_ffhq_smile_w_boundary.npy", b)  # InterFaceGAN: float64 [1, dim]
    lib = load_directions(tmp_path / "stylegan_ffhq_smile_w_boundary.npy")
    assert lib.names() == ["stylegan_ffhq_smile_w"] and lib.directions[0].unit == "absolute"
    np.testing.assert_allclose(lib.directions[0].vector, b[0].astype(np.float32))
    comp = np.linalg.qr(rng.normal(size=(16, 5)))[0].T[:, None, :].astype(np.float32)  # [K, 1, dim]
    std = np.array([3, 2, 1.5, 1, 0.5], np.float32)
    np.savez_compressed(tmp_path / "gs.npz", act_comp=comp, act_mean=np.zeros((1, 16)), act_stdev=std,
                        lat_comp=comp, lat_mean=np.zeros((1, 16)), lat_stdev=std, var_ratio=std / std.sum(),
                        random_stdevs=std)  # fmt: skip
    gs = load_directions(tmp_path / "gs.npz")
    assert gs.names()[:2] == ["ganspace_0", "ganspace_1"] and gs.directions[1].sigma == 2
    ws = torch.zeros(1, 6, 16)
    ranged = import_ganspace(tmp_path / "gs.npz", layers=(1, 4))
    out = apply_edits(ws, [(ranged.directions[0], 1.5)])  # GANSpace: w[l] += lat_comp·lat_stdev·σ on [start, end)
    np.testing.assert_allclose(out[0, 2].numpy(), comp[0, 0] * 3 * 1.5, rtol=1e-5)
    assert torch.all(out[0, 0] == 0) and torch.all(out[0, 4:] == 0)
    eig = torch.linalg.qr(torch.randn(16, 16))[0]
    torch.save({"ckpt": "550000.pt", "eigvec": eig}, tmp_path / "factor.pt")  # rosinality closed_form_factorization
    fac = load_directions(tmp_path / "factor.pt")
    assert len(fac.directions) == 16 and fac.provenance["ckpt"] == "550000.pt"
    np.testing.assert_allclose(fac.directions[3].vector, eig[:, 3].numpy(), atol=1e-7)
    assert import_interfacegan(tmp_path / "stylegan_ffhq_smile_w_boundary.npy", "smile").names() == ["smile"]
    assert len(import_factor(tmp_path / "factor.pt", num=4).directions) == 4
    np.save(tmp_path / "bad.npy", np.zeros((2, 16)))
    with pytest.raises(GanEditorError, match=r"expected \[1, w_dim\]"):
        load_directions(tmp_path / "bad.npy")
    (tmp_path / "junk.bin").write_bytes(b"hello world junk")
    with pytest.raises(GanEditorError, match="unrecognised"):
        load_directions(tmp_path / "junk.bin")
    with pytest.raises(GanEditorError, match="not a GAN Editor direction library"):
        from safetensors.numpy import save_file

        save_file({"x": np.zeros(2)}, str(tmp_path / "plain.safetensors"))
        load_library(tmp_path / "plain.safetensors")
