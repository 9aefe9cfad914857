"""A small live plot of training losses and validation metrics for the Train widget.

Drawn with QPainter rather than matplotlib: a matplotlib redraw costs 100-200 ms of
Python on a small CPU, which made the viewer stutter during training; this costs ~1 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

LOSS_KEYS = ("g_l1", "g_gan", "d_real", "d_fake")
METRIC_KEYS = ("mae", "psnr", "ssim", "pearson_r")
DRAWN_METRICS = ("ssim", "pearson_r")  # on one fixed 0-1 axis; MAE and PSNR as numbers
COLORS = ("#4e9af1", "#f1a84e", "#5cc85c", "#e05050")
MAX_POINTS = 400
AXIS_W = 34  # room for the axis values left of each panel


@dataclass
class Curves:
    """One run's points: losses per step, metrics per validation."""

    steps: list[int] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in LOSS_KEYS})
    val_steps: list[int] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in METRIC_KEYS})


class LossPlot(QWidget):
    """Left panel: losses against step on a log axis with its values. Right panel: SSIM
    and Pearson r against step on a fixed 0-1 axis, MAE and PSNR (their own units) as
    the latest values, and a dashed line at the best validation (``best_step``). The
    previous run stays drawn faintly behind the new one, for comparison."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(190)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.previous: Curves | None = None
        self.current = Curves()
        self.best_step: int | None = None

    def clear(self) -> None:
        """A new run: the current curves become the previous run's."""
        if self.current.steps:
            self.previous = self.current
        self.current = Curves()
        self.best_step = None
        self.update()

    # the current run's points, as the tests and the widget read them
    @property
    def steps(self) -> list[int]:
        return self.current.steps

    @property
    def val_steps(self) -> list[int]:
        return self.current.val_steps

    @property
    def metrics(self) -> dict[str, list[float]]:
        return self.current.metrics

    def add_losses(self, step: int, losses: dict, repaint: bool = True) -> None:
        """``repaint`` False: drawn at the next ``update()`` (the widget's refresh)."""
        self.current.steps.append(step)
        for k in LOSS_KEYS:
            self.current.losses[k].append(float(losses.get(k, math.nan)))
        if repaint:
            self.update()

    def add_metrics(self, step: int, metrics: dict) -> None:
        self.current.val_steps.append(step)
        for k in METRIC_KEYS:
            self.current.metrics[k].append(float(metrics.get(k, math.nan)))
        self.update()

    def mark_best(self, step: int) -> None:
        """The validation at ``step`` is the best so far."""
        self.best_step = step
        self.update()

    def point_count(self) -> int:
        return len(self.current.steps)

    def loss_range(self) -> tuple[float, float]:
        """The log axis's ends (powers of ten around every loss drawn)."""
        runs = [c for c in (self.previous, self.current) if c is not None]
        values = [v for c in runs for vs in c.losses.values() for v in vs if _ok(v, True)]
        if not values:
            return 0.1, 10.0
        lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
        return 10.0**lo, 10.0 ** max(hi, lo + 1)

    def metric_range(self) -> tuple[float, float]:
        """0-1, extended below 0 when a Pearson r is negative."""
        values = [v for k in DRAWN_METRICS for v in self.current.metrics[k] if _ok(v, False)]
        return min([0.0, *values]), 1.0

    def paintEvent(self, event) -> None:  # Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        split = w * 0.55
        left = QRectF(4, 4, split - 8, h - 8)
        right = QRectF(split + 4, 4, w - split - 8, h - 8)
        lo, hi = self.loss_range()
        self._panel(painter, left, "losses", "steps", "losses", LOSS_KEYS, (lo, hi), True)
        lo, hi = self.metric_range()
        self._panel(
            painter, right, "validation", "val_steps", "metrics", DRAWN_METRICS, (lo, hi), False
        )
        painter.end()

    def _panel(self, painter, rect: QRectF, title, xs_name, series_name, keys, span, log):
        fg = self.palette().color(self.foregroundRole())
        current = self.current
        xs, series = getattr(current, xs_name), getattr(current, series_name)
        legend = [(k, series[k][-1] if series[k] else math.nan) for k in keys]
        if not log:
            legend += [(k, series[k][-1] if series[k] else math.nan) for k in ("mae", "psnr")]
        legend_h = 14 * ((len(legend) + 1) // 2)
        plot = rect.adjusted(AXIS_W, 16, -2, -legend_h - 14)
        painter.setPen(QPen(fg, 1))
        painter.drawText(QRectF(rect.left(), rect.top(), rect.width(), 14), _LEFT, title)
        painter.setPen(QPen(QColor(128, 128, 128), 1))
        painter.drawRect(plot)
        lo, hi = (math.log10(span[0]), math.log10(span[1])) if log else span
        painter.setPen(QPen(fg, 1))
        for value, y in ((span[1], plot.top() - 6), (span[0], plot.bottom() - 8)):
            text = _power_text(value) if log else f"{value:g}"
            painter.drawText(QRectF(rect.left(), y, AXIS_W - 3, 14), _RIGHT, text)
        runs = [r for r in (self.previous, current) if r is not None and getattr(r, xs_name)]
        x0 = min((getattr(r, xs_name)[0] for r in runs), default=0)
        x1 = max((getattr(r, xs_name)[-1] for r in runs), default=1)

        def point(x, v):
            px = plot.left() + (x - x0) / max(1, x1 - x0) * plot.width()
            py = plot.bottom() - (_tr(v, log) - lo) / max(1e-12, hi - lo) * plot.height()
            return QPointF(px, min(plot.bottom(), max(plot.top(), py)))

        if xs:
            painter.drawText(
                QRectF(plot.left(), plot.bottom() + 1, plot.width(), 13), _RIGHT, f"step {xs[-1]}"
            )
        if not log and self.best_step is not None and xs:
            mx = point(self.best_step, lo).x()
            painter.setPen(QPen(fg, 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(mx, plot.top()), QPointF(mx, plot.bottom()))
            painter.drawText(
                QRectF(plot.left(), plot.bottom() + 1, plot.width(), 13),
                _LEFT,
                f"best {self.best_step}",
            )
        for run in runs:
            faint = run is not current
            run_xs, run_series = getattr(run, xs_name), getattr(run, series_name)
            stride = max(1, len(run_xs) // MAX_POINTS)
            for i, key in enumerate(keys):
                values = run_series[key]
                color = QColor(COLORS[(i + (2 if not log else 0)) % len(COLORS)])
                if faint:
                    color.setAlpha(70)
                points = QPolygonF(
                    [point(x, v) for x, v in zip(run_xs[::stride], values[::stride]) if _ok(v, log)]
                    + (
                        [point(run_xs[-1], values[-1])]
                        if stride > 1 and _ok(values[-1], log)
                        else []
                    )
                )
                painter.setPen(QPen(color, 1.5))
                if points.size() == 1:
                    painter.drawEllipse(points[0], 2, 2)
                painter.drawPolyline(points)
        for i, (key, last) in enumerate(legend):
            color = (
                QColor(COLORS[(i + (2 if not log else 0)) % len(COLORS)]) if i < len(keys) else fg
            )
            painter.setPen(QPen(color, 1))
            label = f"{key} {last:.3g}" if _ok(last, False) else key
            lx = rect.left() + (i % 2) * rect.width() / 2
            ly = rect.bottom() - legend_h + 14 * (i // 2)
            painter.drawText(QRectF(lx, ly, rect.width() / 2, 14), _LEFT, label)


_RIGHT = Qt.AlignmentFlag.AlignRight
_LEFT = Qt.AlignmentFlag.AlignLeft


def _ok(v: float, log: bool) -> bool:
    return math.isfinite(v) and (v > 0 or not log)


def _tr(v: float, log: bool) -> float:
    return math.log10(v) if log else v


def _power_text(value: float) -> str:
    """A power of ten in at most four characters ('100', '0.01', '1e-4'): the axis is
    narrow."""
    k = round(math.log10(value))
    return f"{10.0**k:g}" if -2 <= k <= 3 else f"1e{k}"
