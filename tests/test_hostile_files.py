"""Hostile and odd files through the CLI (issue 18): refused with one line naming the file, nothing
executed, nothing written, no hang, and bounded memory -- measured in child processes with
``getrusage``, never with wall-clock assertions."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hostile_files as H

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
MIB = 1 << 20

# A child that runs the CLI entry point on each argument list and reports exit status and stderr.
_RUNNER = r"""
import contextlib, io, json, resource, sys
from ganeditor.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    out.append({"rc": rc, "stderr": err.getvalue()})
print(json.dumps({"results": out, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO}{os.pathsep}{TESTS}"}


def _limit_memory() -> None:  # a regression must not take the machine down: 8 GiB of address space at most
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def _run_all(cases: list[list[str]]) -> dict:
    r = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(cases)], env=_env(), capture_output=True,
                       text=True, timeout=600, preexec_fn=_limit_memory)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def cli(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganeditor", *map(str, args)], env=_env(), capture_output=True,
                          text=True, timeout=timeout, **kw)


def _one_line(stderr: str, path: Path) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"ganeditor: error: {path}"), stderr
    return lines[0]


def test_crafted_checkpoints_are_refused_in_bounded_memory(tmp_path):
    """Every crafted file of the attack is refused with one line; the child that opens them all peaks
    at most 2x the largest file + 512 MiB above a child that opens a normal checkpoint."""
    photo = H.photo(tmp_path)
    files, cases = {}, []
    small = {H.pickle_load_from_bytes_repeated: dict(repeats=300), H.pickle_codecs_repeated: dict(repeats=60,
             nchars=1_100_000)}  # fmt: skip
    for name, (build, args) in H.HOSTILE.items():
        files[name] = build(tmp_path, **small.get(build, {}))
        cases.append([str(files[name]) if a == "FILE" else str(photo) if a == "PHOTO" else
                      str(tmp_path / "out.png") if a == "OUT" else a for a in args])
    hostile = _run_all(cases)
    baseline = _run_all([["info", str(REPO / "models" / "srgan-x4.safetensors")]])
    assert baseline["results"][0]["rc"] == 0
    expected = {
        "safetensors num_feat=4096": "refused before allocating",
        "zip-bomb .pth": "zip bomb",
        "NVlabs pickle resolution 16384": "img_resolution=16384",
        "rosinality .pt resolution 16384": "img_resolution=16384",
        "_load_from_bytes x5000 (memo)": "amplification",
        "_codecs.encode x500 (memo)": "refused _codecs.encode",
        "_rebuild_tensor_v2 stride 0": "expansion",
        "BINBYTES8 10 GB in .pth": "declares a string of",
        "ncnn Interp x500": "outside (0, 16]",
    }
    for (name, path), res in zip(files.items(), hostile["results"]):
        assert res["rc"] == 2, (name, res)
        assert expected[name] in _one_line(res["stderr"], path), (name, res["stderr"])
        assert "Weights only load failed" not in res["stderr"]
    assert not (tmp_path / "out.png").exists()
    largest = max(p.stat().st_size for p in files.values())
    extra = (hostile["maxrss_kib"] - baseline["maxrss_kib"]) * 1024
    assert extra <= 2 * largest + 512 * MIB, f"{extra / MIB:.0f} MiB above a normal run"


def test_state_dict_mismatch_names_the_first_tensor(tmp_path):
    path = H.nvlabs_wrong_shape(tmp_path)
    r = cli("info", path)
    assert r.returncode == 2
    line = _one_line(r.stderr, path)
    assert "'synthesis.b4.const' has shape [3, 4, 4] in the file, the architecture needs [8, 4, 4]" in line


def test_postscript_photo_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned.txt"
    for ps in (H.postscript_as_png(tmp_path, marker), H.postscript_as_png(tmp_path, marker, loop=True)):
        out = tmp_path / "out.png"
        r = cli("upscale", REPO / "models" / "srgan-x4.safetensors", ps, out, timeout=120)
        assert r.returncode == 2
        assert "PostScript document, not an image: refused" in _one_line(r.stderr, ps)
        assert not out.exists() and not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holiday.png", "loop.png"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifos_are_refused_at_once(tmp_path):
    fifo_photo, fifo_ckpt = tmp_path / "photo.png", tmp_path / "model.pth"
    os.mkfifo(fifo_photo)
    os.mkfifo(fifo_ckpt)
    cases = [["upscale", str(REPO / "models" / "srgan-x4.safetensors"), str(fifo_photo), str(tmp_path / "o.png")],
             ["upscale", str(fifo_ckpt), str(H.photo(tmp_path, "real.png")), str(tmp_path / "o.png")], ["info", str(fifo_ckpt)]]
    results = _run_all(cases)["results"]  # a blocked open would never return: the run's timeout fails the test
    for res, path in zip(results, (fifo_photo, fifo_ckpt, fifo_ckpt)):
        assert res["rc"] == 2 and "is a FIFO (named pipe)" in _one_line(res["stderr"], path)


def test_output_equal_to_input_is_refused_unless_overwrite(tmp_path):
    photo = H.photo(tmp_path, "b.png", (16, 12))
    before = photo.read_bytes()
    model = REPO / "models" / "srgan-x4.safetensors"
    r = cli("upscale", model, photo, photo)
    assert r.returncode == 2 and "would replace the input" in _one_line(r.stderr, photo)
    assert photo.read_bytes() == before
    os.link(photo, tmp_path / "hardlink.png")  # the same file under another name
    r = cli("upscale", model, photo, tmp_path / "hardlink.png")
    assert r.returncode == 2 and photo.read_bytes() == before
    r = cli("convert", model, model)
    assert r.returncode == 2 and "would replace the input" in r.stderr
    r = cli("upscale", model, photo, photo, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert photo.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png", "hardlink.png"]


def test_tiny_image_says_how_small_is_too_small(tmp_path):
    photo = H.photo(tmp_path, "tiny.png", (3, 3))
    r = cli("translate", REPO / "models" / "daynight-cyclegan.safetensors", photo, tmp_path / "o.png")
    assert r.returncode == 2
    line = _one_line(r.stderr, photo)
    assert "image is 3x3: too small for this model, at least 5x5" in line


def test_full_disk_names_the_file_and_leaves_nothing(tmp_path):
    """A write that fails (here: over RLIMIT_FSIZE, as a full disk would) names the output file."""
    photo = H.photo(tmp_path, "p.png", (64, 48))
    out = tmp_path / "big.png"

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    r = cli("upscale", REPO / "models" / "srgan-x4.safetensors", photo, out, preexec_fn=small_files)
    assert r.returncode == 2
    assert "cannot write" in _one_line(r.stderr, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]  # no output, no temp file


def test_sigterm_during_upscale_exits_143_and_leaves_nothing(tmp_path):
    photo = H.photo(tmp_path, "p.png", (160, 120))
    out = tmp_path / "up.png"
    cmd = [sys.executable, "-m", "ganeditor", "upscale", str(REPO / "models" / "realesrgan-x4plus.safetensors"),
           str(photo), str(out), "--tile", "32"]
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while p.poll() is None and not _has_started(p.pid):
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 143, (p.returncode, err)
    assert "SIGTERM" in err and "Traceback" not in err
    assert sorted(q.name for q in tmp_path.iterdir()) == ["p.png"]


def _has_started(pid: int) -> bool:
    """The CLI has installed its SIGTERM handler (Linux: /proc; elsewhere assume it after a while)."""
    try:
        caught = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("SigCgt:"))
    except (OSError, StopIteration):
        time.sleep(5)
        return True
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
