"""The GUI thread's largest stall per phase, driving the real window on the demo models.

A 10 ms QTimer heartbeat runs on the GUI thread; for each phase (start-up, open, first translate,
upscale, each inversion method, paste, export, project save, training start/stop) the largest gap
between two ticks is printed.  Target: <= 100 ms in every phase (DESIGN.md section 5).

    QT_QPA_PLATFORM=offscreen python bench/bench_gui_latency.py [--steps 40] [--upscaler srgan-x4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


class Heartbeat:
    """A 10 ms timer on the GUI thread; ``gap`` is the longest time between two ticks since ``reset``."""

    def __init__(self) -> None:
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(self._tick)
        self.last = time.perf_counter()
        self.gap = 0.0
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gap = max(self.gap, now - self.last)
        self.last = now

    def reset(self) -> None:
        self.last, self.gap = time.perf_counter(), 0.0


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="optimisation steps per inversion method")
    ap.add_argument("--upscaler", default="srgan-x4", help="upscaler model name (its ×4 output of the 640×480 photo is exported)")
    args = ap.parse_args()
    from ganeditor.core.resources import resource
    from ganeditor.qt.app import create_app
    from ganeditor.qt.settings import Settings
    from ganeditor.worlds.portraits import render_portrait

    create_app()
    hb = Heartbeat()
    rows: list[tuple[str, float, float]] = []
    tmp = Path(tempfile.mkdtemp(prefix="gui-latency-"))

    def phase(name: str, start, done) -> None:
        hb.reset()
        t0 = time.perf_counter()
        start()
        pump_until(done)
        settle = time.perf_counter() + 0.05  # let the heartbeat tick once more: a stall inside start() counts
        pump_until(lambda: time.perf_counter() > settle)
        rows.append((name, hb.gap * 1000, time.perf_counter() - t0))
        print(f"{name:<28} {hb.gap * 1000:7.0f} ms {time.perf_counter() - t0:8.1f} s", flush=True)

    t0 = time.perf_counter()
    from ganeditor.qt.main_window import MainWindow  # the import is part of start-up

    win = MainWindow(Settings(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)), tmp / "autosave")
    win._discard = True  # never ask (nobody answers)
    build_s = time.perf_counter() - t0
    print(f"{'window built (not shown yet)':<28} {build_s * 1000:7.0f} ms (import + construction, before the event loop)")
    phase("start-up (scan, warm-up, load)", win.show, lambda: win.idle() and not win.portrait.sliders._pending)
    win.models.select("upscaler", args.upscaler)
    street = Image.open(resource("samples/street-day.png")).convert("RGB")
    street.resize((320, 240), Image.LANCZOS).save(tmp / "street-320.png")
    phase("open photo 640x480", lambda: win.open_path(str(resource("samples/street-day.png"))),
          lambda: win.doc.is_open and win.idle())
    phase("first translate 640x480", win.scene.run_translate, lambda: win.doc.undo_stack.count() == 1 and win.idle())
    phase("open photo 320x240", lambda: win.open_path(str(tmp / "street-320.png")), lambda: win.doc.is_open and win.idle())
    phase(f"upscale x4 ({args.upscaler}) to 1280x960", win.scene.run_upscale,
          lambda: win.doc.undo_stack.count() == 1 and win.idle())
    big = np.asarray(street.resize((2560, 1920), Image.LANCZOS))
    phase("show a 2560x1920 result", lambda: win.doc.apply_result(big, None, "Resize"), win.idle)
    phase("export PNG 2560x1920", lambda: win.export(str(tmp / "big.png")), win.idle)
    phase("save project", lambda: win.save_project(str(tmp / "work.ganedit")), win.idle)
    img, _attrs, lms = render_portrait(7, 256, return_landmarks=True)
    Image.fromarray(img).save(tmp / "face.png")
    phase("open portrait", lambda: win.open_path(str(tmp / "face.png")), lambda: win.doc.is_open and win.idle())
    p = win.portrait

    def place() -> None:
        p.points_button.setChecked(True)
        for x, y in lms:
            win.view.point_picked.emit(float(x), float(y))

    phase("align (5 points)", place, lambda: p.aligned is not None and win.idle())
    for method in ("encoder", "w", "wplus", "pti", "progressive"):
        def go(m=method) -> None:
            p.method_box.setCurrentIndex(p.method_box.findData(m))
            p.steps_box.setValue(args.steps)
            p.invert()
        phase(f"invert {method}", go, lambda: p.inverted and win.idle())
    row = next(iter(p.sliders.rows.values()))
    phase("slider previews (10 moves)", lambda: [row.slider.setValue(v) for v in range(30, 330, 30)],
          lambda: p.scheduler.idle and win.idle())
    before = win.doc.current
    phase("paste back", p.paste, lambda: win.doc.current is not before and win.idle())
    for d in ("A", "B"):
        (tmp / d).mkdir()
        for i in range(4):
            Image.fromarray((np.random.default_rng(i).random((40, 40, 3)) * 255).astype(np.uint8)).save(tmp / d / f"{i}.png")
    t = win.train
    t.folder_a.edit.setText(str(tmp / "A"))
    t.folder_b.edit.setText(str(tmp / "B"))
    t.out.edit.setText(str(tmp / "run"))
    t.steps.setValue(100000)
    t.options.setText('{"ngf": 8, "ndf": 8, "n_blocks": 2, "crop_size": 32, "load_size": 36}')
    phase("training start (3 s)", t.start, lambda: win.train_lane.current is not None and t.last_event is not None
          and t.last_event.step >= 3)
    phase("training stop", t.stop, lambda: win.train_lane.current is None)
    print(f"\nlargest GUI stall: {max(r[1] for r in rows):.0f} ms ({max(rows, key=lambda r: r[1])[0]}); target 100 ms")
    print(f"load average: {os.getloadavg()[0]:.2f} (other work on this machine slows the workers, not the GUI thread)")
    win.discard_and_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
