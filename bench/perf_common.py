"""Side-by-side speed measurement shared by the benchmarks: the original code vs ours, interleaved.

Each implementation of a case (``original``, ``exact``, ``fast``, ...) lives in its own child
process that builds it once and then runs it on command, so that

- rounds are interleaved (warm-up each, then A B C A B C ...; load from other jobs hits all alike),
  and only one child computes at a time;
- every child starts without ``THP_MEM_ALLOC_ENABLE`` (importing ``ganeditor`` sets it, so that torch
  backs large blocks with huge pages): ours set it themselves, the originals run as shipped;
- peak RSS is per implementation (the child's own ``ru_maxrss``, model building included);
- an original checkout given by ``--original PATH`` is imported in its child only (NVlabs
  stylegan3 and stylegan2-ada both call their packages ``training``/``torch_utils``; nothing of
  theirs is ever imported into our process or copied into our code).

A benchmark script offers a serving mode and describes its cases::

    # child side (in the script, e.g. when called with --serve CASE IMPL)
    perf_common.serve(lambda: make_callable(case, impl), threads=args.threads, to_u8=to_u8)

    # parent side
    case = perf_common.Case("StyleGAN3-R 1024", {
        "original": [sys.executable, __file__, "--serve", "R1024", "original", "--original", path],
        "exact": [sys.executable, __file__, "--serve", "R1024", "exact"],
        "fast": [sys.executable, __file__, "--serve", "R1024", "fast"]}, flops=2.48e11)
    row = perf_common.measure(case, rounds=3, threads=2)
    print(perf_common.format_table([row], peak=perf_common.conv_peak(2)))

``make_callable()`` returns a function doing one timed unit of work (one forward, one optimiser
step, ...) and returning its output; ``to_u8`` turns that output into the 8-bit image the
max-diff column compares (``None``: no comparison).  The table compares every column with the
``original`` one: ratios are the original's median time over the column's (> 1: ours is faster),
max diff is against the original's 8-bit output.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ORIGINAL = "original"  # the implementation name that ratios and max diffs refer to
METRICS = ("cpu", "wall")  # process CPU seconds (all threads; robust on a shared machine) or wall seconds


# ----------------------------------------------------------------------------------------------
# Original checkouts (call in a child process only)


def prepare_original(path: str | os.PathLike, expect: tuple[str, ...] = (), stub_modules: tuple[str, ...] = ()) -> Path:
    """Put an original checkout first on ``sys.path`` with what it needs to import on CPU here.

    Stubs (only where missing or unusable here): ``pkg_resources.parse_version`` (NVlabs
    conv2d_gradfix imports it; setuptools no longer ships it), ``torch.utils.cpp_extension.load``
    (rosinality compiles CUDA ops at import; the stub returns a module whose functions raise, the
    CPU branches never call them) and the ``stub_modules`` that are not installed (imported by
    code paths the benchmark does not run, e.g. ``imageio`` for projector.py's video).
    ``expect``: files that must exist in the checkout.
    """
    root = Path(path).expanduser().resolve()
    missing = [e for e in expect if not (root / e).exists()]
    if not root.is_dir() or missing:
        raise SystemExit(f"--original {path}: not a checkout of the original code (missing {', '.join(missing) or 'directory'})")
    sys.path.insert(0, str(root))
    for name in stub_modules:
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = _unusable(name, "not installed; stubbed by the benchmark")
    try:
        import pkg_resources  # noqa: F401, PLC0415
    except ImportError:
        from packaging.version import Version  # noqa: PLC0415

        shim = types.ModuleType("pkg_resources")
        shim.parse_version = Version  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    import torch.utils.cpp_extension as cpp  # noqa: PLC0415

    cpp.load = lambda name="ext", *a, **k: _unusable(name, "CUDA extension compilation is stubbed out by the benchmark")
    return root


def _unusable(name: str, why: str) -> types.ModuleType:
    """A module whose every attribute raises ``RuntimeError(why)``."""
    mod = types.ModuleType(name)

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):  # introspection (__file__, __path__, ...) finds nothing
            raise AttributeError(attr)
        raise RuntimeError(f"{name}.{attr}: {why}")

    mod.__getattr__ = __getattr__  # type: ignore[attr-defined]
    return mod


def add_original_arg(ap, what: str) -> None:
    """The common ``--original PATH`` option."""
    ap.add_argument("--original", metavar="PATH", default=None,
                    help=f"checkout of {what} to run side by side (imported at run time in a child process, never copied)")  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Child side


@dataclass
class Timed:
    """A served call's own timing of its unit of work (e.g. the median optimiser step inside it)."""

    wall: float  # seconds
    cpu: float  # process CPU seconds
    output: Any = None  # what ``to_u8`` compares


def serve(make: Callable[[], Callable[[], Any]], threads: int, to_u8: Callable[[Any], np.ndarray] | None = None) -> None:
    """Build the implementation with ``make()`` and answer the parent's commands on stdin.

    Commands (one per line; one JSON reply line each): ``run`` (time one call: wall and process
    CPU seconds, or what the call returns as ``Timed``), ``save PATH`` (``to_u8`` of the last output as ``.npy``), ``quit`` (peak RSS).
    Whatever the implementation prints goes to stderr so that stdout carries only replies.
    """
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)  # read when torch loads
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)

    def reply(**kw: Any) -> None:
        proto.write(json.dumps(kw) + "\n")

    try:
        fn = make()
    except Exception as e:  # the parent reports it as this implementation failing
        reply(error=f"{type(e).__name__}: {e}")
        raise
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    reply(ready=True)
    last = None
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "run":
            c, t = time.process_time(), time.perf_counter()
            last = fn()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            if isinstance(last, Timed):
                wall, cpu, last = last.wall, last.cpu, last.output
            reply(wall=wall, cpu=cpu)
        elif cmd == "save":
            if to_u8 is not None and last is not None:
                np.save(arg, np.ascontiguousarray(to_u8(last)))
            reply(saved=to_u8 is not None and last is not None)
        elif cmd == "quit":
            reply(peak_rss=peak_rss())
            return
        else:
            reply(error=f"unknown command {cmd!r}")


