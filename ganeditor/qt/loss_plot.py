"""A small live loss plot drawn with QPainter (no plotting dependency); its ranges and ticks come from
``plot_axes`` (finite and non-empty for any points: none, one, constant, NaN)."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QWidget

from ganeditor.qt.plot_axes import Axes, layout, transform

PALETTE = ("#3daee9", "#e67e22", "#2ecc71", "#e74c3c", "#9b59b6", "#f1c40f", "#ff79c6", "#95a5a6")
MAX_POINTS = 4000  # per series; older points are thinned by half when exceeded
TEXT, FAINT_TEXT, GRID, BACKGROUND = "#d0d4d8", "#8a9199", "#3a3f44", "#1e2124"


class LossPlot(QWidget):
    """Lines of each loss over steps, smoothed (EMA) with the raw values faint behind; a lone point is a
    dot; values that cannot be drawn (NaN, inf; zero or less on a log scale) are counted in the legend."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(170)
        self.series: dict[str, list[tuple[float, float]]] = {}  # finite values only
        self.skipped: dict[str, int] = {}  # per series: NaN/inf values left out
        self.smoothing = 0.8
        self.log_scale = False
        self.empty_text = "Losses appear here once training starts."

    def clear(self) -> None:
        self.series.clear()
        self.skipped.clear()
        self.update()

    def add(self, step: float, losses: dict[str, float]) -> None:
        """Append one step's losses (non-finite values are counted, not drawn)."""
        for k, v in losses.items():
            s = self.series.setdefault(k, [])  # a series that is all NaN still gets its legend entry
            if not math.isfinite(v):
                self.skipped[k] = self.skipped.get(k, 0) + 1
                continue
            s.append((float(step), float(v)))
            if len(s) > MAX_POINTS:
                del s[: len(s) // 2 : 2]
        self.update()

    def axes(self, most: int = 7) -> Axes | None:
        """The ranges and (at most about ``most``) ticks the plot is drawn with; None: nothing to draw yet."""
        return layout([pt for s in self.series.values() for pt in s], self.log_scale, most)

    def legend_text(self, name: str) -> str:
        """A series' name, last value and what of it is not drawn."""
        pts = self.series.get(name, [])
        notes = [f"{n} NaN/inf skipped" for n in [self.skipped.get(name, 0)] if n]
        if self.log_scale:
            notes += [f"{n} ≤ 0 not shown" for n in [sum(y <= 0 for _, y in pts)] if n]
        head = f"{name} {pts[-1][1]:.3g}" if pts else f"{name} —"
        return head + (f" ({', '.join(notes)})" if notes else "")

    def _smoothed(self, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out, m = [], None
        for x, y in pts:
            m = y if m is None else self.smoothing * m + (1 - self.smoothing) * y
            out.append((x, m))
        return out

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.fillRect(self.rect(), QColor(BACKGROUND))
        fm = p.fontMetrics()
        if not self.series:
            p.setPen(QColor(FAINT_TEXT))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.empty_text)
            return
        legend = self._legend_layout(fm)
        rows = 1 + max((r for _n, _t, _x, r in legend), default=0)
        height = self.height() - 8 - (rows + 1) * fm.height() - 10
        axes = self.axes(most=max(2, int(height // (2 * fm.height())) + 1))  # labels two lines apart at least
        left = 10 + max((fm.horizontalAdvance(t) for _v, t in axes.yticks), default=30) if axes else 40
        area = QRectF(left, 8, self.width() - left - 10, height)
        if axes is None:
            p.setPen(QColor(FAINT_TEXT))
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, "No finite values to draw yet")
        else:
            self._draw_axes(p, fm, area, axes)
            for i, pts in enumerate(self.series.values()):
                self._draw_series(p, area, axes, pts, QColor(PALETTE[i % len(PALETTE)]))
        for i, (_name, text, lx, row) in enumerate(legend):
            color = QColor(PALETTE[i % len(PALETTE)])
            ly = area.bottom() + fm.height() + 6 + row * fm.height()
            p.setPen(QPen(color, 3))
            p.drawLine(QPointF(lx, ly + fm.height() / 2), QPointF(lx + 14, ly + fm.height() / 2))
            p.setPen(QColor(TEXT))
            p.drawText(QPointF(lx + 18, ly + fm.ascent()), text)

    def _to_px(self, area: QRectF, axes: Axes, x: float, y: float) -> QPointF:
        t = transform(y, self.log_scale)
        return QPointF(area.left() + (x - axes.x0) / (axes.x1 - axes.x0) * area.width(),
                       area.bottom() - (t - axes.y0) / (axes.y1 - axes.y0) * area.height())  # fmt: skip

    def _draw_axes(self, p: QPainter, fm, area: QRectF, axes: Axes) -> None:
        """Grid lines and labels at the ticks; the step labels kept inside the plot's width."""
        for v, text in axes.yticks:
            y = area.bottom() - (v - axes.y0) / (axes.y1 - axes.y0) * area.height()
            p.setPen(QPen(QColor(GRID), 1))
            p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            p.setPen(QColor(FAINT_TEXT))
            p.drawText(QRectF(0, y - fm.height() / 2, area.left() - 6, fm.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)  # fmt: skip
        p.setPen(QColor(FAINT_TEXT))
        for x, text in axes.xticks:
            w = fm.horizontalAdvance(text)
            px = area.left() + (x - axes.x0) / (axes.x1 - axes.x0) * area.width()
            px = min(max(px - w / 2, area.left()), area.right() - w)
            p.drawText(QPointF(px, area.bottom() + 2 + fm.ascent()), text)

    def _draw_series(self, p: QPainter, area: QRectF, axes: Axes, pts: list[tuple[float, float]], color: QColor) -> None:
        """A faint raw line and the smoothed line, or a dot for a lone point."""
        pts = [(x, y) for x, y in pts if transform(y, self.log_scale) is not None]
        if len(pts) > 1:
            faint = QColor(color)
            faint.setAlpha(60)
            self._line(p, [self._to_px(area, axes, x, y) for x, y in pts], faint, 1)
            self._line(p, [self._to_px(area, axes, x, y) for x, y in self._smoothed(pts)], color, 2)
        elif pts:
            p.setPen(QPen(QColor(BACKGROUND), 1))
            p.setBrush(color)
            p.drawEllipse(self._to_px(area, axes, *pts[0]), 4.5, 4.5)
            p.setBrush(Qt.BrushStyle.NoBrush)

    def _legend_layout(self, fm) -> list[tuple[str, str, float, int]]:
        """(name, text, x, row) per series, wrapping to new rows at the widget's width."""
        out, x, row = [], 8.0, 0
        for name in self.series:
            text = self.legend_text(name)
            w = 30 + fm.horizontalAdvance(text)
            if x + w > self.width() - 4 and x > 8:
                x, row = 8.0, row + 1
            out.append((name, text, x, row))
            x += w
        return out

    @staticmethod
    def _line(p: QPainter, pts: list[QPointF], color: QColor, width: float) -> None:
        path = QPainterPath(pts[0])
        for q in pts[1:]:
            path.lineTo(q)
        p.setPen(QPen(color, width))
        p.drawPath(path)
