"""Build the one-folder bundle and try it as a user would; prints its size and start-up times.

    python packaging/check_bundle.py [--no-build] [--dist dist]

Not part of the test run (a build takes minutes and GBs).  From the repository root it:
1. builds ``dist/ganeditor`` with ``pyinstaller --noconfirm packaging/ganeditor.spec`` (unless --no-build);
2. prints the bundle's size and its largest parts;
3. runs the bundle offscreen with a fresh HOME: ``--version``, the window rendered to a PNG with
   ``gui PHOTO --screenshot`` (wall time from launch to the written screenshot, models loaded), and
   ``upscale`` on a sample photo, whose output must carry the AI provenance (read by exiftool if present);
4. checks nothing was written inside the bundle: every run of step 3 finds the bundle read-only
   (``chmod -R a-w``; as root it runs as the user nobody, since root ignores file modes), and every
   file's size and time stamp are compared before and after (and no new file);
5. makes a broken install (a hard-linked copy without one demo model) and checks the window still opens.
Exit status 1 if any check fails.  Screenshots are kept in ``build/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime_ns) of every file under ``folder``."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}  # fmt: skip


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


NOBODY = 65534


def unprivileged() -> list[str]:
    """Prefix that runs a command as the user nobody when we are root (root may write read-only files)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return []
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


def run(cmd: list[str], env: dict, timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    r = subprocess.run(unprivileged() + cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return r, time.perf_counter() - t0


def read_only(folder: Path, on: bool) -> None:
    """``chmod -R a-w`` (on) or ``u+w`` (off) of the installed folder."""
    subprocess.run(["chmod", "-R", "a-w" if on else "u+w", str(folder)], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-build", action="store_true", help="check an existing dist/ganeditor")
    ap.add_argument("--dist", default=str(ROOT / "dist"), help="PyInstaller's dist folder")
    args = ap.parse_args()
    bundle = Path(args.dist) / "ganeditor"
    failures: list[str] = []
    if not args.no_build:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--distpath", args.dist,
                        str(ROOT / "packaging" / "ganeditor.spec")], cwd=ROOT, check=True)  # fmt: skip
        print(f"build: {time.perf_counter() - t0:.0f} s")
    exe = bundle / "ganeditor"
    if not exe.is_file():
        print(f"no bundle at {bundle}")
        return 1
    inner = bundle / "_internal"
    print(f"bundle: {bundle}  {du(bundle) / 1e9:.2f} GB in {sum(1 for _ in bundle.rglob('*'))} files")
    parts = sorted(((du(p) if p.is_dir() else p.lstat().st_size, p.name) for p in inner.iterdir()), reverse=True)
    dangling = [p.name for p in inner.iterdir() if p.is_symlink() and not p.exists()]
    if dangling:
        failures.append(f"dangling links in the bundle: {dangling}")
    for size, name in parts[:8]:
        print(f"  {size / 1e6:8.0f} MB  _internal/{name}")

    (ROOT / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ganeditor-check-") as tmp:
        tmp = Path(tmp)
        (tmp / "home").mkdir()
        if unprivileged():  # the runs (as nobody) write their HOME and outputs here
            os.chmod(tmp, 0o755)
            for p in (tmp, tmp / "home"):
                os.chown(p, NOBODY, NOBODY)
        else:
            print("not root: the runs are this user's (the read-only modes still apply)")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GANEDITOR_", "PYTHON", "XDG_"))}
        env.update(HOME=str(tmp / "home"), QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"))
        before = snapshot(bundle)
        read_only(bundle, True)
        try:
            failures += try_bundle(bundle, tmp, env)
        finally:
            read_only(bundle, False)
        after = snapshot(bundle)
        changed = sorted(k for k in after if before.get(k) != after[k]) + sorted(set(before) - set(after))
        print(f"written inside the (read-only) bundle: {changed[:10] if changed else 'nothing'}")
        if changed:
            failures.append(f"the bundle was written to: {changed[:10]}")
        failures += try_broken_install(bundle, tmp, env)
    for f in failures:
        print(f"FAILED: {f}")
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


def try_bundle(bundle: Path, tmp: Path, env: dict) -> list[str]:
    """--version, the window's screenshots (timed) and a command whose output must carry provenance."""
    failures: list[str] = []
    exe, inner = bundle / "ganeditor", bundle / "_internal"
    r, dt = run([str(exe), "--version"], env)
    print(f"--version: {r.stdout.strip()!r} in {dt:.2f} s")
    if r.returncode or not r.stdout.startswith("ganeditor "):
        failures.append(f"--version: {r.stderr.strip()[-300:]}")
    photo = inner / "resources" / "samples" / "street-day.png"
    for label, extra in (("window (empty, first run)", []), ("window with a photo", [str(photo)])):
        shot = tmp / f"shot{len(extra)}.png"
        r, dt = run([str(exe), "gui", *extra, "--screenshot", str(shot), "--size", "1280x800"], env)
        ok = r.returncode == 0 and shot.is_file()
        print(f"start-up, {label}: {dt:.1f} s to the written screenshot ({'ok' if ok else 'FAILED'})")
        if not ok:
            failures.append(f"screenshot: {r.stderr.strip()[-500:]}")
        elif extra:
            shutil.copyfile(shot, ROOT / "build" / "bundle-screenshot.png")
    out = tmp / "cat-x4.png"
    small = inner / "resources" / "samples" / "cat-small.jpg"
    r, dt = run([str(exe), "upscale", "srgan-x4", str(small), str(out)], env)
    print(f"upscale srgan-x4 225x150 -> 900x600: {dt:.1f} s (rc {r.returncode})")
    if r.returncode:
        failures.append(f"upscale: {r.stderr.strip()[-300:]}")
    elif shutil.which("exiftool"):
        meta = json.loads(subprocess.run(["exiftool", "-j", "-DigitalSourceType", "-HistoryParameters", str(out)],
                                         capture_output=True, text=True).stdout)[0]  # fmt: skip
        print(f"  exiftool: {meta.get('DigitalSourceType')} / {meta.get('HistoryParameters')}")
        if "compositeWithTrainedAlgorithmicMedia" not in str(meta.get("DigitalSourceType")):
            failures.append("upscale output lacks the IPTC digital source type")
    return failures


def try_broken_install(bundle: Path, tmp: Path, env: dict) -> list[str]:
    """A copy of the bundle that lost a demo model: the window must still open (and say so)."""
    broken = tmp / "broken"
    subprocess.run(["cp", "-al", str(bundle), str(broken)], check=True)  # hard links: no copy of the GBs
    (broken / "_internal" / "models" / "daynight-cyclegan.safetensors").unlink()
    shot = tmp / "broken.png"
    r, dt = run([str(broken / "ganeditor"), "gui", "--screenshot", str(shot)], env)
    ok = r.returncode == 0 and shot.is_file()
    print(f"broken install (a demo model removed): window opens: {'yes' if ok else 'NO'} ({dt:.1f} s)")
    if ok:
        shutil.copyfile(shot, ROOT / "build" / "bundle-broken-install.png")
        return []
    return [f"broken install: {r.stderr.strip()[-500:]}"]


if __name__ == "__main__":
    raise SystemExit(main())
