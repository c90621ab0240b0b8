"""A small live loss plot drawn with QPainter (no plotting dependency)."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QWidget

PALETTE = ("#3daee9", "#e67e22", "#2ecc71", "#e74c3c", "#9b59b6", "#f1c40f", "#ff79c6", "#95a5a6")
MAX_POINTS = 4000  # per series; older points are thinned by half when exceeded


class LossPlot(QWidget):
    """Lines of each loss over steps, smoothed (EMA) with the raw values faint behind."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(170)
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.smoothing = 0.8
        self.log_scale = False
        self.empty_text = "Losses appear here once training starts."

    def clear(self) -> None:
        self.series.clear()
        self.update()

    def add(self, step: float, losses: dict[str, float]) -> None:
        """Append one step's losses (non-finite values are skipped)."""
        for k, v in losses.items():
            if math.isfinite(v):
                s = self.series.setdefault(k, [])
                s.append((float(step), float(v)))
                if len(s) > MAX_POINTS:
                    del s[: len(s) // 2 : 2]
        self.update()

    def _smoothed(self, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out, m = [], None
        for x, y in pts:
            m = y if m is None else self.smoothing * m + (1 - self.smoothing) * y
            out.append((x, m))
        return out

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.fillRect(self.rect(), QColor("#1e2124"))
        fm = p.fontMetrics()
        if not any(self.series.values()):
            p.setPen(QColor("#8a9199"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.empty_text)
            return
        legend = self._legend_layout(fm)
        rows = 1 + max((r for _n, _t, _x, r in legend), default=0)
        area = QRectF(46, 8, self.width() - 56, self.height() - 8 - (rows + 1) * fm.height() - 10)
        xs = [x for s in self.series.values() for x, _ in s]
        ys = [self._t(y) for s in self.series.values() for _, y in s]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if x1 == x0:
            x1 = x0 + 1
        if y1 == y0:
            y0, y1 = y0 - 0.5, y1 + 0.5
        pad = (y1 - y0) * 0.05
        y0, y1 = y0 - pad, y1 + pad

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(area.left() + (x - x0) / (x1 - x0) * area.width(),
                           area.bottom() - (self._t(y) - y0) / (y1 - y0) * area.height())  # fmt: skip

        p.setPen(QPen(QColor("#3a3f44"), 1))
        for i in range(5):
            yy = area.top() + i * area.height() / 4
            p.drawLine(QPointF(area.left(), yy), QPointF(area.right(), yy))
        p.setPen(QColor("#8a9199"))
        for i in range(5):
            v = y1 - i * (y1 - y0) / 4
            label = f"{10 ** v:.3g}" if self.log_scale else f"{v:.3g}"
            p.drawText(QRectF(0, area.top() + i * area.height() / 4 - fm.height() / 2, 42, fm.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)  # fmt: skip
        p.drawText(QRectF(area.left(), area.bottom() + 2, 80, fm.height()), Qt.AlignmentFlag.AlignLeft, f"{x0:g}")
        p.drawText(QRectF(area.right() - 120, area.bottom() + 2, 120, fm.height()), Qt.AlignmentFlag.AlignRight,
                   f"step {x1:g}")  # fmt: skip
        for i, (name, pts) in enumerate(self.series.items()):
            color = QColor(PALETTE[i % len(PALETTE)])
            if len(pts) > 1:
                faint = QColor(color)
                faint.setAlpha(60)
                self._line(p, [to_px(x, y) for x, y in pts], faint, 1)
                self._line(p, [to_px(x, y) for x, y in self._smoothed(pts)], color, 2)
            else:
                p.setPen(QPen(color, 4))
                p.drawPoint(to_px(*pts[0]))
            _n, text, lx, row = legend[i]
            ly = area.bottom() + fm.height() + 6 + row * fm.height()
            p.setPen(QPen(color, 3))
            p.drawLine(QPointF(lx, ly + fm.height() / 2), QPointF(lx + 14, ly + fm.height() / 2))
            p.setPen(QColor("#d0d4d8"))
            p.drawText(QPointF(lx + 18, ly + fm.ascent()), text)

    def _legend_layout(self, fm) -> list[tuple[str, str, float, int]]:
        """(name, text, x, row) per series, wrapping to new rows at the widget's width."""
        out, x, row = [], 46.0, 0
        for name, pts in self.series.items():
            text = f"{name} {pts[-1][1]:.3g}" if pts else name
            w = 30 + fm.horizontalAdvance(text)
            if x + w > self.width() - 4 and x > 46:
                x, row = 46.0, row + 1
            out.append((name, text, x, row))
            x += w
        return out

    def _t(self, y: float) -> float:
        return math.log10(max(y, 1e-12)) if self.log_scale else y

    @staticmethod
    def _line(p: QPainter, pts: list[QPointF], color: QColor, width: float) -> None:
        path = QPainterPath(pts[0])
        for q in pts[1:]:
            path.lineTo(q)
        p.setPen(QPen(color, width))
        p.drawPath(path)
