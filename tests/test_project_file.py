"""The .ganedit format without Qt: exact round trip (16-bit, alpha, ICC, alignment, latent, PTI delta),
atomic saves that keep the previous file on a full disk, and clear refusals."""

import errno
import zipfile

import numpy as np
import pytest

from ganeditor.core.imageio import LoadedImage
from ganeditor.pipelines.align import AlignedFace
from ganeditor.pipelines.portrait import LatentState
from ganeditor.pipelines.project import PhotoRef, PortraitState, Project, ProjectError, load_project, save_project


def project(seed=0) -> Project:
    rng = np.random.default_rng(seed)
    px = (rng.random((20, 30, 3)) * 65535).astype(np.uint16)
    alpha = (rng.random((20, 30)) * 65535).astype(np.uint16)
    aligned = AlignedFace((rng.random((16, 16, 3)) * 255).astype(np.uint8), rng.random((4, 2)) * 30, np.eye(3) * 1.5,
                          rng.random((5, 2)) * 30, "manual", 0, 1, (30, 20), ["a note"])
    latent = LatentState(rng.standard_normal((1, 4, 8)).astype(np.float32), {"b4.noise": rng.standard_normal((4, 4)).astype(np.float32)},
                         {"synthesis.b4.conv1.weight": rng.standard_normal((2, 2)).astype(np.float32)}, "abc123")
    portrait = PortraitState({"name": "g", "path": "/m/g.safetensors", "fingerprint": "abc123"}, aligned,
                             {"smile": 1.5}, {"method": "pti", "steps": 50}, latent)
    return Project(PhotoRef("/photos/p.png", "f" * 64, (30, 20), b"original bytes"),
                   LoadedImage(px, alpha, 16, None, None, []), [{"label": "Upscale ×4", "op": "upscale", "tile": None}], portrait)


def test_round_trip_is_exact(tmp_path):
    pr = project()
    save_project(tmp_path / "a.ganedit", pr)
    back = load_project(tmp_path / "a.ganedit")
    assert np.array_equal(back.result.pixels, pr.result.pixels) and back.result.pixels.dtype == np.uint16
    assert np.array_equal(back.result.alpha, pr.result.alpha)
    assert back.photo == pr.photo and back.operations == pr.operations
    a, b = back.portrait, pr.portrait
    assert a.generator == b.generator and a.sliders == b.sliders and a.inversion == b.inversion
    assert np.array_equal(a.aligned.image, b.aligned.image) and np.array_equal(a.aligned.transform, b.aligned.transform)
    assert np.array_equal(a.aligned.quad, b.aligned.quad) and a.aligned.notes == b.aligned.notes
    assert a.aligned.source_size == b.aligned.source_size
    assert np.array_equal(a.latent.ws, b.latent.ws) and a.latent.fingerprint == b.latent.fingerprint
    for k in b.latent.noise:
        assert np.array_equal(a.latent.noise[k], b.latent.noise[k])
    for k in b.latent.pti_delta:
        assert np.array_equal(a.latent.pti_delta[k], b.latent.pti_delta[k])
    with zipfile.ZipFile(tmp_path / "a.ganedit") as zf:  # the documented members
        assert set(zf.namelist()) == {"project.json", "result.png", "photo.png", "aligned.png", "latent.npz"}


def test_a_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "a.ganedit"
    save_project(path, project(0))
    before = path.read_bytes()

    def full(self, name, data, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", full)
    with pytest.raises(ProjectError, match="No space left on device.*previous file is unchanged"):
        save_project(path, project(1))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.ganedit"]  # no temp file left behind


def test_damaged_and_foreign_files_are_refused_in_one_line(tmp_path):
    save_project(tmp_path / "a.ganedit", project())
    data = (tmp_path / "a.ganedit").read_bytes()
    (tmp_path / "cut.ganedit").write_bytes(data[: len(data) // 3])
    with pytest.raises(ProjectError, match="cut.ganedit: .*damaged"):
        load_project(tmp_path / "cut.ganedit")
    with zipfile.ZipFile(tmp_path / "other.ganedit", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(ProjectError, match="no project.json"):
        load_project(tmp_path / "other.ganedit")
    with pytest.raises(ProjectError, match="file not found"):
        load_project(tmp_path / "missing.ganedit")
