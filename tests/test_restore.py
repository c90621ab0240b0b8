"""The restore pipeline with tiny random-weight models: each stage exact against a whole-image run,
strengths, stage order, gray kept gray, 16-bit kept 16-bit, faces (none, one, many), wrong or unknown
models named, cancellation, and the CLI (file, folder, mask) end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganeditor.archs import build
from ganeditor.cli import main
from ganeditor.core.errors import Cancelled, CheckpointError, GanEditorError
from ganeditor.core.imageio import SR_CONVENTION, LoadedImage, quantize, read_image, to_tensor, write_image
from ganeditor.core.progress import CancelToken, Task
from ganeditor.core.tiling_common import padded_index
from ganeditor.formats import Checkpoint
from ganeditor.formats.native import save_checkpoint
from ganeditor.pipelines import face_detect
from ganeditor.pipelines.image2image import Image2ImageOptions
from ganeditor.pipelines.restore import STAGE_ORDER, RestoreModels, RestoreOptions, parse_stages, restore
from ganeditor.pipelines.restore_damage import damage_probability, detect_damage, grow_mask, inpaint
from ganeditor.pipelines.restore_stages import colourise, restore_global, upscale_stage

SMALL = dict(channels=(4, 8, 8), blocks=(1, 1, 1))


def _net(arch, seed=0, **kw):
    torch.manual_seed(seed)
    return build(arch, **(kw or SMALL)).eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny random models for every slot, as files (the faces slot keeps the shipped generator)."""
    d = tmp_path_factory.mktemp("restore-models")
    paths = {}
    for slot, arch in (("scratches", "scratch-detector"), ("inpaint", "inpaint-unet"), ("global", "restore-unet"),
                       ("colour", "colorize-unet")):
        save_checkpoint(Checkpoint("ganeditor", "t", {"net": _net(arch)}, {}), d / f"{slot}.safetensors")
        paths[slot] = str(d / f"{slot}.safetensors")
    torch.manual_seed(0)
    sr = build("srvgg", num_feat=4, num_conv=1, upscale=2).eval()
    save_checkpoint(Checkpoint("ganeditor", "t", {"net": sr}, {}), d / "upscale.safetensors")
    paths["upscale"] = str(d / "upscale.safetensors")
    return paths


def _photo(h=40, w=52, c=3, dtype=np.uint8, seed=0):
    peak = 65535 if dtype == np.uint16 else 255
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(xx / 5.0)[..., None] * 0.3 + np.cos(yy / 7.0)[..., None] * 0.2 + 0.5) * np.ones(c)
    noise = np.random.default_rng(seed).normal(0, 0.05, (h, w, c))
    return (np.clip(base + noise, 0, 1) * peak).astype(dtype)


def _whole(net, pixels, *extra):
    """Reference: the network on the whole image reflect-padded to its size multiple, cropped."""
    h, w, _ = pixels.shape
    m = net.size_multiple
    rows, cols = padded_index(h, 0, m), padded_index(w, 0, m)
    x = to_tensor(pixels[np.ix_(rows, cols)], SR_CONVENTION)
    args = [torch.from_numpy(e[np.ix_(rows, cols)]).float()[None, None] for e in extra]
    with torch.no_grad():
        return net(x, *args)[0, :, :h, :w]


def test_detection_tiled_equals_whole_image():
    net, px = _net("scratch-detector"), _photo(70, 90)
    prob = damage_probability(net, px, options=Image2ImageOptions(tile=16))
    ref = quantize(torch.sigmoid(_whole(net, px))[0], SR_CONVENTION).numpy()
    assert np.abs(prob.astype(int) - ref.astype(int)).max() <= 1
    mask = detect_damage(net, px, strength=1.0, grow=0, options=Image2ImageOptions(tile=16))
    assert np.array_equal(mask, prob >= 128)
    assert not detect_damage(net, px, strength=0.0).any()
    assert detect_damage(net, px, strength=0.6, grow=0).sum() <= mask.sum()


def test_grow_mask():
    m = np.zeros((7, 7), bool)
    m[3, 3] = True
    assert grow_mask(m, 1).sum() == 9 and grow_mask(m, 2).sum() == 25 and grow_mask(m, 0).sum() == 1


