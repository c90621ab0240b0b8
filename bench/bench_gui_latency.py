"""The GUI thread's largest stall per phase, driving the real window on the demo models.

A 10 ms QTimer heartbeat runs on the GUI thread; for each phase (start-up, open, first translate,
upscale, each inversion method, paste, export, project save, training start/stop) the largest gap
between two ticks is printed, with the CPU time the GUI thread itself used inside that gap
(``time.thread_time``): on a loaded machine a gap much longer than its CPU time is the thread waiting
for a core or for the GIL held by a worker, not work done on the GUI thread.  Target: <= 100 ms in
every phase (DESIGN.md section 5).  ``--profile`` adds, per phase, the functions that used the most
GUI-thread CPU (cProfile with a thread-CPU clock); ``--stacks MS`` prints where every thread was when
the GUI thread had not ticked for MS milliseconds (``faulthandler``'s watchdog, which needs no GIL, so
it also catches a worker holding the GIL inside a C call).

    QT_QPA_PLATFORM=offscreen python bench/bench_gui_latency.py [--steps 40] [--upscaler srgan-x4] [--parts scene,portrait,training]
        [--profile] [--stacks 80]

The window runs with OpenMP's passive wait policy (``ganeditor gui`` sets it; so does this script).
``--wait-policy-ab N`` measures why, in N interleaved rounds of fresh processes: the heartbeat while a
worker thread runs convolutions, with OMP_WAIT_POLICY=PASSIVE and with OpenMP's default (spinning).
"""

from __future__ import annotations

import argparse
import cProfile
import faulthandler
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if "--wait-policy-probe" not in sys.argv:
    from ganeditor.cli import window_environment  # noqa: E402  (imports no torch)

    window_environment()  # as `ganeditor gui` does, before torch is imported

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


class Heartbeat:
    """A 10 ms timer on the GUI thread; ``gap`` is the longest time between two ticks since ``reset``
    and ``gap_cpu`` the GUI thread's own CPU time inside that gap."""

    def __init__(self, stacks_ms: float = 0.0, stacks_file=None) -> None:
        self.stacks_s, self.stacks_file = stacks_ms / 1000, stacks_file
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(self._tick)
        self.reset()
        self.timer.start()

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if now - self.last > self.gap:
            self.gap, self.gap_cpu = now - self.last, cpu - self.last_cpu
        self.last, self.last_cpu = now, cpu
        if self.stacks_file is not None:  # re-armed at every tick: it fires only inside a stall
            faulthandler.dump_traceback_later(self.stacks_s, file=self.stacks_file)

    def reset(self) -> None:
        self.last, self.last_cpu, self.gap, self.gap_cpu = time.perf_counter(), time.thread_time(), 0.0, 0.0
        if self.stacks_file is not None:
            self.stacks_file.seek(0)
            self.stacks_file.truncate()
            faulthandler.dump_traceback_later(self.stacks_s, file=self.stacks_file)

    def stall_dumps(self) -> str:
        """The stacks dumped since ``reset`` (and no more until the next one: set-up between phases
        does not tick)."""
        if self.stacks_file is None:
            return ""
        faulthandler.cancel_dump_traceback_later()
        self.stacks_file.seek(0)
        return self.stacks_file.read()


def stall_stacks(text: str, frames: int = 4) -> list[str]:
    """faulthandler dumps -> one line per thread: its innermost ``frames`` frames (the GUI thread first)."""
    gui = f"0x{threading.main_thread().ident:016x}"
    out = []
    for dump in text.split("Timeout (")[1:]:
        out.append("stall dump:")
        for block in dump.split("\nThread ")[1:]:
            head, *lines = block.strip().splitlines()
            calls = []
            for ln in lines[:frames]:
                ln = ln.strip()  # File "/x/y/z.py", line 12 in func
                if ln.startswith("File "):
                    path, _, rest = ln[6:].partition('", line ')
                    calls.append(f"{rest.split(' in ')[-1]}({Path(path).name}:{rest.split()[0]})")
            who = "GUI   " if head.startswith(gui) else "worker"
            out.append(f"  {who} " + " < ".join(calls))
    return out


def pump_until(cond, timeout_s: float = 900.0) -> float:
    """Run the event loop until ``cond()``; returns the seconds it took."""
    t = QElapsedTimer()
    t.start()
    while not cond():
        QApplication.processEvents()
        time.sleep(0.002)
        if t.elapsed() > timeout_s * 1000:
            raise TimeoutError("phase did not finish")
    return t.elapsed() / 1000


