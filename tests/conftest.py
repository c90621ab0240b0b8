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
