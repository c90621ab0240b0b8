"""bench/perf_common.py: interleaved rounds in one child process per implementation, per-child
peak RSS, max 8-bit diff against the original's output, originals imported in their child only."""

import importlib.util
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _perf_common():
    spec = importlib.util.spec_from_file_location("perf_common", ROOT / "bench" / "perf_common.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("perf_common", mod)  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


SERVER = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {bench!r})
    import perf_common as pc

    name, log = sys.argv[1], sys.argv[2]

    def make():
        if name == "original":  # a checkout whose import compiles a CUDA op, as rosinality's does
            pc.prepare_original(sys.argv[3], expect=("op/fused.py",))
            from op.fused import fused  # noqa: F401
            try:
                fused.run()
            except RuntimeError as e:
                print("stubbed:", e)  # goes to the child's stderr, not to the protocol
            else:
                raise SystemExit("the stub let a compiled op run")
        big = np.ones(40_000_000 if name == "exact" else 1, np.uint8)  # 40 MB more peak memory

        def run():
            with open(log, "a") as f:
                f.write(name + "\\n")
            out = np.zeros((4, 4, 3), np.uint8)
            out[1, 2, 0] = 3 if name == "exact" else 0
            return out + big[:1]

        return run

    pc.serve(make, threads=1, to_u8=lambda a: a - 1)
""")


def test_measure_interleaves_children_and_compares_with_the_original(tmp_path):
    pc = _perf_common()
    checkout = tmp_path / "checkout"
    (checkout / "op").mkdir(parents=True)
    (checkout / "op" / "__init__.py").write_text("")
    (checkout / "op" / "fused.py").write_text(
        "from torch.utils.cpp_extension import load\nfused = load('fused', sources=['fused.cu'])\n")
    server = tmp_path / "server.py"
    server.write_text(SERVER.format(bench=str(ROOT / "bench")))
    log = tmp_path / "order.log"
    impls = {n: [sys.executable, str(server), n, str(log)] for n in ("original", "exact", "fast")}
    impls["original"].append(str(checkout))
    row = pc.measure(pc.Case("toy", impls, flops=1e9), rounds=3, threads=1)
    t = row.timings
    assert all(x.error is None for x in t.values()), {k: x.error for k, x in t.items()}
    assert log.read_text().split() == ["original", "exact", "fast"] * 4  # warm-up, then 3 interleaved rounds
    assert all(len(x.wall) == 3 and len(x.cpu) == 3 for x in t.values())
    assert t["exact"].peak_rss - t["fast"].peak_rss > 30e6  # each child's own peak
    assert pc.max_diff_u8(t["exact"].output, t["original"].output) == 3
    assert pc.max_diff_u8(t["fast"].output, t["original"].output) == 0
    table = pc.format_table([row], peak={"fp32": 100.0})
    assert table.splitlines()[0] == "| " + " | ".join(pc.COLUMNS) + " |"
    cells = table.splitlines()[2].split(" | ")
    assert cells[0] == "| toy" and "×)" in cells[2] and "exact 3, fast 0" in cells[5]


def test_a_failing_implementation_is_reported_not_fatal(tmp_path):
    pc = _perf_common()
    bad = [sys.executable, "-c", "import sys; sys.exit('no such checkout')"]
    row = pc.measure(pc.Case("toy", {"original": bad}), rounds=1, threads=1)
    assert "no such checkout" in row.timings["original"].error
    assert "failed" in pc.format_table([row])
