"""Procedural worlds: portraits, day/night scenes, synthetic night, datasets, photo manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganeditor.core.errors import GanEditorError
from ganeditor.worlds import photos
from ganeditor.worlds.datasets import PairedSceneDataset, PortraitDataset, PortraitStream, SceneDataset
from ganeditor.worlds.portraits import (ATTRIBUTE_NAMES, ATTRIBUTES, FFHQ_LANDMARKS_512, alignment_affine,
                                        attributes_for_seed, check_attributes, render_from_attributes,
                                        render_portrait, render_portraits, sample_attributes)
from ganeditor.worlds.scenes import SceneParams, paired, render_scene, scene_for_seed
from ganeditor.worlds.synthetic_night import synthetic_night

torch.set_num_threads(1)


def _lum(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _neutral(seed: int, **over: float) -> dict[str, float]:
    a = attributes_for_seed(seed)
    a.update(head_yaw=0.0, glasses=0.0, beard=0.0, mouth_open=0.0, smile=0.0, eye_openness=0.8, hair_length=0.3)
    a.update(over)
    return a


# ---------------------------------------------------------------- portraits
def test_portrait_deterministic_shape_and_attributes():
    img, attrs = render_portrait(11, 64)
    img2, attrs2 = render_portrait(11, 64)
    assert img.dtype == np.uint8 and img.shape == (64, 64, 3)
    assert img.tobytes() == img2.tobytes() and attrs == attrs2
    assert tuple(attrs) == ATTRIBUTE_NAMES
    other, _ = render_portrait(12, 64)
    assert np.abs(other.astype(int) - img).mean() > 5  # different seed, different person


def test_attribute_ranges_and_marginals():
    rng = np.random.default_rng(0)
    samples = [sample_attributes(rng) for _ in range(400)]
    for name, (lo, hi, _) in ATTRIBUTES.items():
        vals = np.array([s[name] for s in samples])
        assert vals.min() >= lo and vals.max() <= hi, name
        assert vals.std() > 0.05, name  # every attribute actually varies
    assert set(np.unique([s["glasses"] for s in samples])) == {0.0, 1.0}
    with pytest.raises(ValueError, match="unknown portrait attributes"):
        check_attributes({"smiel": 1.0})
    assert check_attributes({"smile": 5.0})["smile"] == 1.0


def test_batch_equals_single():
    imgs, attrs, lms = render_portraits([3, 4, 5], 64)
    for k, s in enumerate([3, 4, 5]):
        one, a, lm = render_portrait(s, 64, return_landmarks=True)
        assert a == attrs[k]
        assert np.abs(one.astype(int) - imgs[k]).max() <= 1
        np.testing.assert_allclose(lm, lms[k], atol=1e-4)


def test_landmarks_follow_ffhq_alignment():
    _, _, lms = render_portraits(list(range(20)), 128)
    attrs = [attributes_for_seed(s) for s in range(20)]
    frontal = [i for i, a in enumerate(attrs) if abs(a["head_yaw"]) < 0.2]
    assert frontal
    err = np.abs(lms[frontal] - FFHQ_LANDMARKS_512 / 4).mean()
    assert err < 3.0, err  # pixels at 128 px
    # eye centres sit on dark-ish pixels (iris/pupil) when the eyes are open
    img, lm = render_from_attributes(_neutral(1, eye_openness=1.0), 128, 1, return_landmarks=True)
    for x, y in lm[:2]:
        assert _lum(img[int(y), int(x)]) < _lum(img[int(y) - 12, int(x)])  # darker than the brow/forehead


def _change_box(a: np.ndarray, b: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> float:
    d = np.abs(a.astype(int) - b).sum(-1).astype(float)
    return d[y0:y1, x0:x1].sum() / max(d.sum(), 1e-9)


def test_one_attribute_changes_the_expected_region():
    size = 128
    for seed in (2, 5):
        base = _neutral(seed)
        a = render_from_attributes(base, size, seed)
        g = render_from_attributes({**base, "glasses": 1.0, "glasses_darkness": 0.5}, size, seed)
        assert _change_box(a, g, 48, 72, 20, 108) > 0.9  # glasses: the eye band
        s = render_from_attributes({**base, "smile": 1.0}, size, seed)
        assert _change_box(a, s, 48, 104, 25, 103) > 0.97  # smile: mouth, cheeks, eyes (squint)
        assert _change_box(a, s, 68, 104, 30, 98) > 0.3  # a good share of it at the mouth
        e = render_from_attributes({**base, "eye_openness": 0.0}, size, seed)
        assert _change_box(a, e, 50, 68, 25, 103) > 0.95  # closing the eyes
        h = render_from_attributes({**base, "hair_colour": (base["hair_colour"] + 0.5) % 1.0}, size, seed)
        assert _change_box(h, a, 70, 128, 45, 83) < 0.08  # hair colour leaves mouth/neck alone
        assert np.abs(h.astype(int) - a).sum() > 0
        same = render_from_attributes(base, size, seed)
        assert same.tobytes() == a.tobytes()


def test_yaw_turns_features_and_shows_an_ear():
    base = _neutral(4)
    _, lm0 = render_from_attributes(base, 128, 4, return_landmarks=True)
    _, lmr = render_from_attributes({**base, "head_yaw": 1.0}, 128, 4, return_landmarks=True)
    _, lml = render_from_attributes({**base, "head_yaw": -1.0}, 128, 4, return_landmarks=True)
    assert (lmr[:, 0] > lm0[:, 0] + 3).all() and (lml[:, 0] < lm0[:, 0] - 3).all()
    assert lmr[2, 0] - lm0[2, 0] > lmr[0, 0] - lm0[0, 0]  # the nose stands off the face and moves most
    # foreshortening: the far eye gets closer to the near one
    assert (lmr[1, 0] - lmr[0, 0]) < (lm0[1, 0] - lm0[0, 0]) - 2
    np.testing.assert_allclose(lm0[:, 1], lmr[:, 1], atol=1e-4)


def test_canvas_transform_matches_rotation_and_landmarks():
    seed = 9
    a = attributes_for_seed(seed)
    aligned, lm = render_from_attributes(a, 64, seed, return_landmarks=True)
    ident = render_from_attributes(a, 64, seed, affine=alignment_affine(0, 1.0, 0, 0))
    assert np.abs(ident.astype(int) - aligned).max() <= 1
    rot, lmr = render_from_attributes(a, 64, seed, affine=alignment_affine(90, 1.0, 0, 0), return_landmarks=True)
    assert np.abs(rot.astype(int) - np.rot90(aligned, -1)).mean() < 1.0
    np.testing.assert_allclose(lmr[:, 0], 64 - lm[:, 1], atol=1e-3)
    np.testing.assert_allclose(lmr[:, 1], lm[:, 0], atol=1e-3)
    small, _, lms = render_portrait(seed, 64, affine=alignment_affine(20, 0.5, 0.1, -0.05), return_landmarks=True)
    eyes_mid = lms[:2].mean(0)
    assert 32 < eyes_mid[0] < 50 and 15 < eyes_mid[1] < 35  # the face moved right/up and shrank
    assert np.linalg.norm(lms[1] - lms[0]) == pytest.approx(0.5 * np.linalg.norm(lm[1] - lm[0]), rel=1e-3)


# ---------------------------------------------------------------- scenes
def _block_ncc(a: np.ndarray, b: np.ndarray, k: int = 8) -> float:
    """Mean normalised cross-correlation of log-luminance over k×k blocks (blind to gain and offset)."""
    def blocks(img: np.ndarray) -> np.ndarray:
        lum = np.log1p(_lum(img))
        h, w = (lum.shape[0] // k) * k, (lum.shape[1] // k) * k
        x = lum[:h, :w].reshape(h // k, k, w // k, k).transpose(0, 2, 1, 3).reshape(-1, k * k)
        return x - x.mean(1, keepdims=True)
    ba, bb = blocks(a), blocks(b)
    na, nb = np.sqrt((ba ** 2).sum(1)), np.sqrt((bb ** 2).sum(1))
    ok = (na > 0.05) & (nb > 0.05)
    return float(np.mean((ba * bb).sum(1)[ok] / (na * nb)[ok]))


def test_scenes_day_night_pairs_share_geometry():
    day, night = paired(3, (96, 96))
    day2, night2 = paired(3, (96, 96))
    assert day.tobytes() == day2.tobytes() and night.tobytes() == night2.tobytes()
    assert day.shape == night.shape == (96, 96, 3) and day.dtype == np.uint8
    assert _lum(night).mean() < 0.35 * _lum(day).mean()  # night is dark
    _, other_night = paired(13, (96, 96))
    same, diff = _block_ncc(day, night), _block_ncc(day, other_night)
    assert same > 0.15 and same > diff + 0.1, (same, diff)
    warm = (night[..., 0] > 180) & (night[..., 2] < night[..., 0] - 40)
    assert warm.sum() > 5  # lit windows / lamps


def test_scene_params_round_trip_and_any_size():
    p = scene_for_seed(21)
    q = SceneParams.from_dict(json.loads(json.dumps(p.to_dict())))
    a = render_scene(p, (80, 48), "night")
    assert a.shape == (48, 80, 3)
    assert render_scene(q, (80, 48), "night").tobytes() == a.tobytes()
    with pytest.raises(ValueError, match="time"):
        render_scene(p, (8, 8), "dusk")


# ---------------------------------------------------------------- synthetic night
def _day_photo() -> np.ndarray:
    h, w = 96, 128
    img = np.zeros((h, w, 3), np.uint8)
    t = np.linspace(0, 1, 48)[:, None]
    img[:48] = (np.array([70, 130, 220]) * (1 - t) + np.array([170, 200, 235]) * t)[:, None, :]
    img[48:] = [60, 140, 50]
    img[70:73, 60:63] = 255  # a small bright light
    return img


def test_synthetic_night():
    day = _day_photo()
    night = synthetic_night(day, seed=3)
    assert night.shape == day.shape and night.dtype == np.uint8
    assert night.tobytes() == synthetic_night(day, seed=3).tobytes()
    assert _lum(night).mean() < 0.45 * _lum(day).mean()
    sky, ground = night[:40].astype(float), night[56:].astype(float)
    assert sky.mean() < 0.3 * day[:40].mean()  # the sky went dark
    assert ground[..., 2].mean() > ground[..., 0].mean()  # blue shift on the ground
    assert _lum(night[71, 61]) > 180  # the light stays bright
    with pytest.raises(ValueError):
        synthetic_night(day.astype(np.float32))


# ---------------------------------------------------------------- datasets
def test_portrait_dataset():
    ds = PortraitDataset(6, 32, seed_offset=100)
    x, a = ds[2]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and a.shape == (len(ATTRIBUTE_NAMES),)
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    img, attrs = render_portrait(102, 32)
    assert torch.allclose(x, torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1, atol=1.01 / 127.5)
    assert a[ATTRIBUTE_NAMES.index("age")] == pytest.approx(attrs["age"])
    bx, ba = ds.batch([2, 3])
    assert torch.allclose(bx[0], x, atol=1.01 / 127.5) and torch.equal(ba[0], a)
    loader = torch.utils.data.DataLoader(ds, batch_size=3)
    xb, ab = next(iter(loader))
    assert xb.shape == (3, 3, 32, 32) and ab.shape == (3, len(ATTRIBUTE_NAMES))
    stream = list(PortraitStream(batch=4, size=32, seed_offset=100, n=6))
    assert [b[0].shape[0] for b in stream] == [4, 2]
    assert torch.allclose(stream[0][0][2], x, atol=1.01 / 127.5)
    with pytest.raises(IndexError):
        ds[6]


def test_scene_datasets_are_unpaired_and_deterministic():
    day, night = SceneDataset(50, 32, "day"), SceneDataset(50, 32, "night")
    assert not {day.seed(i) for i in range(50)} & {night.seed(i) for i in range(50)}
    assert torch.equal(day[1], SceneDataset(50, 32, "day")[1])
    assert day[1].shape == (3, 32, 32)
    d, n = PairedSceneDataset(2, (48, 32))[0]
    assert d.shape == n.shape == (3, 32, 48) and n.mean() < d.mean()


# ---------------------------------------------------------------- photos
def test_photo_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("GANEDITOR_CACHE", str(tmp_path))
    assert photos.photos_dir() == tmp_path / "photos"
    with pytest.raises(GanEditorError, match="gather_photos"):
        photos.load_manifest()
    root = tmp_path / "photos"
    root.mkdir()
    files = [{"path": f"files/x/{n}.jpg", "kind": k, "split": photos.split_of(f"x/{n}.jpg")}
             for n, k in [("a", "natural"), ("b", "face"), ("c", "natural"), ("d", "natural"), ("e", "natural")]]
    (root / "manifest.json").write_text(json.dumps({"version": 1, "files": files}))
    got = photos.photo_paths("train", "natural") + photos.photo_paths("heldout", "natural")
    assert sorted(p.name for p in got) == ["a.jpg", "c.jpg", "d.jpg", "e.jpg"]
    assert photos.photo_paths("all", "face") == [root / "files/x/b.jpg"]
    assert photos.split_of("x/a.jpg") == photos.split_of("x/a.jpg")
    splits = [photos.split_of(f"f{i}") for i in range(1000)]
    assert 150 < splits.count("heldout") < 250


def test_countryside_scenes_have_no_lights_at_night_and_leave_street_seeds_unchanged():
    from ganeditor.worlds.scenes import countryside

    seeds = range(40)
    mixed = [scene_for_seed(s, 0.5) for s in seeds]
    rural = [p for p in mixed if not p.buildings]
    assert 8 <= len(rural) <= 32  # about half
    for s, p in zip(seeds, mixed):  # the street scenes are the plain ones of their seeds
        assert not p.buildings or p.to_dict() == scene_for_seed(s).to_dict()
    p = rural[0]
    assert not p.lamps and not p.cars and p.meadows[0]["x0"] < 0 < 1 < p.meadows[0]["x1"] and p.greenery and p.trees
    night = render_scene(p, (96, 96), "night")
    warm = (night[..., 0] > 180) & (night[..., 2] < night[..., 0] - 40)
    assert warm.sum() == 0  # nothing lit: no windows, lamps or cars
    day = render_scene(p, (96, 96), "day")
    assert _lum(night).mean() < 0.35 * _lum(day).mean()
    street = scene_for_seed(3)
    assert countryside(scene_for_seed(3), np.random.default_rng(0)).buildings == [] and street.buildings
