"""Paste-back of an edited aligned crop into the full photo: identity outside, no seam, round trip."""

import numpy as np
import pytest
import torch

from ganeditor.core.errors import GanEditorError
from ganeditor.pipelines.align import align_face
from ganeditor.pipelines.paste_back import build_mask, mask_in_photo, paste_back
from ganeditor.worlds.portraits import alignment_affine, render_portrait

S = 128


@pytest.fixture(scope="module")
def photo():
    img, _, lm = render_portrait(5, 320, affine=alignment_affine(18.0, 0.55, 0.04, -0.03), return_landmarks=True)
    return img, lm.astype(np.float64) - 0.5


@pytest.fixture(scope="module")
def aligned(photo):
    return align_face(photo[0], photo[1], S)


def photo_mask(al, photo, mask="head", feather=0.08, size=None):
    """The paste mask as paste_back applies it at the pixels of ``photo`` (0 = the photo kept bit for bit)."""
    S = size or al.output_size
    return mask_in_photo(al, photo, build_mask(al, torch.zeros(1, 3, S, S), mask, feather=feather))[0]


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
    assert np.abs(paste_back(img, big.image, big).astype(int) - img.astype(int))[photo_mask(big, img, "auto") > 0.99].mean() < 0.4
    assert out.shape == img.shape and out.dtype == img.dtype
    m = photo_mask(aligned, img, "auto")
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
    m = photo_mask(aligned, img, "ellipse")
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
    m = photo_mask(al16, img16, "auto", size=S // 2)
    assert np.array_equal(out[m == 0], img16[m == 0])
    assert (out[m > 0.99] % 257 != 100).any()  # full 16-bit values, not 8-bit steps


def test_diff_mask_and_gray(photo, aligned):
    img, lm = photo
    same = paste_back(img, aligned.image, aligned, mask="diff", reconstruction=aligned.image)
    assert np.array_equal(same, img)  # nothing differs -> nothing pasted
    hair, bg = aligned.image.copy(), aligned.image.copy()
    hair[16:25, 40:49] = 255  # an edit in the hair, outside the face
    bg[50:60, 8:18] = 255  # an edit on the background beside the head (a GAN's drift)
    out = paste_back(img, hair, aligned, reconstruction=aligned.image, blend="detail")  # adds only what the edit changed
    x, y = aligned.to_photo(np.array([[44.0, 20.0]]))[0].round().astype(int)
    assert out[y, x].min() > 200  # photo pixel 60, edit 255
    out = paste_back(img, bg, aligned, reconstruction=aligned.image, blend="detail")
    assert np.abs(out.astype(int) - img.astype(int)).max() <= 2  # the background keeps its colour
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
    far = photo_mask(small, img, "ellipse") > 0.99
    far &= np.hypot(*(np.mgrid[: img.shape[0], : img.shape[1]][::-1] - mouth[:, None, None])) > 40
    assert np.abs(detail.astype(int) - img.astype(int))[far].max() <= 1  # untouched by the edit: the photo itself
    assert grad_mag(detail)[far].mean() > 1.2 * grad_mag(replace)[far].mean()  # replace pastes the 32 px blur
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


# ----------------------------------------------------------------------- seams and spill (issue 13)


@pytest.fixture(scope="module")
def plain():
    """A procedural portrait tilted 18 degrees on a plain background, aligned at 64 px (a small generator)."""
    from ganeditor.worlds.portraits import attributes_for_seed, render_from_attributes

    a = attributes_for_seed(11)
    a.update(head_yaw=0.0, glasses=0.0, bg_brightness=0.8)
    img, lm = render_from_attributes(a, 256, 11, affine=alignment_affine(18.0, 0.62, 0.02, 0.04), return_landmarks=True)
    lm = lm.astype(np.float64) - 0.5
    return img, align_face(img, lm, 64)


def recoloured(al):
    """A strong edit that also recolours the crop's background (as a GAN's hair-colour edit does)."""
    e = al.image.astype(np.float32) * np.array([0.55, 0.7, 1.3]) + np.array([40.0, -20.0, 30.0])
    return np.clip(np.rint(e), 0, 255).astype(np.uint8)


def quad_band(al, shape, width=2.0):
    """Photo pixels within ``width`` px of the aligned quad's edges."""
    h, w = shape[:2]
    yy, xx = np.mgrid[:h, :w]
    p = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float64)
    dist = np.full(len(p), np.inf)
    for a, b in zip(al.quad, np.roll(al.quad, -1, axis=0)):
        t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
        dist = np.minimum(dist, np.hypot(*(p - (a + t[:, None] * (b - a))).T))
    return (dist <= width).reshape(h, w)


