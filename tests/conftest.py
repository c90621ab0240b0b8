"""Test set-up: headless Qt, few threads, shared fixtures."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

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
