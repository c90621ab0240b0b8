"""Run every benchmark, print its tables, and write bench/RESULTS.md with the machine's details.

    python bench/run_all.py            # the full suite (long on 2 CPU cores)
    python bench/run_all.py --quick    # small sizes, minutes
    python bench/run_all.py --only generator inversion   # replaces just those sections of RESULTS.md
    GANEDITOR_ORIGINALS=/work/orig python bench/run_all.py --only perf   # the one original-vs-ours table

Each benchmark is its own script (run alone for more options); this runs them in subprocesses
one after another (so peak-memory figures are per benchmark) and collects their output.
Benchmarks that need a model not present are reported as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ganeditor.core.atomic import atomic_write  # noqa: E402

MODELS = ROOT / "models"
PORTRAIT, ENCODER = MODELS / "portrait-stylegan2.safetensors", MODELS / "portrait-stylegan2-encoder.safetensors"
LIBRARY = MODELS / "portrait-stylegan2-directions.safetensors"

# name -> (needs file or None, full args, quick args)
SUITE: dict[str, tuple[str | None, list[str], list[str]]] = {
    "generator": (None, ["bench_generator.py", "--res", "256", "1024"], ["bench_generator.py", "--res", "256", "--repeat", "2"]),
    "stylegan3": (None, ["bench_stylegan3.py", "--cases", "T256", "R256", "T1024", "R1024"], ["bench_stylegan3.py", "--cases", "T256", "--rounds", "1"]),
    "image2image": (None, ["bench_image2image.py"], ["bench_image2image.py", "--cases", "animev3-640x480", "--rounds", "1"]),
    "inversion": (str(ENCODER), ["bench_inversion.py", "--network", str(PORTRAIT), "--encoder", str(ENCODER)], ["bench_inversion.py", "--steps", "50", "--pti-steps", "30", "--skip-projector"]),
    "inversion-faces": (str(ENCODER), ["bench_inversion.py", "--network", str(PORTRAIT), "--encoder", str(ENCODER), "--targets", "faces", "--images", "8", "--no-preview"], ["bench_inversion.py", "--steps", "50", "--pti-steps", "30", "--skip-projector", "--no-preview"]),
    "edits": (str(PORTRAIT), ["bench_edits.py", "--generator", str(PORTRAIT)] + (["--library", str(LIBRARY)] if LIBRARY.exists() else []), ["bench_edits.py", "--tiny"]),
    "training": (None, ["bench_training.py"], ["bench_training.py", "--recipes", "srgan-psnr,stylegan2-64", "--rounds", "1", "--iters", "1"]),
    "worlds": (None, ["bench_worlds.py"], ["bench_worlds.py", "--batch", "8"]),
    "quality": (None, ["bench_quality.py"], ["bench_quality.py", "--quick"]),
    "perf": (None, ["bench_perf.py", "--skip-original", "sg3-R1024"], ["bench_perf.py", "--cases", "sg3-T256", "projector-256", "--rounds", "1"]),
    "gan-losses": (None, ["bench_gan_losses.py", "--configs", "logistic,r3gan,wgan-gp", "--res", "32", "--kimg", "12"],
                   ["bench_gan_losses.py", "--tiny"]),
    "restore": (str(MODELS / "restore-global.safetensors"), ["bench_restore.py"], ["bench_restore.py", "--quick"]),
    "spandrel": (None, ["bench_spandrel.py"], ["bench_spandrel.py", "--archs", "SPAN", "DnCNN", "NAFNet"]),
}  # fmt: skip


def machine() -> list[str]:
    """Facts about this machine for the report header."""
    import torch

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {cpu}, {os.cpu_count()} logical cores; load average before the run: {os.getloadavg()[0]:.2f}",
        f"- GPU: {gpu}",
        f"- Python {platform.python_version()}, torch {torch.__version__}, {platform.platform()}",
    ]


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def _header() -> str:
    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
            f"load average before: {os.getloadavg()[0]:.2f}")


def _read_sections(path: Path) -> dict[str, list[str]]:
    """The ``## name`` sections of an earlier report (``--only`` replaces just the ones it runs)."""
    if not path.is_file():
        return {}
    out: dict[str, list[str]] = {}
    current, fenced = None, False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced  # a benchmark's own '## ' lines live inside its output's fence
        if line.startswith("## ") and not fenced:
            current = line[3:].strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    for lines in out.values():
        while lines and not lines[0].strip():
            lines.pop(0)
    return out


def _relay(p: subprocess.Popen) -> tuple[str, str]:
    """Wait for ``p``, echoing its stderr (progress) as it comes; returns (stdout, stderr)."""
    import threading  # noqa: PLC0415

    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(p.stdout.read()), daemon=True)
    reader.start()
    err = []
    for line in p.stderr:
        sys.stderr.write(line)
        err.append(line)
    reader.join()
    p.wait()
    return "".join(chunks), "".join(err)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (minutes, not hours)")
    ap.add_argument("--only", nargs="*", choices=sorted(SUITE), help="run only these benchmarks")
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    ap.add_argument("--args", action="append", default=[], metavar="NAME=ARGS",
                    help="extra arguments for one benchmark, e.g. --args 'image2image=--threads 1' (repeatable)")
    args = ap.parse_args(argv)
    names = args.only or list(SUITE)
    extra: dict[str, list[str]] = {}
    for item in args.args:
        name, sep, rest = item.partition("=")
        if not sep or name not in SUITE:
            ap.error(f"--args expects NAME=ARGS with NAME one of {', '.join(SUITE)}")
        extra.setdefault(name, []).extend(shlex.split(rest))
    sections = _read_sections(Path(args.out)) if args.only else {}
    for name in names:
        lines: list[str] = []
        need, full, quick = SUITE[name]
        script, *script_args = quick if args.quick else full
        cmd = [sys.executable, str(ROOT / "bench" / script), *script_args, *extra.get(name, [])]
        lines += [f"`{' '.join(Path(c).name if i < 2 else c for i, c in enumerate(cmd))}`", ""]
        if need and not Path(need).exists():
            lines += [f"skipped: {Path(need).name} not found", ""]
            print(f"[{name}] skipped: {need} not found", flush=True)
            sections[name] = lines
            continue
        print(f"[{name}] {' '.join(cmd)}", flush=True)
        when, t0 = _header(), time.monotonic()
        r = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        out, err = _relay(r)
        took = time.monotonic() - t0
        print(out, flush=True)
        body = out.strip() or "(no output)"
        if r.returncode:
            body += f"\n\nFAILED with exit status {r.returncode}:\n" + "\n".join(err.strip().splitlines()[-5:])
        lines += ["```", body, "```", "", f"({took:.0f} s; started {when})", ""]
        sections[name] = lines
    text = ["# Benchmark results", "", *machine(), ""]
    text += ["Each section names the command that produced it (run from `bench/`), and when.", ""]
    for name in [n for n in SUITE if n in sections] + [n for n in sections if n not in SUITE]:
        text += [f"## {name}", "", *sections[name]]
    atomic_write_text(Path(args.out), "\n".join(text))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
