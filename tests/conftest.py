"""Test set-up: headless Qt, few threads, shared fixtures."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if "GANEDITOR_DATA" not in os.environ:  # autosaves and added models of the tests never reach the user's folder
    import atexit
    import shutil
    import tempfile

    os.environ["GANEDITOR_DATA"] = tempfile.mkdtemp(prefix="ganeditor-test-data-")
    atexit.register(shutil.rmtree, os.environ["GANEDITOR_DATA"], True)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture
def data_dir():
    """Folder of small test files (checkpoints our code wrote in official layouts, goldens)."""
    from pathlib import Path

    return Path(DATA)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A folder with a 16 px StyleGAN2, a tiny CycleGAN and a tiny x4 SRResNet (tests/gui_support.py)."""
    from gui_support import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture
def tiny_window(qtbot, tmp_path, monkeypatch, tiny_models):
    """The main window on the tiny models (own settings and autosave folder; questions answered by
    ``win.answers``, message boxes collected in ``win.errors``)."""
    from gui_support import tiny_window as make

    win = make(qtbot, tmp_path, monkeypatch, tiny_models)
    yield win
    win.discard_and_close()


@pytest.fixture
def exiftool():
    """A reader of image metadata independent of ours: ``exiftool(path) -> {group:tag: value}``.
    Missing tool: the test is skipped on a developer machine and fails in CI (which installs it)."""
    import json
    import shutil
    import subprocess

    if shutil.which("exiftool") is None:
        if os.environ.get("CI"):
            pytest.fail("exiftool is not installed (.ci/run installs libimage-exiftool-perl)")
        pytest.skip("exiftool is not installed (Debian: libimage-exiftool-perl)")

    def read(path) -> dict:
        out = subprocess.run(["exiftool", "-j", "-G1", "-a", "-n", str(path)], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)[0]

    return read
