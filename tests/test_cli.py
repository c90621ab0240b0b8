"""The ``ganeditor`` command line: help, errors, exit codes."""

import subprocess
import sys

import pytest

from ganeditor.cli import main
from ganeditor.cli.common import parse_range


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "ganeditor", *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("info", "generate", "convert", "gui"):
        assert cmd in r.stdout


def test_missing_checkpoint_is_one_line_exit_2(tmp_path):
    r = run_cli("info", str(tmp_path / "nope.pkl"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope.pkl" in lines[0] and "file not found" in lines[0]


def test_debug_shows_traceback(tmp_path):
    r = run_cli("--debug", "info", str(tmp_path))
    assert r.returncode == 2 and "Traceback" in r.stderr and "is a folder" in r.stderr


def test_parse_range():
    assert parse_range("0-3,7") == [0, 1, 2, 3, 7]
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        parse_range("3-1")


def test_main_returns_2_on_unknown_model(capsys):
    assert main(["info", "no-such-model-name"]) == 2
    assert "no such file or model name" in capsys.readouterr().err


def test_a_command_imports_only_its_own_module():
    """``ganeditor translate ...`` builds the parser of that command alone: the other commands' modules (and
    torchvision with torch._dynamo, ~1.9 s of CPU that the portrait commands pull in) are not imported."""
    from ganeditor.cli import build_parser, command_of

    assert command_of(["--debug", "translate", "a.png"]) == "translate" and command_of(["photo.jpg"]) is None
    sub = next(a for a in build_parser("upscale")._actions if a.dest == "command")
    assert list(sub.choices) == ["upscale"]
    code = ("import sys\nfrom ganeditor.cli import main\ntry:\n    main(['translate', '--help'])\nexcept SystemExit:\n"
            "    pass\nprint(sorted(m for m in ('torchvision', 'ganeditor.cli.train', 'ganeditor.pipelines.portrait')"
            " if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]" and "--tile" in r.stdout
    r = run_cli("--help", "translate")
    assert r.returncode == 0 and "upscale" in r.stdout  # help before the command: the full list


def test_a_resumed_progress_bar_counts_its_rate_from_where_it_resumed():
    import io

    from tqdm import tqdm

    from ganeditor.cli.common import show_progress
    from ganeditor.core.progress import ProgressEvent

    bar = tqdm(total=None, file=io.StringIO())
    show_progress(bar, ProgressEvent(5000, 10000, "resumed at step 5000", {"initial": 5000}))
    show_progress(bar, ProgressEvent(5001, 10000, "G=0.7"))
    d = bar.format_dict
    assert (d["n"], d["total"], d["initial"]) == (5001, 10000, 5000)  # 1 step done now, not 5001
    bar.close()
