"""The Train panel's health view: FID/KID/SWD and precision/recall/coverage over steps, the feature
space they were measured in, and the mode-collapse alarm with what to try."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ganeditor.pipelines.train.engine import TrainEvent
from ganeditor.pipelines.train.health import describe_space
from ganeditor.qt.loss_plot import LossPlot
from ganeditor.qt.widgets import hint

DISTANCES = ("fid", "kid_x1e3", "swd_x1e3")  # lower is better (log scale)
SHARES = ("precision", "recall", "coverage_min", "diversity")  # 1 is the data's own value


def _pick(metrics: dict, names: tuple[str, ...]) -> dict[str, float]:
    """Metrics whose name (without a ``_<set>`` suffix) is in ``names``."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and any(k == n or k.startswith(n + "_") for n in names)}


class HealthView(QWidget):
    """Two small plots and a line naming the feature space and the weakest attributes; ``alarm`` is a
    banner for the panel to place where it is seen first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.distances, self.shares = LossPlot(), LossPlot()
        self.distances.log_scale = True
        for plot, text in ((self.distances, "FID / KID / SWD (lower is better)"),
                           (self.shares, "precision / recall / coverage (1 = like the data)")):
            plot.smoothing = 0.0
            plot.setMinimumHeight(140)
            plot.empty_text = text + "\nappear at the first health measurement"
        self.note = hint("Health is measured every few hundred steps on a fixed set of images.")
        self.alarm = QLabel()
        self.alarm.setObjectName("alarm")
        self.alarm.setWordWrap(True)
        self.alarm.hide()
        plots = QHBoxLayout()
        plots.addWidget(self.distances, 1)
        plots.addWidget(self.shares, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(plots)
        lay.addWidget(self.note)  # the alarm banner is placed by the panel, next to the run's status line

    def clear(self) -> None:
        self.distances.clear()
        self.shares.clear()
        self.alarm.hide()

    def add(self, ev: TrainEvent) -> None:
        """Show the health figures of an event that carries them (others are ignored)."""
        m = ev.metrics
        if "feature_space" not in m:
            return
        self.distances.add(ev.step, _pick(m, DISTANCES))
        self.shares.add(ev.step, _pick(m, SHARES))
        cov = sorted((float(v), k.split("/", 1)[1]) for k, v in m.items() if k.startswith("coverage/"))
        weakest = ", ".join(f"{a} {v:.2f}×" for v, a in cov[:3])
        self.note.setText(f"Step {ev.step}, measured in {describe_space(m['feature_space'])}."
                          + (f" Least covered attributes: {weakest}." if weakest else ""))
        if ev.alarms:
            self.alarm.setText("⚠ Possible mode collapse at step {}:\n".format(ev.step)
                               + "\n".join(f"• {a.message}\n   Try: {a.advice}" for a in ev.alarms))
            self.alarm.show()
        else:
            self.alarm.hide()