def test_inpainting_is_exact_and_leaves_other_pixels_alone():
    net, px = _net("inpaint-unet"), _photo(60, 75)
    mask = np.zeros(px.shape[:2], bool)
    mask[10:13, 5:70] = True  # a scratch across several cells
    mask[50, 40] = True  # a dust speck
    out, notes = inpaint(net, px, mask, cell=16)
    assert not notes and np.array_equal(out[~mask], px[~mask])
    ref = quantize(_whole(net, px, mask).permute(1, 2, 0), SR_CONVENTION).numpy()
    assert np.abs(out[mask].astype(int) - ref[mask].astype(int)).max() <= 1
    gray, _ = inpaint(net, px[:, :, :1], mask, cell=32)
    assert gray.shape == (60, 75, 1) and np.array_equal(gray[~mask], px[:, :, :1][~mask])


def test_global_strength_and_gray_and_16bit():
    net = _net("restore-unet")
    img = LoadedImage(_photo())
    assert restore_global(net, img, strength=0.0) is img
    full = restore_global(net, img, options=Image2ImageOptions(tile=16)).pixels.astype(float)
    half = restore_global(net, img, strength=0.5).pixels.astype(float)
    px = img.pixels.astype(float)
    inside = (full > 0) & (full < 255)  # where the full change was not clipped
    assert np.abs(half - px - 0.5 * (full - px))[inside].max() <= 1.0
    gray = restore_global(net, LoadedImage(_photo(c=1))).pixels
    assert gray.shape == (40, 52, 1) and gray.dtype == np.uint8
    deep = restore_global(net, LoadedImage(_photo(dtype=np.uint16), bit_depth=16)).pixels
    assert deep.dtype == np.uint16 and len(np.unique(deep)) > 256


def test_colourise_keeps_luma_and_makes_rgb():
    net = _net("colorize-unet", channels=(4, 8), blocks=(1, 1))
    gray = _photo(37, 61, c=1)
    out = colourise(net, gray, strength=0.2)  # random weights: weak colour, so that little is clipped
    assert out.shape == (37, 61, 3) and out.dtype == np.uint8
    luma = out.astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(luma - gray[:, :, 0]).mean() < 1.0  # clipping aside, the luma is the photo's
    assert np.abs(out[..., 0].astype(int) - out[..., 2]).max() > 0  # colour was added
    none = colourise(net, gray, strength=0.0)
    assert np.abs(none[..., 0].astype(int) - gray[:, :, 0]).max() <= 1 and np.array_equal(none[..., 0], none[..., 2])
    deep = colourise(net, _photo(c=3, dtype=np.uint16))
    assert deep.dtype == np.uint16


def test_upscale_stage(models):
    from ganeditor.formats import load_checkpoint

    net = load_checkpoint(models["upscale"]).primary
    img = LoadedImage(_photo(20, 30))
    assert upscale_stage(net, img, factor=2).pixels.shape == (40, 60, 3)
    assert upscale_stage(net, img, factor=4).pixels.shape == (80, 120, 3)  # x2 model, Lanczos to x4
    soft = upscale_stage(net, img, factor=2, strength=0.0).pixels
    assert np.abs(soft.astype(int) - upscale_stage(net, img, factor=2, strength=1.0).pixels).max() > 0


def test_options_and_stage_names():
    assert RestoreOptions(stages=("faces", "color", "scratches")).stages == ("scratches", "colour", "faces")
    assert parse_stages("all") == STAGE_ORDER and parse_stages("none") == ()
    with pytest.raises(GanEditorError, match="unknown stage 'sharpen'"):
        RestoreOptions(stages=("sharpen",))
    with pytest.raises(GanEditorError, match="between 0 and 1"):
        RestoreOptions(strength={"global": 1.5})
    with pytest.raises(GanEditorError, match="fidelity"):
        RestoreOptions(fidelity=2)


def test_all_stages_run_in_order(models):
    m = RestoreModels.load(STAGE_ORDER, models, "cpu")
    img = LoadedImage(_photo(48, 64))
    events = []
    res = restore(img, m, RestoreOptions(stages=STAGE_ORDER, upscale=2), task=Task(events.append, min_interval=0))
    assert res.image.pixels.shape == (96, 128, 3) and res.mask.shape == (48, 64)
    assert list(res.seconds) == list(STAGE_ORDER)
    assert events[-1].done == events[-1].total
    assert any("faces" in n for n in res.notes)


