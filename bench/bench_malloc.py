"""Page faults and allocation modes around our image-to-image pipeline (A/B, ours only).

    python bench/bench_malloc.py cyclegan64 1024x768 --rounds 2 --modes mapped thp
    python bench/bench_malloc.py animev3 640x480 --modes mapped default heap thp

One child process per run, interleaved by rounds; each child builds the model, runs the pipeline once
to warm up, then times one run: CPU seconds (user + system), system seconds, minor page faults, peak
RSS (VmHWM).  Modes:

  mapped   what the pipeline does (``large_allocations_mapped`` for runs >= 1 MP), huge pages off
  default  glibc's own dynamic thresholds throughout, huge pages off
  heap     freed blocks kept in the heap (M_MMAP_THRESHOLD and M_TRIM_THRESHOLD 1 GiB), huge pages off
  thp      as ``mapped``, with torch's huge-page allocation (THP_MEM_ALLOC_ENABLE=1: what importing
           ganeditor sets)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import ctypes, json, resource, sys, time
sys.path[:0] = [{bench!r}, {root!r}]
import torch
torch.set_num_threads({threads})
import bench_image2image as b
from ganeditor.core import tiling_common as tc
mode, model, size = {mode!r}, {model!r}, {size!r}
if mode in ("default", "heap"):
    tc.MAPPED_FROM = 1 << 62
if mode == "heap":
    libc = ctypes.CDLL(None); libc.mallopt(-3, 1 << 30); libc.mallopt(-1, 1 << 30)
img = b.photo(size); fn = b.ours_fn(model, "exact", img)
fn()
r0 = resource.getrusage(resource.RUSAGE_SELF)
fn()
r1 = resource.getrusage(resource.RUSAGE_SELF)
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] / 1024
print(json.dumps({{"cpu": r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, "sys": r1.ru_stime - r0.ru_stime,
                  "faults": r1.ru_minflt - r0.ru_minflt, "peak_mib": hwm}}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a bench_image2image.py model: cyclegan64, daynight, x4plus, animev3, srgan")
    ap.add_argument("size", help="WxH")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--modes", nargs="+", default=["mapped", "thp"], choices=["mapped", "default", "heap", "thp"])
    a = ap.parse_args()
    res: dict[str, list[dict]] = {m: [] for m in a.modes}
    for _ in range(a.rounds):
        for m in a.modes:
            env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
            env.update(OMP_NUM_THREADS=str(a.threads), OMP_WAIT_POLICY="PASSIVE", THP_MEM_ALLOC_ENABLE="1" if m == "thp" else "0")
            code = CHILD.format(bench=str(ROOT / "bench"), root=str(ROOT), threads=a.threads, mode=m, model=a.model, size=a.size)
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
            if r.returncode:
                raise SystemExit(f"{m}: {r.stderr.strip().splitlines()[-1:]}")
            res[m].append(json.loads(r.stdout.strip().splitlines()[-1]))
    print(os.popen("uptime").read().strip())
    for m, rs in res.items():
        med = lambda k: sorted(x[k] for x in rs)[len(rs) // 2]  # noqa: E731
        print(f"{a.model} {a.size} {m:8s} cpu {med('cpu'):.2f} s (sys {med('sys'):.2f}) faults {med('faults')} "
              f"peak {max(x['peak_mib'] for x in rs):.0f} MiB  rounds {[round(x['cpu'], 2) for x in rs]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