def peak_rss() -> int:
    """This process's peak resident memory in bytes since it was started (``VmHWM``).

    Not ``ru_maxrss``: Linux carries that over from the parent across fork + exec, so a child
    of a big process reports at least the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


# ----------------------------------------------------------------------------------------------
# Parent side


@dataclass
class Case:
    """One row of the table: how to start each implementation's serving child."""

    name: str  # row label, e.g. "StyleGAN3-R 1024"
    impls: dict[str, list[str]]  # implementation -> command line of its serving child
    flops: float | None = None  # FLOPs of one call (for the floor), None = no floor
    floor_impl: str = "exact"  # the implementation whose time is divided by the floor
    note: str = ""  # footnote (what "original" runs, the loss, ...)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the children


@dataclass
class Timing:
    """One implementation's measurements."""

    wall: list[float] = field(default_factory=list)  # seconds per timed call
    cpu: list[float] = field(default_factory=list)  # process CPU seconds per timed call
    peak_rss: int | None = None  # bytes
    output: np.ndarray | None = None  # 8-bit output of the last call
    error: str | None = None

    def median(self, metric: str) -> float:
        v = self.cpu if metric == "cpu" else self.wall
        return statistics.median(v) if v else math.nan


@dataclass
class Row:
    case: Case
    timings: dict[str, Timing]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    threads: int
    rounds: int


def child_env(threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a measuring child: our tree first on the path, ``threads`` OpenMP threads."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **(extra or {}))
    env.pop("THP_MEM_ALLOC_ENABLE", None)  # importing ganeditor sets it for ours; the originals run as shipped
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


class _Child:
    def __init__(self, name: str, argv: list[str], threads: int, env: dict[str, str], log_dir: str):
        self.name = name
        self.log = Path(log_dir) / f"{name}.log"
        full_env = child_env(threads, env)
        with open(self.log, "w") as err:
            self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                      bufsize=1, cwd=ROOT, env=full_env)  # fmt: skip

    def ask(self, cmd: str | None) -> dict:
        try:
            if cmd is not None:
                self.p.stdin.write(cmd + "\n")
                self.p.stdin.flush()
            line = self.p.stdout.readline()
        except OSError:  # the child died
            line = ""
        if not line:
            self.p.wait()
            tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
            return {"error": f"exited with status {self.p.returncode}: {' | '.join(tail) or 'no output'}"}
        return json.loads(line)

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def load() -> tuple[float, float, float]:
    """The 1/5/15-minute load averages (what ``uptime`` prints)."""
    return os.getloadavg()


def measure(case: Case, rounds: int = 3, threads: int = 2, warmup: int = 1, compare: bool = True) -> Row:
    """Time every implementation of ``case`` in interleaved rounds, each in its own process."""
    assert rounds >= 1
    timings = {name: Timing() for name in case.impls}
    before = load()
    with tempfile.TemporaryDirectory(prefix="perf-") as tmp:
        children: dict[str, _Child] = {}
        try:
            for name, argv in case.impls.items():  # built one after another: building is not timed
                child = _Child(name, argv, threads, case.env, tmp)
                r = child.ask(None)
                if "error" in r:
                    timings[name].error = r["error"]
                    child.close()
                    continue
                children[name] = child
            for i in range(warmup + rounds):
                for name, child in list(children.items()):
                    r = child.ask("run")
                    if not _checked(r, timings[name]):
                        children.pop(name).close()
                    elif i >= warmup:
                        timings[name].wall.append(r["wall"])
                        timings[name].cpu.append(r["cpu"])
            for name, child in children.items():
                if compare and not timings[name].error:
                    path = str(Path(tmp) / f"{name}.npy")
                    if child.ask(f"save {path}").get("saved"):
                        timings[name].output = np.load(path)
                r = child.ask("quit")
                timings[name].peak_rss = r.get("peak_rss")
        finally:
            for child in children.values():
                child.close()
    return Row(case, timings, before, load(), threads, rounds)


