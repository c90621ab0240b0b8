"""bench/run_all.py keeps each benchmark's section whole when it replaces some of them (--only)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "bench" / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_headings_printed_by_a_benchmark_stay_in_its_section(tmp_path):
    report = tmp_path / "RESULTS.md"
    report.write_text("# Benchmark results\n\n## edits\n\n`cmd`\n\n```\n# Edit entanglement\n## Regressor check\n| a |\n```\n\n"
                      "(1 s)\n\n## quality\n\n```\nSR x4\n```\n")
    sections = _run_all()._read_sections(report)
    assert list(sections) == ["edits", "quality"]
    assert "## Regressor check" in sections["edits"] and sections["edits"][-2] == "(1 s)"
