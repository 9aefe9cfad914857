"""A small live plot of training losses and validation metrics for the Train widget.

Drawn with QPainter rather than matplotlib: a matplotlib redraw costs 100-200 ms of
Python on a small CPU, which made the viewer stutter during training; this costs ~1 ms.
The legend names each curve in words (the engine's keys, g_l1 and such, are jargon) and
hovering an entry says what it measures, as a formula. Numbers have three significant
digits, and the axes are as wide as their values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from qtpy.QtCore import QEvent, QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QToolTip, QWidget

from ..engine.loss_terms import DRAWN_LOSSES, LOSS_TERMS

LOSS_KEYS = DRAWN_LOSSES
METRIC_KEYS = ("mae", "psnr", "ssim", "pearson_r")
DRAWN_METRICS = ("ssim", "pearson_r")  # on one fixed 0-1 axis; MAE and PSNR as numbers
COLORS = ("#4e9af1", "#f1a84e", "#5cc85c", "#e05050")
MAX_POINTS = 400
AXIS_W = 24  # the least room for the axis values left of each panel; more if they need it
DIGITS = 3  # significant digits of every number drawn
ROW = 14  # px: the least a line of text takes (more in a larger font: napari's is)

# what the legend calls each curve, and what its hover text says it is (the losses':
# engine/loss_terms.py)
NAMES = {
    **{term.name: (term.label, term.formula) for term in LOSS_TERMS},
    "ssim": (
        "SSIM",
        "SSIM: structural similarity of the prediction and the target, over the target's "
        "normalization range (1: identical; no unit).",
    ),
    "pearson_r": (
        "Pearson r",
        "Pearson r: correlation of the prediction's and the target's pixel values "
        "(1: a perfect linear match; no unit).",
    ),
    "mae": (
        "MAE",
        "MAE: mean |prediction − target|, in the target's intensity units (lower is better).",
    ),
    "psnr": (
        "PSNR",
        "PSNR: peak signal-to-noise ratio, 10 log10(1 / mean squared error) over the "
        "target's normalization range, in dB (higher is better).",
    ),
}
UNITS = {"psnr": "dB"}  # MAE: the plot's target_unit


@dataclass
class LegendEntry:
    """One legend entry as last drawn: where it is, and its hover text."""

    key: str
    text: str
    tip: str
    rect: QRectF


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
    previous run stays drawn faintly behind the new one, for comparison.
    ``target_unit``: the target's intensity unit, for MAE, where it is known."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(230)  # legends of one column (4 rows each) in a narrow dock
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.previous: Curves | None = None
        self.current = Curves()
        self.best_step: int | None = None
        self.target_unit: str | None = None
        # as last drawn, for hover texts and tests: the legend, each panel's axis values
        self.legend: list[LegendEntry] = []
        self.axis_values: dict[str, tuple[list[str], float]] = {}

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

    def catch_up(self, losses: dict) -> None:
        """Add the entries of a run's loss log (``history.losses``) after the last one
        drawn: a run that stops between entries writes its last entry at the end, and no
        step event carries it."""
        last = self.current.steps[-1] if self.current.steps else -1
        for i, step in enumerate(losses.get("step", [])):
            if step > last:
                entry = {k: v[i] for k, v in losses.items() if k != "step" and i < len(v)}
                self.add_losses(step, entry, repaint=False)
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

    def unit(self, key: str) -> str:
        """The unit a metric's value is in ('' for none)."""
        if key == "mae":
            return self.target_unit or "target units"
        return UNITS.get(key, "")

    def tip_at(self, pos) -> str:
        """The hover text of the legend entry at ``pos`` ('' if none)."""
        return next((e.tip for e in self.legend if e.rect.contains(QPointF(pos))), "")

    def event(self, event) -> bool:  # Qt's name
        if event.type() == QEvent.Type.ToolTip:
            tip = self.tip_at(event.pos())
            if tip:
                QToolTip.showText(event.globalPos(), tip, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def paintEvent(self, event) -> None:  # Qt's name
        self.legend = []
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

    def _legend_texts(self, series, keys, log) -> list[tuple[str, str]]:
        """(key, 'name value unit') of each entry of a panel's legend."""
        shown = [*keys, *(() if log else ("mae", "psnr"))]
        out = []
        for key in shown:
            last = series[key][-1] if series[key] else math.nan
            value = f" {number_text(last)} {self.unit(key)}".rstrip() if _ok(last, False) else ""
            out.append((key, NAMES[key][0] + value))
        return out

    def _panel(self, painter, rect: QRectF, title, xs_name, series_name, keys, span, log):
        fg = self.palette().color(self.foregroundRole())
        metrics = painter.fontMetrics()
        current = self.current
        xs, series = getattr(current, xs_name), getattr(current, series_name)
        legend = self._legend_texts(series, keys, log)
        # two columns where every entry fits in half the panel, else one
        widest = max(metrics.horizontalAdvance(text) for _, text in legend)
        columns = 2 if widest <= rect.width() / 2 - 6 else 1
        row = max(ROW, metrics.lineSpacing())
        legend_h = row * math.ceil(len(legend) / columns)
        ticks = [number_text(value) for value in (span[1], span[0])]
        axis_w = max(AXIS_W, max(metrics.horizontalAdvance(t) for t in ticks) + 6)
        self.axis_values[title] = (ticks, axis_w - 3)
        plot = rect.adjusted(axis_w, row + 2, -2, -legend_h - row)
        painter.setPen(QPen(fg, 1))
        # the title over the plot, clear of the axis's top value
        painter.drawText(QRectF(plot.left(), rect.top(), plot.width(), row), _LEFT, title)
        painter.setPen(QPen(QColor(128, 128, 128), 1))
        painter.drawRect(plot)
        lo, hi = (math.log10(span[0]), math.log10(span[1])) if log else span
        painter.setPen(QPen(fg, 1))
        for text, y in zip(ticks, (plot.top(), plot.bottom())):  # centred on their lines
            box = QRectF(rect.left(), y - row / 2, axis_w - 3, row)
            painter.drawText(box, _RIGHT | Qt.AlignmentFlag.AlignVCenter, text)
        runs = [r for r in (self.previous, current) if r is not None and getattr(r, xs_name)]
        x0 = min((getattr(r, xs_name)[0] for r in runs), default=0)
        x1 = max((getattr(r, xs_name)[-1] for r in runs), default=1)

        def point(x, v):
            px = plot.left() + (x - x0) / max(1, x1 - x0) * plot.width()
            py = plot.bottom() - (_tr(v, log) - lo) / max(1e-12, hi - lo) * plot.height()
            return QPointF(px, min(plot.bottom(), max(plot.top(), py)))

        if xs:
            painter.drawText(
                QRectF(plot.left(), plot.bottom() + 1, plot.width(), row), _RIGHT, f"step {xs[-1]}"
            )
        if not log and self.best_step is not None and xs:
            mx = point(self.best_step, lo).x()
            painter.setPen(QPen(fg, 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(mx, plot.top()), QPointF(mx, plot.bottom()))
            painter.drawText(
                QRectF(plot.left(), plot.bottom() + 1, plot.width(), row),
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
        column_w = rect.width() / columns
        for i, (key, text) in enumerate(legend):
            color = (
                QColor(COLORS[(i + (2 if not log else 0)) % len(COLORS)]) if i < len(keys) else fg
            )
            painter.setPen(QPen(color, 1))
            box = QRectF(
                rect.left() + (i % columns) * column_w,
                rect.bottom() - legend_h + row * (i // columns),
                column_w,
                row,
            )
            shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, int(column_w) - 2)
            painter.drawText(box, _LEFT, shown)
            tip = NAMES[key][1]
            if key == "mae" and self.target_unit:
                tip = tip.replace("the target's intensity units", self.target_unit)
            self.legend.append(LegendEntry(key, shown, tip, box))


_RIGHT = Qt.AlignmentFlag.AlignRight
_LEFT = Qt.AlignmentFlag.AlignLeft


def _ok(v: float, log: bool) -> bool:
    return math.isfinite(v) and (v > 0 or not log)


def _tr(v: float, log: bool) -> float:
    return math.log10(v) if log else v


def number_text(value: float, digits: int = DIGITS) -> str:
    """``value`` to ``digits`` significant digits, as short as that allows: '-0.0282',
    '0.5', '2030', '1.23e5', '1e-4' (an axis value the narrow axis has room for; a
    legend's value)."""
    if not math.isfinite(value) or value == 0:
        return f"{value:g}"
    rounded = float(f"{value:.{digits - 1}e}")
    exponent = math.floor(math.log10(abs(rounded)))
    if -3 <= exponent <= 3:
        text = f"{rounded:.{max(0, digits - 1 - exponent)}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa = f"{rounded / 10.0**exponent:.{digits - 1}f}".rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}"