class Bench:
    """Runs the phases on one window and collects (name, stall ms, its GUI CPU ms, phase s) rows."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        stacks = open(tmp / "stacks.txt", "w+") if args.stacks else None  # noqa: SIM115 - open for the whole run
        self.hb = Heartbeat(args.stacks, stacks)
        self.rows: list[tuple[str, float, float, float]] = []
        self.win = None

    def phase(self, name: str, start, done) -> None:
        prof = cProfile.Profile(time.thread_time) if self.args.profile else None
        hb = self.hb
        hb.reset()
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        start()
        pump_until(done)
        settle = time.perf_counter() + 0.05  # let the heartbeat tick once more: a stall inside start() counts
        pump_until(lambda: time.perf_counter() > settle)
        if prof:
            prof.disable()
        self.rows.append((name, hb.gap * 1000, hb.gap_cpu * 1000, time.perf_counter() - t0))
        print(f"{name:<36} {hb.gap * 1000:5.0f} ms {hb.gap_cpu * 1000:9.0f} ms {time.perf_counter() - t0:6.1f} s", flush=True)
        if prof:
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(8)
            print("\n".join("    " + ln for ln in out.getvalue().splitlines() if ln.strip()[:1].isdigit()), flush=True)
        for ln in stall_stacks(hb.stall_dumps()):
            print("    " + ln, flush=True)

    def start_up(self) -> None:
        from ganeditor.qt.settings import Settings

        t0 = time.perf_counter()
        from ganeditor.qt.main_window import MainWindow  # the import is part of start-up

        self.win = win = MainWindow(Settings(QSettings(str(self.tmp / "s.ini"), QSettings.Format.IniFormat)), self.tmp / "autosave")
        win._discard = True  # never ask (nobody answers)
        build_s = time.perf_counter() - t0
        print(f"{'window built (not shown yet)':<36} {build_s * 1000:5.0f} ms (import + construction, before the event loop)")
        self.phase("start-up (scan, warm-up, load)", win.show, lambda: win.idle() and not win.portrait.sliders._pending)

    def scene(self) -> None:
        from ganeditor.core.resources import resource

        win, tmp, phase = self.win, self.tmp, self.phase
        win.models.select("upscaler", self.args.upscaler)
        street = Image.open(resource("samples/street-day.png")).convert("RGB")
        street.resize((320, 240), Image.LANCZOS).save(tmp / "street-320.png")
        phase("open photo 640x480", lambda: win.open_path(str(resource("samples/street-day.png"))),
              lambda: win.doc.is_open and win.idle())
        phase("first translate 640x480", win.scene.run_translate, lambda: win.doc.undo_stack.count() == 1 and win.idle())
        phase("open photo 320x240", lambda: win.open_path(str(tmp / "street-320.png")), lambda: win.doc.is_open and win.idle())
        phase(f"upscale x4 ({self.args.upscaler}) to 1280x960", win.scene.run_upscale,
              lambda: win.doc.undo_stack.count() == 1 and win.idle())
        big = np.asarray(street.resize((2560, 1920), Image.LANCZOS))
        phase("show a 2560x1920 result", lambda: win.doc.apply_result(big, None, "Resize"), win.idle)
        phase("export PNG 2560x1920", lambda: win.export(str(tmp / "big.png")), win.idle)
        phase("save project", lambda: win.save_project(str(tmp / "work.ganedit")), win.idle)

    def portrait(self) -> None:
        from ganeditor.worlds.portraits import render_portrait

        win, phase, p = self.win, self.phase, self.win.portrait
        img, _attrs, lms = render_portrait(7, 256, return_landmarks=True)
        Image.fromarray(img).save(self.tmp / "face.png")
        phase("open portrait", lambda: win.open_path(str(self.tmp / "face.png")), lambda: win.doc.is_open and win.idle())

        def place() -> None:
            p.face.points_button.setChecked(True)
            for x, y in lms:
                win.view.point_picked.emit(float(x), float(y))

        phase("align (5 points)", place, lambda: p.face.face is not None and win.idle())
        for method in ("encoder", "w", "wplus", "pti", "progressive"):
            def go(m=method) -> None:
                p.method_box.setCurrentIndex(p.method_box.findData(m))
                p.steps_box.setValue(self.args.steps)
                p.invert()
            phase(f"invert {method}", go, lambda: p.inverted and win.idle())
        row = p.sliders.row(next(iter(p.sliders.specs)))
        phase("slider previews (10 moves)", lambda: [row.slider.setValue(v) for v in range(30, 330, 30)],
              lambda: p.scheduler.idle and p.frame is not None and p.frame.full and win.idle())
        before = win.doc.current
        phase("apply (paste back)", p.apply, lambda: win.doc.current is not before and win.idle())

    def training(self) -> None:
        win, tmp, t = self.win, self.tmp, self.win.train
        for d in ("A", "B"):
            (tmp / d).mkdir()
            for i in range(4):
                Image.fromarray((np.random.default_rng(i).random((40, 40, 3)) * 255).astype(np.uint8)).save(tmp / d / f"{i}.png")
        t.folder_a.edit.setText(str(tmp / "A"))
        t.folder_b.edit.setText(str(tmp / "B"))
        t.out.edit.setText(str(tmp / "run"))
        t.steps.setValue(100000)
        t.options.setText('{"ngf": 8, "ndf": 8, "n_blocks": 2, "crop_size": 32, "load_size": 36}')
        self.phase("training start (3 s)", t.start, lambda: win.train_lane.current is not None and t.last_event is not None
                   and t.last_event.step >= 3)
        self.phase("training stop", t.stop, lambda: win.train_lane.current is None)


PARTS = ("scene", "portrait", "training")


def wait_policy_probe(seconds: float = 8.0) -> None:
    """One process: the heartbeat while a worker thread runs convolutions; prints one line of figures."""
    import threading as th

    import torch
    from PySide6.QtCore import QEventLoop

    from ganeditor.qt.app import create_app

    create_app()
    net = torch.nn.Sequential(*[torch.nn.Conv2d(32, 32, 3, padding=1) for _ in range(4)]).eval()
    x, stop, passes = torch.randn(1, 32, 96, 96), th.Event(), []

    def work() -> None:
        with torch.inference_mode():
            while not stop.is_set():
                t = time.perf_counter()
                net(x)
                passes.append(time.perf_counter() - t)

    gaps, last = [], [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer(interval=10)
    timer.timeout.connect(tick)
    timer.start()
    worker = th.Thread(target=work)
    worker.start()
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    stop.set()
    worker.join()
    gaps.sort()
    passes.sort()
    print(f"{os.environ.get('OMP_WAIT_POLICY', 'default'):<8} {gaps[-1] * 1000:6.0f} ms {gaps[int(len(gaps) * 0.99)] * 1000:6.0f} ms "
          f"{len(passes):8d} {passes[len(passes) // 2] * 1000:8.0f} ms   {os.getloadavg()[0]:.1f}", flush=True)


def wait_policy_ab(rounds: int) -> None:
    """Interleaved rounds of ``wait_policy_probe`` in fresh processes, PASSIVE and OpenMP's default."""
    import subprocess

    print(f"{'policy':<8} {'max gap':>9} {'p99 gap':>9} {'passes':>8} {'median pass':>11}   load")
    for _ in range(rounds):
        for policy in ("PASSIVE", None):
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            if policy:
                env["OMP_WAIT_POLICY"] = policy
            subprocess.run([sys.executable, __file__, "--wait-policy-probe"], env=env, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="optimisation steps per inversion method")
    ap.add_argument("--upscaler", default="srgan-x4", help="upscaler model name (its ×4 output of the 320×240 photo is shown)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"phases after start-up, any of {','.join(PARTS)}")
    ap.add_argument("--profile", action="store_true", help="print each phase's top GUI-thread functions by CPU time")
    ap.add_argument("--stacks", type=float, default=0.0, metavar="MS",
                    help="print every thread's stack when the GUI thread stalls longer than MS milliseconds")
    ap.add_argument("--wait-policy-ab", type=int, default=0, metavar="N",
                    help="instead: N interleaved rounds comparing OpenMP's passive and default wait policies")
    ap.add_argument("--wait-policy-probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.wait_policy_probe:
        wait_policy_probe()
        return 0
    if args.wait_policy_ab:
        wait_policy_ab(args.wait_policy_ab)
        return 0
    from ganeditor.qt.app import create_app

    create_app()
    bench = Bench(args, Path(tempfile.mkdtemp(prefix="gui-latency-")))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    print(f"{'phase':<36} {'stall':>8} {'its GUI CPU':>12} {'phase':>8}")
    bench.start_up()
    for part in args.parts.split(","):
        if part:
            getattr(bench, part)()
    worst = max(bench.rows, key=lambda r: r[1])
    print(f"\nlargest GUI stall: {worst[1]:.0f} ms ({worst[0]}; the GUI thread's own CPU in it: {worst[2]:.0f} ms); "
          "target 100 ms")
    print(f"largest GUI-thread CPU in a stall: {max(r[2] for r in bench.rows):.0f} ms")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    bench.win.discard_and_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
