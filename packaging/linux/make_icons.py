"""Render the app icon into the freedesktop hicolor theme layout, from its one source
(``resources/icons/ganeditor.svg``): ``OUT/hicolor/<n>x<n>/apps/<APP_ID>.png`` for the standard sizes
and ``OUT/hicolor/scalable/apps/<APP_ID>.svg``.

    python packaging/linux/make_icons.py OUT        (the PyInstaller spec runs it into build/)
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

APP_ID = "io.github.ganeditor.GanEditor"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
SOURCE = Path(__file__).resolve().parents[2] / "resources" / "icons" / "ganeditor.svg"


def make_icons(out: Path, source: Path = SOURCE, sizes: tuple[int, ...] = SIZES) -> list[Path]:
    """Write the hicolor PNGs and the scalable SVG under ``out``; returns the files written."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication(sys.argv[:1])  # painting needs one (a widget app serves all)
    renderer = QSvgRenderer(str(source))
    if not renderer.isValid():
        raise SystemExit(f"{source}: not a valid SVG")
    written = []
    for n in sizes:
        img = QImage(n, n, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(Qt.GlobalColor.transparent)
        painter = QPainter(img)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        path = out / "hicolor" / f"{n}x{n}" / "apps" / f"{APP_ID}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not img.save(str(path), "PNG"):
            raise SystemExit(f"cannot write {path}")
        written.append(path)
    svg = out / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    svg.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, svg)
    return [*written, svg]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    for p in make_icons(Path(sys.argv[1])):
        print(p)
