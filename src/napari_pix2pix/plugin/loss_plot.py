"""A small live plot of training losses and validation metrics for the Train widget.

Drawn with QPainter rather than matplotlib: a matplotlib redraw costs 100-200 ms of
Python on a small CPU, which made the viewer stutter during training; this costs ~1 ms.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

LOSS_KEYS = ("g_l1", "g_gan", "d_real", "d_fake")
METRIC_KEYS = ("mae", "psnr", "ssim", "pearson_r")
COLORS = ("#4e9af1", "#f1a84e", "#5cc85c", "#e05050")
MAX_POINTS = 400


class LossPlot(QWidget):
    """Left panel: losses against step (log scale). Right panel: validation metrics
    against step, each scaled to its own range, with the latest values in the legend and
    a dashed line at the best validation so far (``best_step``)."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(170)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.clear()

    def clear(self) -> None:
        self.steps: list[int] = []
        self.losses: dict[str, list[float]] = {k: [] for k in LOSS_KEYS}
        self.val_steps: list[int] = []
        self.metrics: dict[str, list[float]] = {k: [] for k in METRIC_KEYS}
        self.best_step: int | None = None
        self.update()

    def add_losses(self, step: int, losses: dict) -> None:
        self.steps.append(step)
        for k in LOSS_KEYS:
            self.losses[k].append(float(losses.get(k, math.nan)))
        self.update()  # Qt coalesces repaints

    def add_metrics(self, step: int, metrics: dict) -> None:
        self.val_steps.append(step)
        for k in METRIC_KEYS:
            self.metrics[k].append(float(metrics.get(k, math.nan)))
        self.update()

    def mark_best(self, step: int) -> None:
        """The validation at ``step`` is the best so far."""
        self.best_step = step
        self.update()

    def point_count(self) -> int:
        return len(self.steps)

    def paintEvent(self, event) -> None:  # Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        split = w * 0.58
        self._panel(
            painter,
            QRectF(4, 4, split - 8, h - 8),
            "losses (log)",
            self.steps,
            self.losses,
            log=True,
        )
        self._panel(
            painter,
            QRectF(split + 4, 4, w - split - 8, h - 8),
            "validation",
            self.val_steps,
            self.metrics,
            log=False,
            marker=self.best_step,
        )
        painter.end()

    def _panel(
        self,
        painter: QPainter,
        rect: QRectF,
        title: str,
        xs: list[int],
        series: dict[str, list[float]],
        log: bool,
        marker: int | None = None,
    ) -> None:
        fg = self.palette().color(self.foregroundRole())
        painter.setPen(QPen(fg, 1))
        painter.drawText(
            rect.adjusted(0, 0, 0, -rect.height() + 14), Qt.AlignmentFlag.AlignLeft, title
        )
        legend_h = 14 * ((len(series) + 1) // 2)
        plot = rect.adjusted(2, 16, -2, -legend_h - 14)
        painter.setPen(QPen(QColor(128, 128, 128), 1))
        painter.drawRect(plot)
        if xs:
            painter.setPen(QPen(fg, 1))
            painter.drawText(
                QRectF(plot.left(), plot.bottom() + 1, plot.width(), 13),
                Qt.AlignmentFlag.AlignRight,
                f"step {xs[-1]}",
            )
        stride = max(1, len(xs) // MAX_POINTS)
        x0, x1 = (xs[0], xs[-1]) if xs else (0, 1)
        if marker is not None and xs:
            mx = plot.left() + (marker - x0) / max(1, x1 - x0) * plot.width()
            painter.setPen(QPen(fg, 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(mx, plot.top()), QPointF(mx, plot.bottom()))
            painter.drawText(
                QRectF(plot.left(), plot.bottom() + 1, plot.width(), 13),
                Qt.AlignmentFlag.AlignLeft,
                f"best {marker}",
            )
        shared = [v for vals in series.values() for v in vals if _ok(v, log)] if log else []
        for i, (key, values) in enumerate(series.items()):
            color = QColor(COLORS[i % len(COLORS)])
            valid = [_tr(v, log) for v in values if _ok(v, log)]
            lo, hi = (
                (min(_tr(v, log) for v in shared), max(_tr(v, log) for v in shared))
                if log and shared
                else ((min(valid), max(valid)) if valid else (0.0, 1.0))
            )
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            points = QPolygonF()
            for x, v in zip(
                xs[::stride] + ([xs[-1]] if stride > 1 else []),
                values[::stride] + ([values[-1]] if stride > 1 else []),
            ):
                if _ok(v, log):
                    px = plot.left() + (x - x0) / max(1, x1 - x0) * plot.width()
                    py = plot.bottom() - (_tr(v, log) - lo) / (hi - lo) * plot.height()
                    points.append(QPointF(px, py))
            painter.setPen(QPen(color, 1.5))
            if points.size() == 1:
                painter.drawEllipse(points[0], 2, 2)
            painter.drawPolyline(points)
            last = values[-1] if values else math.nan
            label = f"{key} {last:.3g}" if _ok(last, False) else key
            lx = rect.left() + (i % 2) * rect.width() / 2
            ly = rect.bottom() - legend_h + 14 * (i // 2)
            painter.drawText(
                QRectF(lx, ly, rect.width() / 2, 14), Qt.AlignmentFlag.AlignLeft, label
            )


def _ok(v: float, log: bool) -> bool:
    return math.isfinite(v) and (v > 0 or not log)


def _tr(v: float, log: bool) -> float:
    return math.log10(v) if log else v
