"""Cancel and quit during each kind of job, through the real window on the demo models.

Each case runs the window in its own process (offscreen) and starts the job twice: the first time it
presses Cancel (the job bar's button; Stop for training) after 1 s and measures until the job has
ended; the second time it closes the window after 1 s (answering "stop and quit") and leaves the way
``ganeditor gui`` does; the parent measures from the close request to the end of the process.
Targets (issue 11): cancel within 1 s; exit status 0 within 2 s.

    python bench/bench_gui_close.py [--kinds translate,upscale,inversion,training,training-long,restore]

training: CycleGAN at 32-px crops (steps under a second), stopped 1 s after it starts; training-long:
128-px crops (steps of seconds), stopped 1 s into a step after two whole steps, so the stop has to
give back the half step and write a checkpoint of the last whole one.

Restore runs the stages whose models the library holds (the upscale stage on realesrgan-x4plus at
least; faces left out) on the old-photo sample.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DRIVER = r"""
from ganeditor.cli import window_environment
window_environment()  # as `ganeditor gui` does, before torch is imported
import sys, time, tempfile
from pathlib import Path
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QMessageBox
from PIL import Image
from ganeditor.qt.app import create_app, leave
from ganeditor.qt.main_window import MainWindow
from ganeditor.qt.settings import Settings
from ganeditor.worlds.portraits import render_portrait
kind, tmp = sys.argv[1], Path(tempfile.mkdtemp())
first = [True]
app = create_app()
win = MainWindow(Settings(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat)), tmp / "autosave")
win.ask = lambda *a: QMessageBox.StandardButton.Yes if "Stop and quit" in a[1] else QMessageBox.StandardButton.Discard
win.show()
def pump(cond):
    while not cond():
        app.processEvents(); time.sleep(0.005)
pump(win.idle)
def start():
    if kind in ("translate", "upscale"):
        if not win.doc.is_open:
            win.open_path("resources/samples/street-day.png"); pump(lambda: win.doc.is_open and win.idle())
            win.models.select("upscaler", "srgan-x4")
        (win.scene.run_translate if kind == "translate" else win.scene.run_upscale)()
        return win.device_lane
    if kind == "inversion":
        if first[0]:
            img, _a, lms = render_portrait(7, 256, return_landmarks=True)
            Image.fromarray(img).save(tmp / "face.png")
            win.open_path(str(tmp / "face.png")); pump(lambda: win.doc.is_open and win.idle())
            win.portrait.face.points_button.setChecked(True)
            for x, y in lms:
                win.view.point_picked.emit(float(x), float(y))
            pump(lambda: win.portrait.face.face is not None and win.idle())
        p = win.portrait
        p.method_box.setCurrentIndex(p.method_box.findData("pti")); p.steps_box.setValue(5000); p.invert()
        return win.device_lane
    if kind == "restore":
        if not win.doc.is_open:
            win.open_path("resources/samples/old-photo-grace-hopper.jpg"); pump(lambda: win.doc.is_open and win.idle())
            names = {e.name for e in win.models.entries}
            for s, row in win.restore.rows.items():
                row.toggle.setChecked(s != "faces" and row.model.currentText() in names)
            print("STAGES " + ",".join(s for s, r in win.restore.rows.items() if r.toggle.isChecked()), flush=True)
        win.restore.run()
        return win.device_lane
    t = win.train
    if first[0]:
        size = 128 if kind == "training-long" else 32  # long: a CycleGAN step of several seconds on this CPU
        for d in "AB":
            (tmp / d).mkdir()
            for i in range(4):
                Image.fromarray(render_portrait(i, 48)[0]).save(tmp / d / f"{i}.png")
        t.folder_a.edit.setText(str(tmp / "A")); t.folder_b.edit.setText(str(tmp / "B")); t.out.edit.setText(str(tmp / "run"))
        t.steps.setValue(100000); t.options.setText(f'{{"crop_size": {size}, "load_size": {size * 9 // 8}}}')
    t.start()
    return win.train_lane
def run_one():
    lane = start()
    pump(lambda: lane.current is not None and lane.current.state == "running")
    if kind == "training-long":  # stop inside a step, after whole steps that a checkpoint must keep
        done = win.train.state()["step"]
        pump(lambda: win.train.state()["step"] >= done + 2)
    t_end = time.monotonic() + 1.0
    pump(lambda: time.monotonic() > t_end)
    return lane
lane = run_one()
t0 = time.monotonic()
win.train.stop() if kind.startswith("training") else win.job_bar.cancel()
pump(lambda: lane.current is None)
print(f"CANCEL {time.monotonic() - t0:.3f}", flush=True)
pump(win.idle)
first[0] = False
if kind.startswith("training"):
    print("STOPPED " + win.train.stats.text().replace("\n", " "), flush=True)
    win.train.resume.setChecked(True)
run_one()
QTimer.singleShot(0, lambda: (print(f"CLOSE {time.time():.3f}", flush=True), win.close()))
leave(win, app.exec())
print("returned: work was left running", flush=True)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default="translate,upscale,inversion,training,training-long,restore")
    args = ap.parse_args()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'job':<10} {'cancel':>8} {'close -> exit':>14} {'status':>7}")
    for kind in args.kinds.split(","):
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, kind], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        closed, cancel = None, "—"
        for line in proc.stdout:
            if line.startswith("CLOSE"):
                closed = float(line.split()[1])
            elif line.startswith("CANCEL"):
                cancel = f"{float(line.split()[1]):.2f} s"
            elif line.startswith("STOPPED"):
                print(f"({kind}: {line.split(' ', 1)[1].strip()})")
            elif line.startswith("STAGES"):
                print(f"({kind} stages: {line.split()[1] if len(line.split()) > 1 else 'none'})")
        status = proc.wait()
        end = time.time()
        took = f"{end - closed:.2f} s" if closed else "no close"
        print(f"{kind:<10} {cancel:>8} {took:>14} {status:>7}", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
