"""Paste-back of an edited aligned crop into the full photo: identity outside, no seam, round trip."""

import numpy as np
import pytest
import torch

from ganeditor.core.errors import GanEditorError
from ganeditor.pipelines.align import align_face
from ganeditor.pipelines.paste_back import build_mask, paste_back
from ganeditor.worlds.portraits import alignment_affine, render_portrait

S = 128


@pytest.fixture(scope="module")
def photo():
    img, _, lm = render_portrait(5, 320, affine=alignment_affine(18.0, 0.55, 0.04, -0.03), return_landmarks=True)
    return img, lm.astype(np.float64) - 0.5


@pytest.fixture(scope="module")
def aligned(photo):
    return align_face(photo[0], photo[1], S)


def photo_mask(al, photo_shape, mask="ellipse", feather=0.08):
    """The paste mask sampled at photo pixels (nearest), for choosing test regions."""
    S = al.output_size
    m = build_mask(al, torch.zeros(1, 3, S, S), mask, feather=feather).numpy()
    h, w = photo_shape[:2]
    yy, xx = np.mgrid[:h, :w]
    p = np.rint(al.to_aligned(np.stack([xx.ravel(), yy.ravel()], 1))).astype(int).reshape(h, w, 2)
    ok = (p >= 0).all(2) & (p < S).all(2)
    out = np.zeros((h, w), np.float32)
    out[ok] = m[p[ok][:, 1], p[ok][:, 0]]
    return out


def edited_crop(al):
    """A visible edit: a colour cast over the whole crop (like a GAN's drift) plus dark 'glasses'."""
    e = al.image.astype(np.float32) * np.array([1.15, 0.9, 0.8]) + np.array([12.0, 0.0, -6.0])
    lm = al.to_aligned(al.landmarks)
    yy, xx = np.mgrid[:S, :S]
    for ex, ey in lm[:2]:
        e[((xx - ex) / 11) ** 2 + ((yy - ey) / 7) ** 2 < 1] *= 0.3
    return np.clip(np.rint(e), 0, 255).astype(np.uint8)


def grad_mag(img):
    g = img.astype(np.float64).mean(2)
    gy, gx = np.gradient(g)
    return np.hypot(gx, gy)


def test_round_trip_unchanged_crop(photo):
    img, lm = photo
    aligned = align_face(img, lm, 256)  # finer than the face in the photo, so the round trip loses little
    out = paste_back(img, aligned.image, aligned)
    big = align_face(img, lm, 1024)  # the antialiased path: 5.8 crop px per photo px
    assert np.abs(paste_back(img, big.image, big).astype(int) - img.astype(int))[photo_mask(big, img.shape) > 0.99].mean() < 0.4
    assert out.shape == img.shape and out.dtype == img.dtype
    m = photo_mask(aligned, img.shape)
    face = m > 0.99
    assert face.sum() > 5000
    err = np.abs(out.astype(int) - img.astype(int))[face]
    assert err.mean() < 0.7 and np.percentile(err, 99) <= 6  # resampling twice blurs edges a little
    assert np.array_equal(out[m == 0], img[m == 0])


def test_outside_bit_identical_and_no_seam(photo, aligned):
    img, _ = photo
    edit = edited_crop(aligned)
    out = paste_back(img, edit, aligned, mask="ellipse")
    changed = np.abs(out.astype(int) - img.astype(int)).max(2) > 0
    m = photo_mask(aligned, img.shape)
    assert changed.sum() > 3000
    assert not changed[m == 0].any()  # far from the face: bit-identical
    eyes = aligned.to_photo(aligned.to_aligned(aligned.landmarks)[:2]).round().astype(int)
    assert all(out[y, x].mean() < 0.6 * img[y, x].mean() for x, y in eyes)  # the edit is there
    # Seam: gradients along the mask's transition band are no stronger than the photo's own there.
    band = (m > 0.05) & (m < 0.95)
    seam = grad_mag(out)[band].mean() / grad_mag(img)[band].mean()
    raw = paste_back(img, edit, aligned, mask="ellipse", color_match=False)
    seam_raw = grad_mag(raw)[band].mean() / grad_mag(img)[band].mean()
    assert seam < 1.15 and seam_raw < 1.15  # the feathered mask spreads the step...
    # ...but without colour matching the colour cast still shows as a step across the band.
    inner = (m > 0.5) & (m < 0.95)
    step = np.abs((out[inner].astype(float) - img[inner]).mean(0)).max()
    step_raw = np.abs((raw[inner].astype(float) - img[inner]).mean(0)).max()
    assert step < 3 < 8 < step_raw
    # Colour matching removed the global cast where the face was not edited (cheeks).
    cheek = (m > 0.99) & ~(np.abs(out.astype(int) - img.astype(int)).max(2) > 40)
    assert np.abs(out[cheek].astype(float).mean(0) - img[cheek].astype(float).mean(0)).max() < 4


