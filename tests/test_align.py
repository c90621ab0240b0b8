"""MTCNN (vs goldens made by facenet-pytorch 2.5.3) and FFHQ-style alignment on procedural portraits."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ganeditor.archs import build
from ganeditor.core.errors import CheckpointError, GanEditorError
from ganeditor.core.imageio import read_image
from ganeditor.pipelines import face_detect
from ganeditor.pipelines.align import align_face, eyes_and_mouth, ffhq_quad, quad_transform
from ganeditor.pipelines.face_detect import MTCNN
from ganeditor.worlds.portraits import FFHQ_LANDMARKS_512, alignment_affine, render_portrait


def random_state(net: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Deterministic random weights (the golden script used this same function on the original nets)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k in sorted(net.state_dict()):
        shape = net.state_dict()[k].shape
        if k.startswith("prelu"):
            v = 0.25 + 0.05 * torch.randn(shape, generator=g)
        elif k.endswith("bias"):
            v = 0.1 * torch.randn(shape, generator=g)
        else:
            v = torch.randn(shape, generator=g) / float(np.prod(shape[1:])) ** 0.5
        out[k] = v
    return out


DATA = Path(__file__).parent / "data" / "align"


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(DATA / "mtcnn_random_golden.npz"))


@pytest.fixture(scope="module")
def random_nets():
    nets = {}
    for i, stage in enumerate(("pnet", "rnet", "onet")):
        net = build(f"mtcnn_{stage}").eval()
        net.load_state_dict(random_state(net, 100 + i), strict=True)
        nets[stage] = net
    return nets


def canvas(seed=3, size=256, angle=0.0, scale=0.6, dx=0.0, dy=0.0, dtype=np.uint8):
    """A portrait in a rotated/scaled canvas and its 5 landmarks in pixel-index coordinates."""
    img, _, lm = render_portrait(seed, size, affine=alignment_affine(angle, scale, dx, dy), return_landmarks=True)
    if dtype == np.uint16:
        img = img.astype(np.uint16) * 257
    return img, lm.astype(np.float64) - 0.5  # portraits count from the pixel corner, detectors from its centre


# ------------------------------------------------------------------------------------------ MTCNN


def test_mtcnn_nets_match_original_on_random_weights(golden, random_nets):
    with torch.no_grad():
        for stage, net in random_nets.items():
            outs = net(torch.from_numpy(golden[f"{stage}_in"]))
            ref = [golden[f"{stage}_out{j}"] for j in range(len(outs))]
            for o, r in zip(outs, ref):
                np.testing.assert_allclose(o.numpy(), r, rtol=1e-5, atol=1e-6)


def test_mtcnn_cascade_matches_original_on_random_weights(golden, random_nets):
    det = MTCNN(random_nets["pnet"], random_nets["rnet"], random_nets["onet"], min_face_size=float(golden["min_face_size"]),
                thresholds=tuple(golden["thresholds"]), factor=float(golden["factor"]))
    faces = det.detect(golden["image"])
    ref_b, ref_p = golden["boxes"], golden["points"]
    order = np.argsort((ref_b[:, 2] - ref_b[:, 0]) * (ref_b[:, 3] - ref_b[:, 1]))[::-1]  # largest first, as ours
    assert len(faces) == len(ref_b) > 5
    np.testing.assert_allclose(np.stack([f.box for f in faces]), ref_b[order, :4], atol=1e-3)
    np.testing.assert_allclose(np.array([f.score for f in faces]), ref_b[order, 4], atol=1e-6)
    np.testing.assert_allclose(np.stack([f.landmarks for f in faces]), ref_p[order], atol=1e-3)


def test_mtcnn_real_weights_match_original(data_dir):
    assert face_detect.find_weights() == Path(__file__).resolve().parents[1] / "models" / "mtcnn.safetensors"
    ref = np.load(data_dir / "align" / "mtcnn_grace_golden.npz")
    faces = face_detect.detect_faces(read_image(data_dir / "align" / "grace_hopper.jpg").pixels)
    assert len(faces) == len(ref["boxes"]) == 1
    np.testing.assert_allclose(faces[0].box, ref["boxes"][0], atol=0.01)
    np.testing.assert_allclose(faces[0].landmarks, ref["landmarks"][0], atol=0.01)
    assert abs(faces[0].score - ref["probs"][0]) < 1e-5


def test_no_weights_says_manual_landmarks_needed(monkeypatch):
    monkeypatch.setattr(face_detect, "find_weights", lambda chosen=None: None)
    img, _ = canvas()
    with pytest.raises(GanEditorError, match="automatic face detection is unavailable.*5 points"):
        align_face(img, "auto", 64)
    assert align_face(img, canvas()[1], 64).detector_name == "manual"  # manual landmarks always work


@pytest.mark.filterwarnings("ignore:the face is small")
def test_no_face_and_face_index_errors(random_nets):
    strict = MTCNN(random_nets["pnet"], random_nets["rnet"], random_nets["onet"], thresholds=(0.999, 0.999, 0.999))
    img, _ = canvas(size=96)
    with pytest.raises(GanEditorError, match="no face found.*by hand"):
        align_face(img, "auto", 64, detector=strict)
    loose = MTCNN(random_nets["pnet"], random_nets["rnet"], random_nets["onet"], thresholds=(0.48, 0.48, 0.48))
    n = len(loose.detect(img))
    assert n > 1
    second = align_face(img, "auto", 32, face_index=1, detector=loose)
    assert second.num_faces == n and second.face_index == 1 and "faces found" in second.notes[0]
    with pytest.raises(GanEditorError, match=f"face index {n} is out of range: {n} face"):
        align_face(img, "auto", 32, face_index=n, detector=loose)


def test_mtcnn_weights_file_errors(tmp_path, random_nets):
    from ganeditor.formats.base import Checkpoint
    from ganeditor.formats.native import save_checkpoint

    save_checkpoint(Checkpoint("ganeditor", "", {"pnet": random_nets["pnet"]}, {}), tmp_path / "half.safetensors")
    with pytest.raises(CheckpointError, match="not MTCNN weights .no rnet, onet"):
        MTCNN.load(tmp_path / "half.safetensors")
    assert face_detect.get_detector(chosen=tmp_path / "missing.safetensors") is None
    with pytest.raises(CheckpointError, match="not MTCNN weights"):
        face_detect.get_detector(chosen=tmp_path / "half.safetensors")
    assert face_detect.find_weights(face_detect.find_weights().parent).name == "mtcnn.safetensors"  # a folder


def test_face_at_picks_the_face_under_a_point():
    f = face_detect.Face
    faces = [f(np.array([0, 0, 100, 100.0]), 0.9, np.zeros((5, 2))), f(np.array([40, 40, 60, 60.0]), 0.9, np.zeros((5, 2)))]
    assert face_detect.face_at(faces, 50, 50) == 1  # the smaller box inside the larger one
    assert face_detect.face_at(faces, 10, 10) == 0
    assert face_detect.face_at(faces, 150, 10) is None


# -------------------------------------------------------------------------------------- alignment


def test_quad_geometry():
    # A level face: eyes 40 px apart at y=100, mouth 50 px lower -> x axis 80 px (2 x eye distance) ... 1.8 x 50 = 90.
    lm = np.array([[80, 100], [120, 100], [100, 125], [85, 150], [115, 150]], float)
    q = ffhq_quad(lm)
    c = np.array([100, 105])  # eye centre + 0.1 x eye-to-mouth
    np.testing.assert_allclose(q, c + np.array([[-90, -90], [-90, 90], [90, 90], [90, -90]]), atol=1e-9)
    np.testing.assert_allclose(ffhq_quad(lm[[0, 1, 3, 4]]), q)  # 4 points: the nose is not used
    lm68 = np.zeros((68, 2))
    lm68[36:42], lm68[42:48], lm68[48], lm68[54] = lm[0], lm[1], lm[3], lm[4]
    np.testing.assert_allclose(ffhq_quad(lm68), q)
    # FFHQ's mean landmarks frame the whole 512 crop.
    np.testing.assert_allclose(ffhq_quad(FFHQ_LANDMARKS_512), [[0, 0], [0, 512], [512, 512], [512, 0]], atol=9)
    t = quad_transform(q, 180)
    np.testing.assert_allclose(t @ [-0.5, -0.5, 1], [*q[0], 1])  # the crop's outer corner is the quad's
    np.testing.assert_allclose(t @ [179.5, 179.5, 1], [*q[2], 1])
    with pytest.raises(GanEditorError, match="5 or 4"):
        eyes_and_mouth(np.zeros((3, 2)))


def test_alignment_is_rotation_and_scale_invariant():
    a_img, a_lm = canvas(angle=0.0, scale=0.5, size=256)
    b_img, b_lm = canvas(angle=25.0, scale=0.8, dx=0.05, dy=-0.04, size=320)
    a, b = align_face(a_img, a_lm, 128), align_face(b_img, b_lm, 128)
    assert a.image.shape == (128, 128, 3) and a.image.dtype == np.uint8 and a.detector_name == "manual"
    np.testing.assert_allclose(a.to_aligned(a_lm), b.to_aligned(b_lm), atol=0.05)
    np.testing.assert_allclose(b.to_photo(b.to_aligned(b_lm)), b_lm, atol=1e-9)
    mse = np.mean((a.image.astype(float) - b.image.astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30  # same face, same framing
    # The eyes come out level at FFHQ's place.
    eyes = b.to_aligned(b_lm)[:2]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 0.05 and abs(eyes.mean(0)[0] - 63.5) < 1.5


def test_padding_when_the_face_leaves_the_photo():
    img, lm = canvas(angle=-15, scale=0.9, dx=0.3, dy=0.25, size=192)
    al = align_face(img, lm, 96)
    assert (al.quad.max(0) > 192).any()
    corner = al.image[-8:, -8:].astype(float)  # reflected, blurred and faded towards the median colour
    assert corner.min() > 10 and corner.std() < 25
    edge = align_face(img, lm, 96, enable_padding=False)
    assert edge.image.shape == (96, 96, 3)
    # Where the crop samples the photo well inside its edges, padding changes nothing.
    yy, xx = np.mgrid[:96, :96]
    src = al.to_photo(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(96, 96, 2)
    inside = (src.min(2) > 30) & (src.max(2) < 192 - 30)
    assert inside.sum() > 1500
    assert np.abs(edge.image[inside].astype(int) - al.image[inside].astype(int)).max() <= 1


def test_uint16_gray_and_tiny_faces():
    img8, lm = canvas(angle=10, size=200)
    img16 = img8.astype(np.uint16) * 257
    a8, a16 = align_face(img8, lm, 64), align_face(img16, lm, 64)
    assert a16.image.dtype == np.uint16
    assert np.abs(a16.image / 257.0 - a8.image).max() <= 1.0
    gray = align_face(img8[:, :, :1], lm, 32)
    assert gray.image.shape == (32, 32, 1)
    small = np.ascontiguousarray(img8[::4, ::4])
    with pytest.warns(UserWarning, match="face is small"):
        tiny = align_face(small, (lm + 0.5) / 4 - 0.5, 128)
    assert "eye distance" in tiny.notes[0]


@pytest.mark.filterwarnings("ignore:the face is small")
def test_large_face_is_antialiased():
    """A face much larger than the output: pre-shrinking keeps it close to a clean low-resolution render."""
    big, lm = canvas(scale=0.8, size=768)
    small, lm_s = canvas(scale=0.8, size=96)
    a, b = align_face(big, lm, 64), align_face(small, lm_s, 64)
    mse = np.mean((a.image.astype(float) - b.image.astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 27


def test_a_profile_and_a_face_at_the_border_are_named_in_the_notes():
    img = (np.random.default_rng(0).random((200, 200, 3)) * 255).astype(np.uint8)
    frontal = np.array([[80, 90], [120, 90], [100, 110], [85, 130], [115, 130]], float)
    assert align_face(img, frontal, 32).notes == []
    turned = frontal.copy()
    turned[2, 0] = 118  # the nose beside the right eye: a head turned far to the side
    assert any("turned far to the side" in n for n in align_face(img, turned, 32).notes)
    at_edge = frontal - [75, 0]  # the left eye 5 px from the border: the crop leaves the photo
    notes = align_face(img, at_edge, 32).notes
    assert any("edge of the photo" in n for n in notes) and not any("turned" in n for n in notes)