@pytest.mark.parametrize("blend", ["replace", "detail"])
def test_no_rectangle_edge_on_a_plain_background(plain, blend):
    img, al = plain
    edit = recoloured(al)
    out = paste_back(img, edit, al, reconstruction=al.image, blend=blend)
    assert np.abs(out.astype(int) - img.astype(int)).max() > 60  # a strong edit...
    band = quad_band(al, img.shape)
    assert band.sum() > 500
    # ...yet along the crop's border the gradient is the photo's own: no rectangle can show.
    assert np.array_equal(out[band], img[band])
    assert grad_mag(out)[band].max() <= grad_mag(img)[band].max()


def test_no_change_outside_the_mask_and_no_spill_onto_the_background(plain):
    from ganeditor.pipelines.paste_mask import BackgroundModel, PasteMask, confine, head_mask, may_change_mask

    img, al = plain
    edit = recoloured(al)
    out = paste_back(img, edit, al, reconstruction=al.image)
    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    m, _ = mask_in_photo(al, img, build_mask(al, to_t(edit), "auto", to_t(al.image)))
    changed = np.abs(out.astype(int) - img.astype(int)).max(2) > 0
    assert changed.sum() > 2000
    assert not changed[m == 0].any()  # outside the mask: the photo, bit for bit
    # The edit recoloured the whole crop (background included), but beyond the head and hair nothing moved.
    zero = torch.zeros(64, 64)
    may, _ = mask_in_photo(al, img, PasteMask(torch.maximum(head_mask(al, 64), may_change_mask(al, 64)) * confine(64), zero))
    assert (may == 0).sum() > 0.5 * img.shape[0] * img.shape[1] and not changed[may == 0].any()
    # Around the head, pixels that look like the photo's background kept their colour too (no halo).
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    xy = torch.from_numpy(al.to_aligned(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(*img.shape[:2], 2))
    bg = BackgroundModel.of(al).likeness(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255, xy).numpy()
    assert not changed[(bg > 0.999) & (photo_mask(al, img, "ellipse") == 0)].any()
    head = photo_mask(al, img, "ellipse") > 0.99
    assert np.abs(out[head].astype(int) - img[head].astype(int)).mean() > 20  # the edit is there


def test_feather_sets_the_width_of_the_soft_edge(aligned):
    S = aligned.output_size
    e = torch.zeros(1, 3, S, S)
    soft = lambda f: int(((build_mask(aligned, e, "head", feather=f).sure > 0.02) & (build_mask(aligned, e, "head", feather=f).sure < 0.98)).sum())  # noqa: E731
    assert soft(0.04) < soft(0.08) < soft(0.16)
    with pytest.raises(GanEditorError, match="feather must be between"):
        build_mask(aligned, e, "head", feather=0.9)


def test_background_gate_is_soft_across_smooth_background_and_sharp_at_edges():
    from ganeditor.pipelines.paste_mask import BackgroundModel, _colour_space

    grey = _colour_space(torch.full((1, 3), 0.5))
    bg = BackgroundModel((0.0, 0.0), grey[None].expand(BackgroundModel.BINS, 3, -1).clone())
    xy = torch.zeros(48, 160, 2, dtype=torch.float64)
    xy[..., 0] = 1.0  # every pixel in one sector
    t = torch.linspace(0.0, 159 * 0.002, 160)  # the background's colour drifts (0.5 level/px), its brightness does not
    ramp = torch.stack([0.5 + t, torch.full_like(t, 0.5), 0.5 - t])[None, :, None].expand(1, 3, 48, 160).contiguous()
    edge = torch.full((1, 3, 48, 160), 0.5)
    edge[..., 80:] = 0.15  # the hair's outline: a real edge
    slope = lambda like: float(like[24].diff().abs().max())  # noqa: E731
    assert slope(bg.likeness(ramp, xy, 12.0)) < 0.5 * slope(bg.likeness(ramp, xy))  # a smooth photo: a gentle gate
    sharp = bg.likeness(edge, xy, 12.0)[24]
    assert sharp[:76].min() > 0.99 and sharp[84:].max() < 0.01  # at the photo's own edge it stays put