def test_gray_and_16bit_scans_stay_so(models):
    m = RestoreModels.load(("scratches", "global"), models, "cpu")
    res = restore(LoadedImage(_photo(c=1)), m, RestoreOptions(stages=("scratches", "global")))
    assert res.image.pixels.shape[2] == 1
    deep = restore(LoadedImage(_photo(dtype=np.uint16), bit_depth=16), m, RestoreOptions(stages=("scratches", "global")))
    assert deep.image.pixels.dtype == np.uint16 and deep.image.bit_depth == 16
    m2 = RestoreModels.load(("colour",), models, "cpu")
    col = restore(LoadedImage(_photo(c=1)), m2, RestoreOptions(stages=("colour",)))
    assert col.image.pixels.shape[2] == 3  # only when colourisation is asked


def test_user_mask_replaces_detection(models):
    m = RestoreModels.load(("scratches",), models, "cpu")
    px = _photo()
    mask = np.zeros(px.shape[:2], bool)
    mask[5:8, 10:30] = True
    res = restore(LoadedImage(px), m, RestoreOptions(stages=("scratches",), mask=mask))
    assert np.array_equal(res.mask, mask) and np.array_equal(res.image.pixels[~mask], px[~mask])
    with pytest.raises(GanEditorError, match="damage mask is 10x10"):
        restore(LoadedImage(px), m, RestoreOptions(stages=("scratches",), mask=np.zeros((10, 10), bool)))


def test_wrong_and_unknown_models_are_named(models, tmp_path):
    with pytest.raises(CheckpointError, match="--model global: this file holds dust and scratch detector"):
        RestoreModels.load(("global",), {"global": models["scratches"]}, "cpu")
    with pytest.raises(CheckpointError, match="--model faces: .*not a face restoration model"):
        RestoreModels.load(("faces",), {"faces": models["global"]}, "cpu")
    p = tmp_path / "mystery.pth"
    torch.save({"trunk.0.weight": torch.zeros(8, 3, 3, 3), "head.weight": torch.zeros(3, 8, 1, 1)}, p)
    with pytest.raises(CheckpointError, match=r"unknown architecture: .*matches its keys \(trunk.0.weight"):
        RestoreModels.load(("global",), {"global": str(p)}, "cpu")


def test_cancellation_stops_at_once_and_writes_nothing(models, tmp_path):
    m = RestoreModels.load(("global",), models, "cpu")
    tok = CancelToken()

    def on(ev):
        if ev.done > 0:
            tok.cancel()

    with pytest.raises(Cancelled):
        restore(LoadedImage(_photo(64, 64)), m, RestoreOptions(stages=("global",), tile=16),
                task=Task(on, tok, min_interval=0))


@pytest.fixture
def face_photo(data_dir):
    if face_detect.find_weights() is None:
        pytest.skip("MTCNN weights not installed")
    return read_image(data_dir / "align" / "grace_hopper.jpg").pixels


def test_faces_none_one_many(models, face_photo):
    m = RestoreModels.load(("faces",), models, "cpu")
    opts = RestoreOptions(stages=("faces",), fidelity=0.5)
    one = restore(LoadedImage(face_photo), m, opts)
    assert one.faces == 1 and one.image.pixels.shape == face_photo.shape
    diff = np.abs(one.image.pixels.astype(int) - face_photo).max(-1)
    ys, xs = np.nonzero(diff)
    assert len(ys) and 150 < ys.mean() < 400 and 150 < xs.mean() < 400  # only around the face
    many = np.concatenate([face_photo[:, :256], face_photo[:, 128:384], face_photo[:, 256:]], axis=1)
    assert restore(LoadedImage(many), m, opts).faces >= 2
    none = restore(LoadedImage(_photo(120, 160)), m, opts)
    assert none.faces == 0 and "faces: no face found" in none.notes
    assert np.array_equal(none.image.pixels, _photo(120, 160))
    kept = restore(LoadedImage(face_photo), m, RestoreOptions(stages=("faces",), fidelity=1.0))
    assert np.abs(kept.image.pixels.astype(int) - face_photo).max() <= 2  # fidelity 1 keeps the face


