"""The image view: zoom (wheel, fit, 100 %), pan, before/after compare (split or hold), and an
overlay of face boxes and landmarks (landmarks can be dragged, a click on a face box picks it; neither
pans); a live preview can stand in for the result while an edit is being adjusted; in pick mode a
click reports a point in image pixels; a mask
(e.g. the damage the Restore panel found) is shown tinted, and in brush mode left-drags report
stroke segments in image pixels (the panel paints its mask, then updates the shown region)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from ganeditor.qt.convert import qimage_from_array

ZOOM_STEP = 1.25
MIN_SCALE, MAX_SCALE = 0.02, 32.0


class ImageView(QWidget):
    """Shows the current result (and the original for comparing) with overlays."""

    zoom_changed = Signal(float)
    point_picked = Signal(float, float)  # image pixel coordinates (pixel centres at integers)
    mask_stroke = Signal(float, float, float, float)  # brush segment (x0, y0) -> (x1, y1), image pixels
    stroke_finished = Signal()
    point_dragged = Signal(int, float, float)  # landmark index, new position (image pixels) while dragging
    point_dropped = Signal(int, float, float)  # ... when the drag ends
    box_clicked = Signal(int)  # index of a face box (not the selected one) clicked

    GRAB_RADIUS = 9  # widget px within which a press grabs a landmark

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.after: QPixmap | None = None
        self.before: QPixmap | None = None
        self._pixmaps: dict[int, tuple[np.ndarray, QPixmap]] = {}  # id(array) -> (array, its pixmap)
        self.scale = 1.0
        self.center = QPointF(0, 0)  # image point shown at the widget's centre
        self.auto_fit = True
        self.compare = "off"  # 'off' | 'split' | 'hold'
        self.split = 0.5  # divider position as a fraction of the width
        self.holding = False
        self.pick_mode = False
        self.placeholder = "Open a photo to start  (File ▸ Open…, or drop a file here)\nor try a sample: File ▸ Open sample"
        self.boxes: list[tuple[float, float, float, float]] = []
        self.points: list[tuple[float, float, str]] = []
        self.selected_box = 0  # highlighted face box
        self.points_editable = False  # landmarks can be dragged
        self.preview: QPixmap | None = None  # shown instead of the result while set (live edit)
        self.preview_before: QPixmap | None = None  # what compare shows meanwhile (the original photo)
        self._preview_before_src: np.ndarray | None = None
        self._drag: tuple[str, QPointF, QPointF] | None = None
        self.mask_image: QImage | None = None  # ARGB tint over the result, same size
        self.brush: float | None = None  # brush radius in image pixels; None: no brush mode
        self._brush_at: QPointF | None = None  # last brush position (widget), for the cursor and segments

    # ---------------------------------------------------------------------------- content
    def set_images(self, after: np.ndarray | None, before: np.ndarray | None = None) -> None:
        """Show ``after`` (the result); ``before`` is what compare shows (None: no compare)."""
        old = None if self.after is None else self.after.size()
        self.after, self.before = self._pixmap(after), self._pixmap(before)
        self._pixmaps = {k: v for k, v in self._pixmaps.items() if k in (id(after), id(before))}
        if self.after is None or old != self.after.size():
            self.auto_fit = True
        if self.auto_fit:
            self.fit()
        self.update()

    def _pixmap(self, pixels: np.ndarray | None) -> QPixmap | None:
        """The pixmap of ``pixels``, converted once per array (undo/redo and compare reuse it)."""
        if pixels is None:
            return None
        hit = self._pixmaps.get(id(pixels))
        if hit is None or hit[0] is not pixels:
            hit = (pixels, QPixmap.fromImage(qimage_from_array(pixels)))
            self._pixmaps[id(pixels)] = hit
        return hit[1]

    def set_overlay(self, boxes=(), points=(), selected: int = 0, editable: bool = False) -> None:
        """Face boxes (x1, y1, x2, y2) with ``selected`` highlighted, and labelled points (x, y, label),
        in image pixels; ``editable``: the points can be dragged."""
        self.boxes = [tuple(map(float, b)) for b in boxes]
        self.points = [(float(x), float(y), str(lbl)) for x, y, lbl in points]
        self.selected_box, self.points_editable = selected, editable
        self.update()

    def set_preview(self, after: np.ndarray | None, before: np.ndarray | None = None) -> None:
        """Show ``after`` (any size: it fills the result's place) instead of the result until cleared
        with None; compare then shows ``before`` (converted once while it stays the same array)."""
        self.preview = None if after is None else QPixmap.fromImage(qimage_from_array(after))
        if before is not self._preview_before_src:
            self._preview_before_src = before
            self.preview_before = None if before is None else QPixmap.fromImage(qimage_from_array(before))
        self.update()

    def _point_at(self, pos: QPointF) -> int | None:
        """Index of the landmark under ``pos`` (widget coordinates), if any."""
        best = None
        for i, (x, y, _) in enumerate(self.points):
            d = self.to_widget(QPointF(x + 0.5, y + 0.5)) - pos
            r = (d.x() ** 2 + d.y() ** 2) ** 0.5
            if r <= self.GRAB_RADIUS and (best is None or r < best[0]):
                best = (r, i)
        return None if best is None else best[1]

    def _box_at(self, pos: QPointF) -> int | None:
        """Index of a face box (other than the selected one) under ``pos``, the smallest first."""
        q = self.to_image(pos)
        hits = [((x2 - x1) * (y2 - y1), i) for i, (x1, y1, x2, y2) in enumerate(self.boxes)
                if i != self.selected_box and x1 <= q.x() - 0.5 <= x2 and y1 <= q.y() - 0.5 <= y2]  # fmt: skip
        return min(hits)[1] if hits else None

    MASK_RGBA = (255, 64, 64, 150)

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Show ``mask`` [H, W] bool tinted over the result (None hides it)."""
        if mask is None:
            self.mask_image = None
        else:
            self.mask_image = QImage(mask.shape[1], mask.shape[0], QImage.Format.Format_ARGB32_Premultiplied)
            self.update_mask(mask, 0, 0, mask.shape[1], mask.shape[0])
        self.update()

    def update_mask(self, mask: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
        """Refresh the shown mask in the region [x0, x1) x [y0, y1) from ``mask`` (after painting)."""
        if self.mask_image is None or x1 <= x0 or y1 <= y0:
            return
        r, g, b, a = self.MASK_RGBA
        argb = np.where(mask[y0:y1, x0:x1, None], np.array([b * a // 255, g * a // 255, r * a // 255, a], np.uint8),
                        np.zeros(4, np.uint8))  # premultiplied BGRA in memory
        part = QImage(np.ascontiguousarray(argb).data, x1 - x0, y1 - y0, (x1 - x0) * 4,
                      QImage.Format.Format_ARGB32_Premultiplied).copy()
        p = QPainter(self.mask_image)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.drawImage(x0, y0, part)
        p.end()
        self.update()

    def set_brush(self, radius: float | None) -> None:
        """Brush mode with ``radius`` image pixels (None: off); left-drags emit ``mask_stroke``."""
        self.brush = radius
        self.setCursor(Qt.CursorShape.BlankCursor if radius else Qt.CursorShape.ArrowCursor)
        self.update()

    def set_compare(self, mode: str) -> None:
        assert mode in ("off", "split", "hold"), mode
        self.compare = mode
        self.update()

    def set_pick_mode(self, on: bool) -> None:
        self.pick_mode = on
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)

    # ------------------------------------------------------------------------------- zoom
    def fit(self) -> None:
        """Zoom so the whole image fits (never above 100 %... unless it is tiny)."""
        if self.after is None:
            return
        w, h = self.after.width(), self.after.height()
        s = min((self.width() - 16) / max(w, 1), (self.height() - 16) / max(h, 1))
        self._set_scale(max(MIN_SCALE, min(s, 8.0 if max(w, h) < 128 else 1.0)))
        self.center = QPointF(w / 2, h / 2)
        self.auto_fit = True
        self.update()

    def actual_size(self) -> None:
        """100 %: one image pixel per screen pixel."""
        self.auto_fit = False
        self._set_scale(1.0)
        self.update()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under ``anchor`` (widget coordinates) in place."""
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        before = self.to_image(anchor)
        self._set_scale(min(MAX_SCALE, max(MIN_SCALE, self.scale * factor)))
        after = self.to_image(anchor)
        self.center += before - after
        self.auto_fit = False
        self.update()

    def _set_scale(self, s: float) -> None:
        if s != self.scale:
            self.scale = s
            self.zoom_changed.emit(s)

    def to_image(self, p: QPointF) -> QPointF:
        """Widget coordinates -> image coordinates (pixel edges at integers)."""
        return (p - QPointF(self.width() / 2, self.height() / 2)) / self.scale + self.center

    def to_widget(self, q: QPointF) -> QPointF:
        return (q - self.center) * self.scale + QPointF(self.width() / 2, self.height() / 2)

    # ----------------------------------------------------------------------------- events
    def resizeEvent(self, event) -> None:  # noqa: N802
        if self.auto_fit:
            self.fit()
        super().resizeEvent(event)

    def wheelEvent(self, event) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120
        if steps and self.after is not None:
            self.zoom_by(ZOOM_STEP**steps, event.position())

    def _near_divider(self, x: float) -> bool:
        before = self.preview_before if self.preview is not None else self.before
        return self.compare == "split" and before is not None and abs(x - self.split * self.width()) < 8

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if self.after is None:
            return
        pos = event.position()
        if event.button() == Qt.MouseButton.MiddleButton:  # pans in every mode
            self._drag = ("pan", pos, QPointF(self.center))
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if self.brush:
            q = self.to_image(pos)
            self._drag = ("brush", pos, q)
            self.mask_stroke.emit(q.x(), q.y(), q.x(), q.y())
            return
        if self.pick_mode:
            q = self.to_image(pos)
            self.point_picked.emit(q.x() - 0.5, q.y() - 0.5)
            return
        point = self._point_at(pos) if self.points_editable else None
        if point is not None:
            self._drag = ("point", pos, QPointF(point, 0))
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        box = self._box_at(pos)
        if box is not None:
            self.box_clicked.emit(box)
            return
        kind = "split" if self._near_divider(pos.x()) else "pan"
        self._drag = (kind, pos, QPointF(self.center))
        if kind == "pan":
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if self.brush:
            self._brush_at = pos
            self.update()
        if self._drag is not None and self._drag[0] == "brush":
            q, last = self.to_image(pos), self._drag[2]
            self.mask_stroke.emit(last.x(), last.y(), q.x(), q.y())
            self._drag = ("brush", pos, q)
            return
        if self._drag is not None and self._drag[0] == "point":
            i, q = int(self._drag[2].x()), self.to_image(pos)
            self.points[i] = (q.x() - 0.5, q.y() - 0.5, self.points[i][2])
            self.point_dragged.emit(i, q.x() - 0.5, q.y() - 0.5)
            self.update()
            return
        if self._drag is None:
            if self.brush:
                return
            if not self.pick_mode:
                self.setCursor(self._hover_cursor(pos))
            return
        kind, start, center = self._drag
        if kind == "split":
            self.split = min(1.0, max(0.0, pos.x() / max(self.width(), 1)))
        else:
            self.center = center - (pos - start) / self.scale
            self.auto_fit = False
        self.update()

    def _hover_cursor(self, pos: QPointF) -> Qt.CursorShape:
        if self.points_editable and self._point_at(pos) is not None:
            return Qt.CursorShape.OpenHandCursor
        if self._box_at(pos) is not None:
            return Qt.CursorShape.PointingHandCursor
        return Qt.CursorShape.SplitHCursor if self._near_divider(pos.x()) else Qt.CursorShape.ArrowCursor

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        was_brush = self._drag is not None and self._drag[0] == "brush"
        dropped = self._drag is not None and self._drag[0] == "point"
        i = int(self._drag[2].x()) if dropped else -1
        self._drag = None
        if dropped:
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            self.point_dropped.emit(i, self.points[i][0], self.points[i][1])
        elif was_brush:
            self.stroke_finished.emit()
        elif not self.pick_mode and not self.brush:
            self.setCursor(Qt.CursorShape.ArrowCursor)

    def leaveEvent(self, event) -> None:  # noqa: N802
        self._brush_at = None
        self.update()
        super().leaveEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        key = event.key()
        if key == Qt.Key.Key_Backslash and not event.isAutoRepeat():
            self.set_holding(True)
        elif key == Qt.Key.Key_F:
            self.fit()
        elif key == Qt.Key.Key_1:
            self.actual_size()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(ZOOM_STEP)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(1 / ZOOM_STEP)
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Backslash and not event.isAutoRepeat():
            self.set_holding(False)
        else:
            super().keyReleaseEvent(event)

    def set_holding(self, on: bool) -> None:
        """Hold-to-compare: show the original while held."""
        self.holding = on
        self.update()

    # ---------------------------------------------------------------------------- painting
    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#232629"))
        if self.after is None:
            p.setPen(QColor("#8a9199"))
            f = QFont(self.font())
            f.setPointSizeF(f.pointSizeF() * 1.25)
            p.setFont(f)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.scale < 2.0)
        target = QRectF(self.to_widget(QPointF(0, 0)), self.to_widget(QPointF(self.after.width(), self.after.height())))
        after = self.preview or self.after
        before = self.preview_before if self.preview is not None else self.before
        show_before = before is not None and self.holding
        if self.compare == "split" and before is not None:
            x = self.split * self.width()
            p.save()
            p.setClipRect(QRectF(0, 0, x, self.height()))
            p.drawPixmap(target, before, QRectF(before.rect()))
            p.setClipRect(QRectF(x, 0, self.width() - x, self.height()))
            p.drawPixmap(target, after, QRectF(after.rect()))
            p.restore()
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(QPointF(x, 0), QPointF(x, self.height()))
            self._label(p, QPointF(x - 8, 10), "Before", right=True)
            self._label(p, QPointF(x + 8, 10), "After")
        else:
            shown = before if show_before else after
            p.drawPixmap(target, shown, QRectF(shown.rect()))
            if show_before:
                self._label(p, QPointF(10, 10), "Before (original)")
        if self.mask_image is not None and not show_before and self.mask_image.size() == self.after.size():
            p.drawImage(target, self.mask_image, QRectF(self.mask_image.rect()))
        self._paint_overlay(p)
        if self.brush and self._brush_at is not None:
            p.setBrush(Qt.BrushStyle.NoBrush)
            for color, width in ((QColor(0, 0, 0, 180), 3), (QColor("white"), 1)):
                p.setPen(QPen(color, width))
                p.drawEllipse(self._brush_at, self.brush * self.scale, self.brush * self.scale)

    def _label(self, p: QPainter, at: QPointF, text: str, right: bool = False) -> None:
        fm = p.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 12, fm.height() + 6
        r = QRectF(at.x() - (w if right else 0), at.y(), w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 150))
        p.drawRoundedRect(r, 4, 4)
        p.setPen(QColor("white"))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)

    def _paint_overlay(self, p: QPainter) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for i, (x1, y1, x2, y2) in enumerate(self.boxes):
            p.setPen(QPen(QColor("#3daee9") if i == self.selected_box else QColor("#b0b7bf"), 2))
            p.drawRect(QRectF(self.to_widget(QPointF(x1 + 0.5, y1 + 0.5)), self.to_widget(QPointF(x2 + 0.5, y2 + 0.5))))
        for x, y, label in self.points:
            c = self.to_widget(QPointF(x + 0.5, y + 0.5))
            p.setPen(QPen(QColor("black"), 3))
            p.drawEllipse(c, 5, 5)
            p.setPen(QPen(QColor("#f6c343"), 2))
            p.drawEllipse(c, 5, 5)
            if label:
                self._label(p, c + QPointF(8, -8), label)
