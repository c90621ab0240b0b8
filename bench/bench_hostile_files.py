"""Peak memory and time of the CLI on each hostile file of issue 18, one child process per file.

    python bench/bench_hostile_files.py [--tree DIR] [--cap-gib 8] [--timeout 60]

``--tree`` runs the ganeditor of another source tree (e.g. an export of an older commit) on the
same files, for before/after tables.  Each child runs ``python -m ganeditor ...`` under an
address-space limit (``--cap-gib``, so an unfixed build cannot take the machine down) and a
timeout; its peak RSS comes from ``os.wait4``.  "normal file" is ``info`` on a normal checkpoint.
The crafted files are built at the sizes of the attack (``tests/hostile_files.py``); the zip bomb
declares 1 GiB (not the attack's 5.6 GB) so that building it stays cheap.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import hostile_files as H  # noqa: E402


def run_child(tree: Path, args: list[str], cap_gib: float, timeout: float) -> dict:
    """Exit status, wall seconds, peak RSS (MiB) and the last stderr line of one CLI run."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}

    def limits() -> None:
        cap = int(cap_gib * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    err = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "ganeditor", *args], env=env, stdout=subprocess.DEVNULL,
                         stderr=err, preexec_fn=limits, cwd=tree)  # cwd: `-m` imports from the working folder
    status, rusage, timed_out = None, None, False
    while status is None:
        pid, st, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            status, rusage = st, ru
        elif time.monotonic() - t0 > timeout:
            os.kill(p.pid, signal.SIGKILL)
            timed_out = True
        else:
            time.sleep(0.02)
    seconds = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err.seek(0)
    lines = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
    return {"rc": "hung, killed" if timed_out else p.returncode, "s": seconds, "rss_mib": rusage.ru_maxrss / 1024,
            "msg": lines[-1][:150] if lines else ""}


def cases(folder: Path) -> list[tuple[str, Path, list[str]]]:
    photo = H.photo(folder)
    out = []
    for name, (build, args) in H.HOSTILE.items():
        kw = {"declared_mib": 1024} if build is H.zip_bomb_pth else {}
        f = build(folder, **kw)
        argv = [str(f) if a == "FILE" else str(photo) if a == "PHOTO" else str(folder / "out.png") if a == "OUT" else a
                for a in args]
        out.append((name, f, argv))
    marker = folder / "pwned.txt"
    ps = H.postscript_as_png(folder, marker)
    out.append(("PostScript as holiday.png", ps, ["upscale", str(REPO / "models" / "srgan-x4.safetensors"), str(ps),
                                                   str(folder / "ps_out.png")]))
    loop = H.postscript_as_png(folder, marker, loop=True)
    out.append(("PostScript { } loop as .png", loop, ["upscale", str(REPO / "models" / "srgan-x4.safetensors"),
                                                      str(loop), str(folder / "loop_out.png")]))
    os.mkfifo(folder / "fifo.png")
    out.append(("FIFO as the photo", folder / "fifo.png", ["upscale", str(REPO / "models" / "srgan-x4.safetensors"),
                                                           str(folder / "fifo.png"), str(folder / "f_out.png")]))
    os.mkfifo(folder / "fifo.pth")
    out.append(("FIFO as the checkpoint", folder / "fifo.pth", ["info", str(folder / "fifo.pth")]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", type=Path, default=REPO, help="source tree whose ganeditor runs (default: this one)")
    ap.add_argument("--cap-gib", type=float, default=8.0, help="address-space limit of each child (GiB)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a child counts as hung")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = run_child(args.tree, ["info", str(REPO / "models" / "srgan-x4.safetensors")], args.cap_gib, 300)
        print(f"tree {args.tree}; address-space cap {args.cap_gib:g} GiB; load average {os.getloadavg()[0]:.1f}\n")
        print("| file | bytes | exit | seconds | peak RSS MiB | above normal file MiB | last stderr line |")
        print("|---|---:|---|---:|---:|---:|---|")
        print(f"| normal file (`info` srgan-x4) | | {base['rc']} | {base['s']:.1f} | {base['rss_mib']:.0f} | 0 | |")
        for name, f, argv in cases(folder):
            size = f.stat().st_size if f.is_file() else 0
            r = run_child(args.tree, argv, args.cap_gib, args.timeout)
            extra = r["rss_mib"] - base["rss_mib"]
            msg = r["msg"].replace(str(folder) + "/", "").replace("|", "/")
            print(f"| {name} | {size:,} | {r['rc']} | {r['s']:.1f} | {r['rss_mib']:.0f} | {extra:+.0f} | {msg} |",
                  flush=True)
        wrote = (folder / "pwned.txt").exists()
        print(f"\nPostScript payload file written: {'YES' if wrote else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
