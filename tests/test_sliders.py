"""Slider names and the regressor check (pipelines.sliders), teach-a-slider (pipelines.teach)."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ganeditor.core.errors import GanEditorError
from ganeditor.core.model_store import bundled_models_dir
from ganeditor.formats import load_checkpoint
from ganeditor.pipelines.direction_io import load_library
from ganeditor.pipelines.directions import Direction
from ganeditor.pipelines.sliders import GROUPS, NAMES, check_directions, slider_specs, verdict
from ganeditor.pipelines.teach import Marks, latent_of, sample_grid, save_user_direction, slug, teach_direction, user_library_path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
MODEL = SimpleNamespace(attributes=["smile", "age", "glasses", "glasses_darkness", "bg_hue"], circular=["bg_hue"],
                        conditions={"glasses_darkness": "glasses"})  # fmt: skip


@pytest.fixture(scope="module")
def tiny_G():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_edits", ROOT / "bench" / "bench_edits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.tiny_generator(0)


@pytest.fixture(scope="module")
def reg():
    from ganeditor.pipelines.attributes import build_portrait_regressor
    from ganeditor.worlds.portraits import ATTRIBUTE_NAMES

    torch.manual_seed(0)
    return build_portrait_regressor(sigmas=[0.5] * len(ATTRIBUTE_NAMES)).eval()


def named(name, attribute, source="interfacegan"):
    return Direction(name, np.ones(4), 0, None, "sigma", 1.0, source, {"attribute": attribute})


@pytest.mark.parametrize("effects, passed", [
    ([1.2, 0.3, 0, 0, 0], True),  # moves smile 1.2σ, nothing else as much
    ([0.8, 0.1, 0, 0, 0], False),  # under 1σ at full range
    ([1.2, 1.5, 0, 0, 0], False),  # age moves more than smile
    ([-1.5, 0.1, 0, 0, 0], False),  # moves smile the wrong way
])  # fmt: skip
def test_verdict_needs_one_sigma_and_no_bigger_side_effect(effects, passed):
    v = verdict(MODEL, named("smile", "smile"), np.array(effects), 3.0, 8)
    assert v["passed"] is passed and v["target"] == "smile" and v["range"] == 3.0 and v["n"] == 8


def test_verdict_special_attributes():
    # glasses on: the lens tint of a face that had none is undefined, so it is not a side effect
    assert verdict(MODEL, named("glasses", "glasses"), np.array([0, 0, 1.1, 2.0, 0]), 3, 8)["passed"]
    # a hue direction's sign depends on where the hue starts: its size counts
    hue = verdict(MODEL, named("bg_hue_sin", "bg_hue"), np.array([0, 0.2, 0, 0, -1.3]), 3, 8)
    assert hue["passed"] and hue["target_sigma"] == 1.3
    # unnamed directions only record what they move
    v = verdict(MODEL, Direction("sefa_0", np.ones(4), source="sefa"), np.array([0.5, 0, 0, np.nan, 0]), 3, 8)
    assert v["target"] is None and "passed" not in v and "glasses_darkness" not in v["effects"]


def test_slider_specs_names_only_verified_directions():
    def checked(name, attribute, passed, t=1.5, o=0.2, source="interfacegan"):
        d = named(name, attribute, source)
        d.info["check"] = {"target": attribute, "passed": passed, "target_sigma": t, "worst": "age", "worst_sigma": o}
        return d

    dirs = [checked("smile", "smile", False, 0.3), checked("smile_cond", "smile", True, source="interfacegan-conditional"),
            checked("age", "age", True, 1.2, 0.1), checked("age_cond", "age", True, 1.1, 0.6),
            Direction("sefa_0", np.ones(4), 2, 5, source="sefa", info={"check": {"effects": {"smile": 0.9, "age": 0.05}}}),
            Direction("freckles", np.ones(4), source="user", info={"label": "Freckles", "labels": 12})]  # fmt: skip
    specs = {s.name: s for s in slider_specs(dirs, num_ws=10)}
    assert (specs["smile_cond"].label, specs["smile_cond"].group, specs["smile_cond"].verified) == ("Smile", "Expression", True)
    assert specs["smile"].group == "Discovered" and "Smile" not in specs["smile"].label  # failed: not under its name
    assert "smile moves 0.3σ" in specs["smile"].tooltip
    assert specs["age"].label == "Age" and specs["age_cond"].group == "Discovered"  # one named slider per attribute
    assert specs["sefa_0"].layers == (2, 4) and "smile 0.9σ" in specs["sefa_0"].tooltip
    assert (specs["freckles"].label, specs["freckles"].group) == ("Freckles", "My sliders")
    assert all(s.group in GROUPS and "\n" not in s.tooltip for s in specs.values())
    assert all(g in GROUPS for _, g, _ in NAMES.values())


def test_check_directions_stores_the_verdicts(tiny_G, reg):
    dirs = [named("smile", "smile"), Direction("s", np.random.default_rng(0).normal(size=16), source="sefa")]
    dirs[0].vector = np.random.default_rng(1).normal(size=16).astype(np.float32)
    out = check_directions(tiny_G, reg, dirs, n=2, batch=4)
    assert [d.info["check"] for d in dirs] == out
    assert out[0]["target"] == "smile" and isinstance(out[0]["passed"], bool) and out[1]["target"] is None
    assert set(out[1]["effects"]) <= set(reg.attributes)


def test_shipped_library_offers_only_checked_names():
    """Whatever library ships: it carries its check, and every slider offered under a name passed it."""
    lib = load_library(MODELS / "portrait-stylegan2-directions.safetensors")
    assert all("check" in d.info for d in lib.directions), "re-run models/make_direction_library.py --check-only"
    specs = slider_specs(lib.directions, lib.num_ws)
    by_name = {d.name: d for d in lib.directions}
    for s in specs:
        if s.group not in ("Discovered", "My sliders"):
            c = by_name[s.name].info["check"]
            assert s.verified and c["passed"] and c["target_sigma"] >= 1.0 and c["worst_sigma"] <= c["target_sigma"]
    labels = [s.label for s in specs if s.verified]
    assert len(labels) == len(set(labels))  # one slider per name


@pytest.mark.slow
def test_shipped_check_is_reproducible():
    """Re-measuring one named direction of the shipped library gives the stored figure."""
    from ganeditor.pipelines.attributes import load_regressor

    lib = load_library(MODELS / "portrait-stylegan2-directions.safetensors")
    d = next(d for d in lib.directions if (d.info.get("check") or {}).get("passed"))
    stored = dict(d.info["check"])
    G = load_checkpoint(MODELS / "portrait-stylegan2.safetensors").primary.eval()
    check_directions(G, load_regressor(MODELS / "portrait-attributes.safetensors"), [d], n=stored["n"])
    assert d.info["check"]["target_sigma"] == pytest.approx(stored["target_sigma"], abs=0.02)


# ----------------------------------------------------------------------------------------- teach


def test_teach_recovers_a_planted_direction(tiny_G):
    rng = np.random.default_rng(0)
    true = rng.normal(size=16)
    true /= np.linalg.norm(true)
    w, _ = sample_grid(tiny_G, range(40))
    s = w @ true
    order = np.argsort(s)
    marks = Marks(more=w[order[-6:]], less=w[order[:6]])
    d = teach_direction(tiny_G, "Big smile!", marks)
    assert d.name == "big_smile" and d.source == "user" and d.unit == "sigma" and d.sigma > 0
    assert float(d.vector @ true) > 0.45  # towards "more" (a random unit vector: |cos| ~ 0.2 in 16 dims)
    assert float(teach_direction(tiny_G, "x", marks, method="fisher").vector @ true) > 0.45
    assert d.info["label"] == "Big smile!" and d.info["labels"] == 12
    other = Direction("other", true, source="interfacegan")
    cond = teach_direction(tiny_G, "x", marks, conditions=[other])
    assert abs(float(cond.vector @ true)) < 1e-5 and cond.info["conditions"] == ["other"]
    with pytest.raises(GanEditorError, match="at least 5 faces 'more' and 5 'less' .now 4 and 6"):
        teach_direction(tiny_G, "x", Marks(w[:4], w[4:10]))
    with pytest.raises(GanEditorError, match="give the new slider a name"):
        slug(" ?! ")
    assert latent_of(torch.ones(1, 3, 16)).shape == (16,)


def test_user_library_lives_beside_the_generator_or_in_the_user_folder(tiny_G, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    gen = tmp_path / "mine.safetensors"
    assert user_library_path(gen) == tmp_path / "mine-my-directions.safetensors"
    shipped = user_library_path(bundled_models_dir() / "portrait-stylegan2.safetensors")
    assert shipped.name == "portrait-stylegan2-my-directions.safetensors" and bundled_models_dir() not in shipped.parents
    w, _ = sample_grid(tiny_G, range(12))
    d = teach_direction(tiny_G, "Freckles", Marks(w[:6], w[6:]))
    path = save_user_direction(tiny_G, gen, d)
    save_user_direction(tiny_G, gen, teach_direction(tiny_G, "Freckles", Marks(w[6:], w[:6])))  # replaces by name
    lib = load_library(path)
    assert [x.name for x in lib.directions] == ["freckles"] and lib.directions[0].source == "user"
    assert np.allclose(lib.directions[0].vector, -d.vector, atol=1e-5)