def _checked(reply: dict, timing: Timing) -> bool:
    if "error" in reply:
        timing.error = timing.error or reply["error"]
        return False
    return True


def max_diff_u8(a: np.ndarray | None, b: np.ndarray | None) -> int | None:
    """Largest absolute difference of two 8-bit images (None if either is missing or shapes differ)."""
    if a is None or b is None or a.shape != b.shape:
        return None
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def conv_peak(threads: int, metric: str = "cpu", repeat: int = 5) -> dict[str, float]:
    """GFLOP/s of a 3x3 512->512 conv at 64x64 (fp32, and bf16 channels_last), in ``metric`` seconds."""
    import torch  # noqa: PLC0415
    import torch.nn.functional as F  # noqa: PLC0415

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x, w = torch.randn(1, 512, 64, 64), torch.randn(512, 512, 3, 3)
        flops = 2 * 64 * 64 * 512 * 512 * 9
        out = {}
        cl = torch.channels_last
        for key, (xx, ww) in {"fp32": (x, w), "bf16": (x.to(memory_format=cl).bfloat16(), w.to(memory_format=cl).bfloat16())}.items():
            F.conv2d(xx, ww, padding=1)
            ts = []
            for _ in range(repeat):
                c, t = time.process_time(), time.perf_counter()
                F.conv2d(xx, ww, padding=1)
                ts.append(time.process_time() - c if metric == "cpu" else time.perf_counter() - t)
            out[key] = flops / statistics.median(ts) / 1e9
        return out
    finally:
        torch.set_num_threads(old)


# ----------------------------------------------------------------------------------------------
# The combined table

COLUMNS = ("case", "original", "ours exact (×)", "ours fast (×)", "× floor", "max 8-bit diff vs original", "peak RSS each side")


def _secs(t: Timing | None, metric: str, ref: Timing | None) -> str:
    if t is None:
        return "—"
    if t.error:
        return "failed"
    s = t.median(metric)
    if ref is None or ref.error or t is ref or not ref.cpu:
        return f"{s:.3g} s"
    return f"{s:.3g} s ({ref.median(metric) / s:.2f}×)"


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.2f}"


def row_cells(row: Row, metric: str = "cpu", peak: dict[str, float] | None = None) -> list[str]:
    """The table cells of one row."""
    t = row.timings
    orig = t.get(ORIGINAL)
    floor = "—"
    fi = t.get(row.case.floor_impl)
    if row.case.flops and peak and fi is not None and fi.cpu:
        floor = f"{fi.median(metric) / (row.case.flops / (peak['fp32'] * 1e9)):.2f}"
    diffs = []
    for name in t:
        if name != ORIGINAL and orig is not None:
            d = max_diff_u8(t[name].output, orig.output)
            if d is not None:
                diffs.append(f"{name} {d}")
    rss = " · ".join(f"{name} {_gib(tt.peak_rss)}" for name, tt in t.items() if tt.peak_rss is not None)
    return [row.case.name, _secs(orig, metric, None), _secs(t.get("exact"), metric, orig), _secs(t.get("fast"), metric, orig),
            floor, ", ".join(diffs) or "—", (rss + " GiB") if rss else "—"]  # fmt: skip


def format_table(rows: list[Row], metric: str = "cpu", peak: dict[str, float] | None = None) -> str:
    """The combined markdown table, then footnotes (notes, loads, raw medians and spreads)."""
    assert metric in METRICS
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row_cells(r, metric, peak)) + " |" for r in rows]
    how = "process CPU seconds (all threads)" if metric == "cpu" else "wall seconds"
    lines += ["", f"Times: median {how} of the interleaved rounds; (×) = original ÷ ours (> 1: ours faster); "
              f"× floor = {rows[0].case.floor_impl if rows else 'exact'} ÷ (FLOPs ÷ fp32 conv peak"
              + (f" {peak['fp32']:.0f} GFLOP/s" if peak else "") + ")."]  # fmt: skip
    for r in rows:
        raw = "; ".join(
            f"{name}: " + (f"failed ({tt.error})" if tt.error else
                           f"wall {tt.median('wall'):.3g} s [{min(tt.wall):.3g}-{max(tt.wall):.3g}], cpu {tt.median('cpu'):.3g} s")
            for name, tt in r.timings.items())  # fmt: skip
        lb, la = r.load_before, r.load_after
        lines.append(f"- {r.case.name}: {r.rounds} rounds, {r.threads} threads, load {lb[0]:.2f} -> {la[0]:.2f}; {raw}"
                     + (f". {r.case.note}" if r.case.note else ""))  # fmt: skip
    return "\n".join(lines)


def uptime() -> str:
    """The ``uptime`` line (load averages) for a report."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{v:.2f}" for v in load())
