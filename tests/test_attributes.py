"""Attribute regressor (arch, scoring, training, metrics), edit-quality measurement, direction library command."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganeditor.archs import build
from ganeditor.pipelines.catalog import describe
from ganeditor.core.errors import Cancelled, CheckpointError
from ganeditor.core.progress import CancelToken, Task
from ganeditor.formats import load_checkpoint
from ganeditor.formats.base import Checkpoint
from ganeditor.formats.native import save_checkpoint
from ganeditor.pipelines.attributes import (
    attribute_deltas, attribute_metrics, build_portrait_regressor, load_regressor, population_sigmas,
    regressor_loss, save_regressor, score_images, train_regressor, wrap_delta,
)  # fmt: skip
from ganeditor.pipelines.direction_io import load_library
from ganeditor.pipelines.directions import Direction
from ganeditor.pipelines.edit_quality import attribute_boundaries, direction_effects, entanglement_rows, sample_ws
from ganeditor.worlds.portraits import ATTRIBUTE_NAMES

ROOT = Path(__file__).resolve().parent.parent


def _load_script(rel: str):
    spec = importlib.util.spec_from_file_location(Path(rel).stem, ROOT / rel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def reg():
    torch.manual_seed(0)
    return build_portrait_regressor(sigmas=[0.5] * len(ATTRIBUTE_NAMES)).eval()


@pytest.fixture(scope="module")
def tiny_G():
    return _load_script("bench/bench_edits.py").tiny_generator(0)


def test_population_sigmas_match_attribute_marginals():
    s = dict(zip(ATTRIBUTE_NAMES, population_sigmas(n=4000)))
    assert abs(s["glasses"] - math.sqrt(0.3 * 0.7)) < 0.02  # Bernoulli(0.3)
    assert abs(s["bg_hue"] - 1 / math.sqrt(12)) < 0.01  # uniform hue: circular σ of U(0, 1)
    assert abs(s["light_dir"] - 2 / math.sqrt(12)) < 0.02  # uniform on [-1, 1]
    assert all(0 < v < 1 for v in s.values())


def test_arch_builds_saves_loads_and_describes(reg, tmp_path):
    x = torch.rand(3, 3, 100, 100) * 2 - 1
    raw = reg(x)
    assert raw.shape == (3, len(ATTRIBUTE_NAMES) + 1)  # bg_hue takes (cos, sin)
    path = tmp_path / "r.safetensors"
    save_regressor(reg, path, {"note": "test"})
    back = load_regressor(path)
    assert back.attributes == list(ATTRIBUTE_NAMES) and back.sigmas == reg.sigmas
    assert back.meta == {"note": "test"}
    with torch.no_grad():  # fp16 storage: scores within fp16 rounding
        np.testing.assert_allclose(back.scores(back(x)).numpy(), reg.scores(reg(x)).numpy(), atol=2e-2)
    assert path.stat().st_size < 5e6
    info = describe(path).networks["regressor"]
    assert info["input_size"] == 64 and "smile" in info["attributes"]
    other = build("stylegan2-generator", z_dim=4, c_dim=0, w_dim=4, img_resolution=4, img_channels=3,
                  mapping_kwargs={"num_layers": 1}, synthesis_kwargs={"channel_base": 16, "channel_max": 4})  # fmt: skip
    save_checkpoint(Checkpoint("ganeditor", "x", {"G_ema": other}), tmp_path / "g.safetensors")
    with pytest.raises(CheckpointError, match="not an attribute regressor"):
        load_regressor(tmp_path / "g.safetensors")


def test_scores_units_and_input_kinds(reg):
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (5, 48, 48, 3), dtype=np.uint8)
    s = score_images(reg, u8)
    assert list(s) == list(ATTRIBUTE_NAMES) and all(v.shape == (5,) for v in s.values())
    f = torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1
    s2 = score_images(reg, f)
    for a in ATTRIBUTE_NAMES:
        np.testing.assert_allclose(s[a], s2[a], atol=1e-5)
    assert score_images(reg, u8[0])["smile"].shape == (1,)
    assert np.all((s["glasses"] >= 0) & (s["glasses"] <= 1)) and np.all((s["bg_hue"] >= 0) & (s["bg_hue"] < 1))
    # the plain head maps linearly onto each range: raw 0 -> centre, raw 1 -> hi
    raw = torch.zeros(1, reg.num_outputs)
    raw[0, reg.slices[ATTRIBUTE_NAMES.index("smile")]] = 1.0
    raw[0, reg.slices[ATTRIBUTE_NAMES.index("bg_hue")]] = torch.tensor([0.0, 1.0])
    sc = dict(zip(ATTRIBUTE_NAMES, reg.scores(raw)[0].tolist()))
    assert sc["smile"] == pytest.approx(1.0) and sc["age"] == pytest.approx(0.5)
    assert sc["bg_hue"] == pytest.approx(0.25) and sc["glasses"] == pytest.approx(0.5)


def test_circular_deltas_and_metrics(reg):
    assert wrap_delta(np.array([0.9]), 1.0)[0] == pytest.approx(-0.1)
    a = np.zeros((1, len(ATTRIBUTE_NAMES)))
    b = a.copy()
    i = ATTRIBUTE_NAMES.index("bg_hue")
    a[0, i], b[0, i] = 0.95, 0.05
    assert attribute_deltas(reg, b, a)[0, i] == pytest.approx(0.1)
    truth = np.random.default_rng(1).random((200, len(ATTRIBUTE_NAMES)))
    truth[:, ATTRIBUTE_NAMES.index("glasses")] = (truth[:, ATTRIBUTE_NAMES.index("glasses")] > 0.5)
    m = attribute_metrics(reg, truth.copy(), truth)
    assert all(v["r2"] == pytest.approx(1.0) and v["mae"] == 0 for v in m.values())
    assert m["glasses"]["accuracy"] == 1.0 and m["glasses_darkness"]["n"] == int(truth[:, 4].sum())
    pred = truth.copy()
    pred[:, i] = (truth[:, i] + 0.5) % 1.0  # opposite hue: circular error 0.5 everywhere
    assert attribute_metrics(reg, pred, truth)["bg_hue"]["mae"] == pytest.approx(0.5)


def test_loss_masks_conditional_attribute(reg):
    raw = torch.zeros(4, reg.num_outputs)
    truth = torch.zeros(4, len(ATTRIBUTE_NAMES))
    j = ATTRIBUTE_NAMES.index("glasses_darkness")
    truth[:, j] = 1.0  # no glasses anywhere: darkness is unobservable, so it costs nothing
    _, per = regressor_loss(reg, raw, truth)
    assert per[j] == 0
    truth[0, ATTRIBUTE_NAMES.index("glasses")] = 1.0
    _, per = regressor_loss(reg, raw, truth)
    assert per[j] == pytest.approx((0.5 / 0.5) ** 2)  # pred 0.5 vs 1.0, in σ = 0.5


def test_tiny_training_learns_planted_signal():
    """A two-attribute regressor learns brightness (plain) and a red square (binary) from 60 steps."""
    torch.manual_seed(0)
    net = build("attribute-regressor", attributes=["bright", "square"], ranges=[[0, 1], [0, 1]], binary=["square"],
                sigmas=[0.29, 0.5], input_size=32, channels=[8, 8], head_dim=16)  # fmt: skip
    rng = np.random.default_rng(0)

    def batch(n):
        y = np.stack([rng.random(n), rng.random(n) < 0.5], 1).astype(np.float32)
        x = np.repeat(y[:, :1, None, None] * 2 - 1, 3, 1).repeat(32, 2).repeat(32, 3)
        x[y[:, 1] > 0, 0, 8:20, 8:20] = 1.0
        x[y[:, 1] > 0, 1:, 8:20, 8:20] = -1.0
        return torch.from_numpy(x + rng.normal(0, 0.05, x.shape).astype(np.float32)), torch.from_numpy(y)

    opt = torch.optim.Adam(net.parameters(), 5e-3)
    net.train()
    for _ in range(60):
        x, y = batch(32)
        loss, _ = regressor_loss(net, net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    x, y = batch(200)
    m = attribute_metrics(net, np.stack(list(score_images(net, x).values()), 1), y.numpy().astype(np.float64))
    assert m["bright"]["r2"] > 0.9 and m["square"]["accuracy"] > 0.95


def test_train_regressor_reports_and_cancels(reg):
    net = build_portrait_regressor(channels=(8, 8, 8, 8), sigmas=[0.5] * len(ATTRIBUTE_NAMES))
    events = []
    hist = train_regressor(Task(events.append, min_interval=0), net, steps=3, batch=4, sizes=(32,), fast=False)
    assert [e.done for e in events] == [1, 2, 3] and hist[-1]["step"] == 3 and np.isfinite(hist[-1]["loss"])
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        train_regressor(Task(cancel=token), net, steps=3, batch=4, sizes=(32,), fast=False)


def test_direction_effects_are_signed_half_differences(tiny_G, reg):
    ws = sample_ws(tiny_G, 4, seed=0)
    d = Direction("r", np.random.default_rng(0).normal(size=16), 0, None, "absolute", 1.0, "user")
    e = direction_effects(tiny_G, reg, ws, [d], 2.0)
    flipped = Direction("r", -d.vector, 0, None, "absolute", 1.0, "user")
    np.testing.assert_allclose(direction_effects(tiny_G, reg, ws, [flipped], 2.0), -e, atol=1e-9)
    zero = direction_effects(tiny_G, reg, ws, [d], 0.0)[0]
    glasses_off = np.isnan(zero[ATTRIBUTE_NAMES.index("glasses_darkness")])  # undefined without glasses
    assert np.all(zero[np.isfinite(zero)] == 0) and np.isfinite(zero).sum() >= len(ATTRIBUTE_NAMES) - glasses_off


def test_entanglement_table_shape_on_random_generator(tiny_G, reg):
    rng = np.random.default_rng(1)
    sup = [Direction(a, rng.normal(size=16), 0, None, "sigma", 1.0, "interfacegan", {"attribute": a})
           for a in ("smile", "age")]  # fmt: skip
    sources = {"interfacegan": sup, "sefa": [Direction(f"s{i}", rng.normal(size=16), 2, 4, source="sefa") for i in range(3)]}
    rows = entanglement_rows(tiny_G, reg, sources, n=4, batch=8)
    assert len(rows) == 2 + len(ATTRIBUTE_NAMES)  # supervised: only fitted attributes; unsupervised: all
    assert {r["direction"] for r in rows if r["source"] == "interfacegan"} == {"smile", "age"}
    bench = _load_script("bench/bench_edits.py")
    md = bench.summary_markdown(rows)
    assert md.count("\n") == 3 and "| sefa | 15 |" in md


def test_boundaries_recover_planted_attribute(reg):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(600, 16))
    scores = rng.random((600, len(ATTRIBUTE_NAMES)))
    true = rng.normal(size=16)
    true /= np.linalg.norm(true)
    scores[:, 0] = w @ true  # smile follows a planted direction
    dirs = attribute_boundaries(reg, w, scores, ratio=0.2)
    smile = next(d for d in dirs if d.name == "smile")
    assert smile.source == "interfacegan" and abs(float(smile.vector @ true)) > 0.95 and smile.info["accuracy"] > 0.95
    cond = next(d for d in dirs if d.name == "smile_cond")
    others = [d.vector for d in dirs if d.source == "interfacegan" and d.info["attribute"] != "smile"]
    assert max(abs(float(cond.vector @ o)) for o in others) < 1e-6
    assert {"bg_hue_cos", "bg_hue_sin"} <= {d.name for d in dirs}


def test_make_direction_library_on_tiny_generator(tiny_G, reg, tmp_path):
    gpath, rpath, out = tmp_path / "g.safetensors", tmp_path / "r.safetensors", tmp_path / "lib.safetensors"
    save_checkpoint(Checkpoint("ganeditor", "x", {"G_ema": tiny_G}), gpath)
    save_regressor(reg, rpath)
    mod = _load_script("models/make_direction_library.py")
    assert mod.main(["--generator", str(gpath), "--regressor", str(rpath), "--out", str(out), "--samples", "200",
                     "--sefa", "3", "--sefa-per-part", "2", "--ganspace", "4", "--threads", "1", "--check-n", "2"]) == 0  # fmt: skip
    lib = load_library(out)
    G = load_checkpoint(gpath).primary
    assert lib.w_dim == 16 and lib.num_ws == G.num_ws
    sources = {d.source for d in lib.directions}
    assert {"sefa", "ganspace"} <= sources and len([d for d in lib.directions if d.source == "ganspace"]) == 4
    assert {d.name for d in lib.directions if d.source == "sefa"} >= {"sefa_0", "sefa_coarse_0", "sefa_fine_1"}
    assert lib.provenance["generator_sha256"] and lib.provenance["regressor"] == "r.safetensors"
    card = out.with_suffix(".md").read_text()
    import hashlib

    assert hashlib.sha256(out.read_bytes()).hexdigest() in card and "`sefa_coarse_0` | sefa |" in card
    assert sum(line.startswith("| `") for line in card.splitlines()) == len(lib.directions)
    assert all(d.info["check"]["n"] == 2 for d in lib.directions) and "slider check" in card