def test_cli_file_folder_and_mask(models, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", _photo(), None, 8)
    write_image(src / "b.png", _photo(seed=1), None, 8)
    common = [f"--model=scratches={models['scratches']}", f"--model=inpaint={models['inpaint']}",
              f"--model=global={models['global']}", "--stages", "scratches,global"]
    assert main(["restore", str(src / "a.png"), str(tmp_path / "a-out.png"), "--save-mask", *common]) == 0
    out = read_image(tmp_path / "a-out.png")
    assert out.pixels.shape == (40, 52, 3)
    assert b"compositeWithTrainedAlgorithmicMedia" in out.xmp and out.xmp.count(b"restore with") == 3  # 3 models
    assert read_image(tmp_path / "a-out-mask.png").pixels.shape == (40, 52, 1)
    assert main(["restore", str(src), str(tmp_path / "out"), *common, "--strength", "global=0.5"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    write_image(src / "deep.tif", _photo(dtype=np.uint16), None, 16)  # a 16-bit TIFF scan -> 16-bit out
    assert main(["restore", str(src / "deep.tif"), str(tmp_path / "deep-out.tif"), *common]) == 0
    deep = read_image(tmp_path / "deep-out.tif")
    assert deep.bit_depth == 16 and deep.pixels.dtype == np.uint16
    mask = np.zeros((40, 52, 1), np.uint8)
    mask[4:6, 3:40] = 255
    write_image(tmp_path / "m.png", mask, None, 8)
    assert main(["restore", str(src / "a.png"), str(tmp_path / "m-out.png"), "--mask", str(tmp_path / "m.png"),
                 *common]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["restore", str(src / "a.png"), str(tmp_path / "x.png"), "--stages", "sharpen"])
    assert "unknown stage 'sharpen'" in capsys.readouterr().err
    assert main(["restore", str(src / "a.png"), str(tmp_path / "x.png"), "--model", f"upscale={models['global']}",
                 "--upscale", "2", "--stages", "none"]) == 0  # a 1x restorer is a (x1) upscaler too


def test_a_stopped_restore_process_ends_itself_without_teardown(models, tmp_path, monkeypatch):
    """``ganeditor`` run as a program (no argv given) ends a cancelled command with os._exit after
    the exit handlers (finalising torch took longer than stopping the work); called with argv (tests,
    embedding) it returns the status."""
    import atexit
    import os
    import sys

    def cancelled(*a, **k):
        raise Cancelled()

    class Left(Exception):
        pass

    ran, left = [], []
    monkeypatch.setattr("ganeditor.cli.restore.restore", cancelled)
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: ran.append(True))
    monkeypatch.setattr(os, "_exit", lambda status: left.append(status) or (_ for _ in ()).throw(Left()))
    write_image(tmp_path / "a.png", _photo(), None, 8)
    argv = ["restore", str(tmp_path / "a.png"), str(tmp_path / "out.png"), "--stages", "global",
            f"--model=global={models['global']}"]
    assert main(argv) == 130 and not left
    monkeypatch.setattr(sys, "argv", ["ganeditor", *argv])
    with pytest.raises(Left):
        main()
    assert left == [130] and ran == [True] and not (tmp_path / "out.png").exists()


def test_ctrl_c_during_a_restore_exits_130_and_writes_nothing(models, tmp_path):
    """The real command in its own process: Ctrl-C once its handlers are in place (while it loads or
    restores a 6-megapixel scan) -> exit 130, one line, no output and no temporary file."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    write_image(tmp_path / "scan.png", _photo(2000, 3000), None, 8)
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "ganeditor", "restore", str(tmp_path / "scan.png"), str(out / "r.png"),
           f"--model=scratches={models['scratches']}", f"--model=inpaint={models['inpaint']}",
           f"--model=global={models['global']}"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    # as from a terminal: a shell's background job (`nohup ... &`, some CI runners) starts with SIGINT
    # ignored, which Python and the command keep -- Ctrl-C cannot reach such a process
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    status = Path(f"/proc/{p.pid}/status")
    while p.poll() is None and status.exists():  # until the command catches SIGTERM (torch loaded, args parsed)
        caught = next((ln for ln in status.read_text().splitlines() if ln.startswith("SigCgt:")), "SigCgt: 0")
        if int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130, (p.returncode, err)
    assert "Traceback" not in err and ("cancelled" in err or "interrupted" in err)
    assert list(out.iterdir()) == []