def test_uint16_photo_and_other_crop_size(photo, aligned):
    img, lm = photo
    img16 = img.astype(np.uint16) * 257 + 100
    al16 = align_face(img16, lm, S)
    edit = np.ascontiguousarray(edited_crop(aligned)[::2, ::2])  # an 8-bit crop at half the resolution
    out = paste_back(img16, edit, al16)
    assert out.dtype == np.uint16 and out.shape == img16.shape
    m = photo_mask(al16, img.shape, "auto", feather=0.14)  # wider: the 64 px mask is coarser
    assert np.array_equal(out[m == 0], img16[m == 0])
    assert (out[m > 0.99] % 257 != 100).any()  # full 16-bit values, not 8-bit steps


def test_diff_mask_and_gray(photo, aligned):
    img, lm = photo
    same = paste_back(img, aligned.image, aligned, mask="diff", reconstruction=aligned.image)
    assert np.array_equal(same, img)  # nothing differs -> nothing pasted
    edit = aligned.image.copy()
    edit[20:40, 20:40] = 255  # an edit outside the face ellipse (e.g. hair)
    out = paste_back(img, edit, aligned, mask="auto", reconstruction=aligned.image, color_match=False)
    corner = aligned.to_photo(np.array([[30.0, 30.0]]))[0].round().astype(int)
    assert out[corner[1], corner[0]].min() > 240
    gray = img[:, :, :1].copy()
    alg = align_face(gray, lm, S)
    assert paste_back(gray[:, :, 0], alg.image[:, :, 0], alg).shape == gray.shape[:2]


def test_errors(photo, aligned):
    img, _ = photo
    with pytest.raises(GanEditorError, match="aligned on a 320x320"):
        paste_back(img[:200], aligned.image, aligned)
    with pytest.raises(GanEditorError, match="square"):
        paste_back(img, aligned.image[:, :100], aligned)
    with pytest.raises(GanEditorError, match="needs the unedited reconstruction"):
        paste_back(img, aligned.image, aligned, mask="diff")
    with pytest.raises(GanEditorError, match="unknown mask"):
        paste_back(img, aligned.image, aligned, mask="hull")


def test_detail_blend_adds_only_the_edit_and_keeps_the_photo_detail(photo):
    img, lm = photo
    small = align_face(img, lm, 32)  # a generator much smaller than the face in the photo
    recon = small.image  # what the inversion reproduced (here: exactly the aligned crop)
    assert np.array_equal(paste_back(img, recon, small, reconstruction=recon, blend="detail"), img)
    edit = recon.copy()
    edit[18:23, 12:20] = 0  # a local edit (a dark mouth)
    detail = paste_back(img, edit, small, reconstruction=recon, blend="detail")
    replace = paste_back(img, edit, small, reconstruction=recon, blend="replace")
    assert np.array_equal(paste_back(img, edit, small, reconstruction=recon), detail)  # auto: face >> 32 px
    mouth = small.to_photo(np.array([[16.0, 20.5]]))[0].round().astype(int)
    assert detail[mouth[1], mouth[0]].max() < 60  # the edit is there
    far = photo_mask(small, img.shape) > 0.99
    far &= np.hypot(*(np.mgrid[: img.shape[0], : img.shape[1]][::-1] - mouth[:, None, None])) > 40
    assert np.abs(detail.astype(int) - img.astype(int))[far].max() <= 1  # untouched by the edit: the photo itself
    assert grad_mag(detail)[far].mean() > 1.3 * grad_mag(replace)[far].mean()  # replace pastes the 32 px blur
    big = align_face(img, lm, 256)  # a crop finer than the face: auto replaces
    assert np.array_equal(paste_back(img, big.image, big, reconstruction=big.image),
                          paste_back(img, big.image, big, reconstruction=big.image, blend="replace"))
    with pytest.raises(GanEditorError, match="blend 'detail' needs the unedited reconstruction"):
        paste_back(img, edit, small, blend="detail")
    with pytest.raises(GanEditorError, match="unknown blend"):
        paste_back(img, edit, small, reconstruction=recon, blend="median")


def test_edit_cli_paste_back_hook(photo, aligned, tmp_path):
    import argparse

    from ganeditor.cli.edit import paste_back_hook
    from ganeditor.core.imageio import write_image

    img, lm = photo
    write_image(tmp_path / "photo.png", img)
    edit = edited_crop(aligned)
    args = argparse.Namespace(paste_back=str(tmp_path / "photo.png"), align=lm, device="cpu")
    out = paste_back_hook(args, edit)
    assert np.array_equal(out, paste_back(img, edit, aligned))
    args.paste_back = None
    assert paste_back_hook(args, edit) is edit
