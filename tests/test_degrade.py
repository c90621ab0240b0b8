"""The degradation model: seeded, in range, the right sizes, masks where the damage is, each effect doing
what it says."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganeditor.pipelines.train.degrade import (OLD_PHOTO, REAL_ESRGAN, _conv, anisotropic_kernel, degrade_batch,
                                               film_grain, halftone, luma, old_photo, random_kernel, realistic_down,
                                               second_order, sinc_kernel, tone)
from ganeditor.pipelines.train.degrade_damage import draw_damage


def _photo(h=96, w=128, seed=0):
    """A smooth natural-ish test image with edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.4 * np.sin(6 * xx + 1), 0.5 + 0.3 * np.cos(5 * yy), 0.4 + 0.3 * xx * yy], -1)
    img[h // 3 : h // 2, w // 4 : w // 2] = [0.9, 0.2, 0.1]
    img += rng.normal(0, 0.01, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def test_kernels_sum_to_one_and_have_their_shape():
    k = anisotropic_kernel(21, 3.0, 1.0, 0.0)
    assert k.shape == (21, 21) and abs(k.sum() - 1) < 1e-5
    assert k[10, 10 + 5] > k[10 + 5, 10]  # wider along x (sigma_x 3 > sigma_y 1)
    rot = anisotropic_kernel(21, 3.0, 1.0, math.pi / 2)
    assert np.allclose(rot, k.T, atol=1e-6)
    plateau = anisotropic_kernel(21, 2.0, 2.0, 0.0, 2.0, "plateau")
    gen = anisotropic_kernel(21, 2.0, 2.0, 0.0, 4.0, "generalized")
    assert abs(plateau.sum() - 1) < 1e-5 and abs(gen.sum() - 1) < 1e-5
    s = sinc_kernel(21, math.pi / 3)
    assert abs(s.sum() - 1) < 1e-5 and np.allclose(s, s.T, atol=1e-7) and s.min() < 0  # a sinc rings
    for seed in range(20):
        k = random_kernel(np.random.default_rng(seed), REAL_ESRGAN)
        assert k.shape == (21, 21) and abs(k.sum() - 1) < 1e-4


def test_fft_convolution_equals_conv2d():
    x = torch.rand(1, 3, 33, 40)
    k = anisotropic_kernel(7, 1.0, 2.5, 0.7)
    k[0, 1] += 0.3  # not symmetric: catches a missing flip
    ref = F.conv2d(F.pad(x, (3, 3, 3, 3), mode="reflect"), torch.from_numpy(k)[None, None].repeat(3, 1, 1, 1), groups=3)
    assert torch.allclose(ref, _conv(x, k), atol=1e-5)


def test_second_order_is_seeded_sized_and_8bit():
    hr = torch.from_numpy(_photo().astype(np.float32) / 255).permute(2, 0, 1)[None]
    a = second_order(hr, 4, np.random.default_rng(3))
    b = second_order(hr, 4, np.random.default_rng(3))
    c = second_order(hr, 4, np.random.default_rng(4))
    assert a.shape == (1, 3, 24, 32) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal((a * 255).round(), a * 255) and 0 <= a.min() and a.max() <= 1
    tiny = realistic_down(_photo(24, 24), 4, np.random.default_rng(0))  # smaller than the 21x21 kernels
    assert tiny.shape == (6, 6, 3) and tiny.dtype == np.uint8
    batch = degrade_batch(hr.repeat(2, 1, 1, 1), 2, "realistic", [np.random.default_rng(i) for i in range(2)])
    assert batch.shape == (2, 3, 48, 64)


def test_old_photo_is_seeded_and_returns_target_and_mask():
    clean = _photo()
    a = old_photo(clean, np.random.default_rng(7))
    b = old_photo(clean, np.random.default_rng(7))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.effects == b.effects
    assert a.image.shape == clean.shape and a.target.shape == clean.shape and a.mask.shape == clean.shape[:2]
    assert a.image.min() >= 0 and a.image.max() <= 1
    grays = [old_photo(clean, np.random.default_rng(s)) for s in range(12)]
    for d in grays:
        if d.gray:  # b/w prints restore to the clean luma
            assert np.allclose(d.target[..., 0], d.target[..., 2]) and "b/w" in d.effects
            assert np.allclose(d.target[..., 0], luma(clean.astype(np.float32) / 255), atol=1e-6)
        else:
            assert np.allclose(d.target, clean.astype(np.float32) / 255)
    assert any(d.gray for d in grays) and not all(d.gray for d in grays)


def test_damage_mask_marks_the_changed_pixels():
    x = np.full((80, 100, 3), 0.5, np.float32)
    out, mask = draw_damage(x, np.random.default_rng(1), 4, 30)
    change = np.abs(out - x).max(-1)
    assert mask.mean() > 0.005
    assert (change[mask] > 0.02).mean() > 0.99  # masked pixels are visibly marked (opacity > 0.2)
    strong = change > 0.1  # marks differ from mid-gray by >= 0.25: opacity above 0.4 at least
    assert (strong & ~mask).sum() / strong.sum() < 0.05  # and clearly visible marks are in the mask
    none, empty = draw_damage(x, np.random.default_rng(1), 0, 0)
    assert not empty.any() and np.array_equal(none, x)
    _, big = draw_damage(x, np.random.default_rng(1), 4, 30, size=2.5)
    assert big.sum() > mask.sum()  # larger scans: wider marks


def test_no_damage_config_draws_none():
    for s in range(5):
        d = old_photo(_photo(), np.random.default_rng(s), OLD_PHOTO.without_damage())
        assert not d.mask.any()


def test_effects():
    x = _photo().astype(np.float32) / 255
    g = film_grain(x, np.random.default_rng(0), 0.05, 0.8)
    assert 0.005 < np.abs(g - x).mean() < 0.05
    h = halftone(x, 4.0, math.pi / 4)
    assert np.allclose(h[..., 0], h[..., 1]) and abs(luma(h).mean() - luma(x).mean()) < 0.08
    sepia = tone(np.repeat(luma(x)[..., None], 3, 2), np.array([0.2, 0.1, 0.05]), np.array([1.0, 0.9, 0.75]), 1.0)
    assert (sepia[..., 0] >= sepia[..., 2]).all()  # warm


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_level_scales_the_damage(level):
    clean = _photo(128, 128)
    errs = []
    for s in range(6):
        d = old_photo(clean, np.random.default_rng(s), OLD_PHOTO.__class__(level=level, gray_prob=0.0))
        errs.append(np.abs(d.image - d.target).mean())
    if level == 0.0:
        assert max(errs) < 1e-6
    else:
        assert np.mean(errs) > 0.01
