"""A run's report in its run folder: ``report.html``, one self-contained page that any
browser opens without Python, a network or JavaScript (the curves are inline SVG, the
examples PNG images inside the page), and ``report.json``, the same numbers for a
pipeline. Both are written atomically and replace only an earlier report of ours.

This module renders what it is given (a plain dict of numbers and lines, and the example
crops as arrays); what the numbers are is decided in workflows/run_report.py and
engine/held_out.py."""

from __future__ import annotations

import base64
import io
import json
import math
from html import escape
from pathlib import Path

import numpy as np

from .._version import __version__
from ..engine.best_model import METRICS  # +1: higher is better
from ..engine.display_text import METRIC_NAMES, metric_label
from ..engine.loss_terms import LOSS_TERMS
from ..engine.validation_examples import Example
from .output_paths import atomic_write

REPORT_NAME = "report.html"
REPORT_JSON = "report.json"
MARK = "napari-pix2pix run report"  # in both files: only those are replaced

METRIC_LABELS = {name: metric_label(name) for name in METRIC_NAMES}
PREDICTORS = {
    "model": "the kept model",
    "constant mean": "constant: training target mean",
    "rescaled source": "source rescaled (least squares)",
}
CHART_W, CHART_H = 300, 180
MAX_POINTS = 600  # points per drawn curve: more is invisible at this width


def write_report(folder, report: dict, examples: list[tuple[str, Example]]) -> Path:
    """``report.json`` and ``report.html`` into the run ``folder``; the HTML's path.
    ``examples``: (title, validation example) to show, in order."""
    folder = Path(folder)
    document = {"written_by": MARK, "version": __version__, **report}
    text = json.dumps(_plain(document), indent=1, allow_nan=False) + "\n"
    _write(folder / REPORT_JSON, text, _json_is_ours)
    return _write(folder / REPORT_NAME, render_html(document, examples), _html_is_ours)


def _write(path: Path, text: str, ours) -> Path:
    """A report replaces only a report (a resumed run's): another file of that name is
    kept, and this one is saved beside it (atomic_write says where, as an error)."""
    return atomic_write(path, text.encode("utf-8"), replace=path.exists() and ours(path))


def _json_is_ours(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("written_by") == MARK
    except (OSError, ValueError, AttributeError):
        return False


def _html_is_ours(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return f'<meta name="generator" content="{MARK}">' in fh.read(4096)
    except OSError:
        return False


def _plain(value):
    """JSON without NaN or infinity (``null``), numpy numbers as Python's."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# --- the page ---

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  margin: 24px; max-width: 1300px; color: #1d1d1f; background: #ffffff; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
h3 { font-size: 14px; margin-bottom: 4px; }
p.sub, p.note, td.caption { color: #555; font-size: 13px; }
table.scores { border-collapse: collapse; font-size: 14px; }
table.scores th, table.scores td { border-bottom: 1px solid #ddd; padding: 5px 12px;
  text-align: right; }
table.scores .name { text-align: left; }
td.best { font-weight: bold; }
table.grid td { padding: 0 8px 4px 0; vertical-align: top; text-align: left; }
table.grid img { image-rendering: pixelated; }
ul.card { font-size: 14px; }
"""


def render_html(report: dict, examples: list[tuple[str, Example]]) -> str:
    """The page: the model card, the held-out scores against the baselines, the
    learning curves and the validation examples."""
    title = f"pix2pix run report: {report.get('run_folder', '')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta name="generator" content="{MARK}">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>pix2pix run report</h1><p class=sub>{escape(str(report.get('run_folder', '')))}"
        f" · written {escape(str(report.get('time', '')))} by napari-pix2pix "
        f"{escape(str(report.get('version', '')))}</p>",
        "<h2>Model</h2>",
        "<ul class=card>" + "".join(f"<li>{escape(line)}</li>" for line in report["card"]),
        "</ul>",
        *[f"<p class=note>{escape(n)}</p>" for n in report.get("notes", [])],
        "<h2>Held-out scores</h2>",
        _held_out_html(report.get("held_out"), report.get("held_out_absent", "")),
        "<h2>Learning curves</h2>",
        _curves_html(report.get("curves", {}), report.get("kept_step")),
        "<h2>Validation examples</h2>",
        _examples_html(examples),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def number(value, metric: str = "") -> str:
    """Three significant digits ('0.0812', '30.2', '1.23e+03'); PSNR with one decimal."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if metric == "psnr":
        return f"{value:.1f}"
    return f"{value:.3g}"


def _held_out_html(held: dict | None, absent: str) -> str:
    if not held:
        return f"<p class=note>{escape(absent or 'no validation part: nothing was held out.')}</p>"
    scores = held["scores"]
    names = list(scores)
    head = "".join(f"<th>{escape(PREDICTORS.get(n, n))}</th>" for n in names)
    rows = []
    for metric, label in METRIC_LABELS.items():
        means = [scores[n][metric]["mean"] for n in names]
        finite = [m for m in means if m is not None and math.isfinite(m)]
        best = (max if METRICS[metric] > 0 else min)(finite) if finite else None
        cells = []
        for n, mean in zip(names, means):
            s = scores[n][metric]
            ci = (
                f" [{number(s['low'], metric)}, {number(s['high'], metric)}]"
                if s["low"] is not None
                else ""
            )
            css = " class=best" if mean == best and len(finite) > 1 else ""
            cells.append(f"<td{css}>{number(mean, metric)}{ci}</td>")
        rows.append(f"<tr><td class=name>{escape(label)}</td>{''.join(cells)}</tr>")
    unit = (
        f"{held['units']} tiles of about {held['tile_side']} px of the validation part "
        f"({held['images']} image{'s' if held['images'] != 1 else ''})"
        if held["unit"] == "tile"
        else f"{held['units']} validation images"
    )
    note = (
        f"Each figure is the mean over {unit}, with its {held['confidence']:.0%} bootstrap "
        f"percentile interval ({held['resamples']:,} resamples of the "
        f"{held['unit']}s) in brackets; the best of each row is in bold. MAE in the "
        "target's units; PSNR and SSIM over the target's normalization range (as in "
        "validation); a constant has no correlation (r 0). The baselines are fitted on "
        "the training part: the constant is the training target's mean, the rescaled "
        "source a least-squares a·source + b (over the source channels)."
    )
    if held["unit"] == "tile":
        note += (
            " Tiles of one image are correlated: the interval says how stable the "
            "figure is on this validation part, not what another data set would give."
        )
    return (
        f"<table class=scores><tr><th class=name>metric</th>{head}</tr>{''.join(rows)}</table>"
        f"<p class=note>{escape(note)}</p>"
    )


def _curves_html(curves: dict, kept_step) -> str:
    losses = curves.get("losses") or {}
    steps = losses.get("step") or []
    charts = [  # the terms the Train widget draws (g_total repeats them, weighted)
        svg_chart(term.label, steps, losses[term.name], kept_step)
        for term in LOSS_TERMS
        if term.drawn and len(losses.get(term.name) or []) == len(steps) > 0
    ]
    validation = curves.get("validation") or []
    for metric, label in METRIC_LABELS.items():
        points = [(v["step"], v.get(metric)) for v in validation]
        charts.append(
            svg_chart(
                f"validation {label}", [s for s, _ in points], [v for _, v in points], kept_step
            )
        )
    if not steps and not validation:
        return "<p class=note>no losses or validations were recorded.</p>"
    legend = (
        "x: training step; the dashed line marks the kept validation's step."
        if kept_step is not None
        else "x: training step."
    )
    cells = [f'<td><img alt="chart" src="{_svg_url(chart)}"></td>' for chart in charts]
    rows = ["<tr>" + "".join(cells[i : i + 4]) + "</tr>" for i in range(0, len(cells), 4)]
    return f"<table class=grid>{''.join(rows)}</table><p class=note>{legend}</p>"


def _svg_url(svg: str) -> str:
    """An SVG drawing as a data URL: inside the page like inline SVG, and drawn by
    every browser and by Qt's rich text too (which knows no inline <svg> element)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def svg_chart(title: str, xs, ys, marker=None) -> str:
    """A small line chart (points too, when there are few) as inline SVG."""
    pts = [
        (float(x), float(y))
        for x, y in zip(xs, ys)
        if x is not None and y is not None and math.isfinite(float(y))
    ]
    if len(pts) > MAX_POINTS:
        pts = [pts[int(i)] for i in np.linspace(0, len(pts) - 1, MAX_POINTS).round()]
    w, h, left, right, top, bottom = CHART_W, CHART_H, 52, 10, 22, 28
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="#fafafa" stroke="#ddd"/>',
        f'<text x="{w / 2}" y="15" text-anchor="middle" font-size="12" '
        f'fill="#222">{escape(title)}</text>',
    ]
    if not pts:
        out.append(
            f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle" fill="#888">no values</text>'
        )
        return "".join(out) + "</svg>"
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) or 1) * 0.05, y1 + (abs(y1) or 1) * 0.05
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad
    plot_w, plot_h = w - left - right, h - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * plot_h

    for tick in _ticks(y0, y1):
        out.append(
            f'<line x1="{left}" x2="{w - right}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" '
            f'stroke="#e4e4e4"/><text x="{left - 4}" y="{py(tick) + 4:.1f}" '
            f'text-anchor="end" fill="#555">{tick:.3g}</text>'
        )
    for tick in _ticks(x0, x1, 4):
        out.append(
            f'<text x="{px(tick):.1f}" y="{h - 10}" text-anchor="middle" '
            f'fill="#555">{tick:,.0f}</text>'
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbb"/>'
    )
    if marker is not None and x0 <= marker <= x1:
        out.append(
            f'<line x1="{px(marker):.1f}" x2="{px(marker):.1f}" y1="{top}" '
            f'y2="{top + plot_h}" stroke="#d04040" stroke-dasharray="4 3"/>'
        )
    line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
    out.append(f'<polyline points="{line}" fill="none" stroke="#2f6db5" stroke-width="1.5"/>')
    if len(pts) <= 30:
        out += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="#2f6db5"/>' for x, y in pts
        ]
    return "".join(out) + "</svg>"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) inside [low, high]."""
    span = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(span)) if span > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= span)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def _examples_html(examples: list[tuple[str, Example]]) -> str:
    if not examples:
        return "<p class=note>no validation examples (no validation part).</p>"
    rows = []
    for title, ex in examples:
        low, high = np.percentile(ex.target, (0.5, 99.5)) if ex.target.size else (0, 1)
        diff = ex.prediction.astype(np.float64) - ex.target
        spread = float(np.percentile(np.abs(diff), 99.5)) or 1.0
        panels = [
            ("source", _gray(ex.source, *np.percentile(ex.source, (0.5, 99.5)))),
            ("prediction", _gray(ex.prediction, low, high)),
            ("target", _gray(ex.target, low, high)),
            (f"prediction − target (±{number(spread)})", _diverging(diff, spread)),
        ]
        images = "".join(
            f'<td><img alt="{escape(name)}" src="{_png(image)}" '
            f'width="{image.shape[1] * _zoom(image)}" height="{image.shape[0] * _zoom(image)}">'
            "</td>"
            for name, image in panels
        )
        captions = "".join(f"<td class=caption>{escape(name)}</td>" for name, _ in panels)
        rows.append(
            f"<h3>{escape(title)}</h3><table class=grid><tr>{images}</tr>"
            f"<tr>{captions}</tr></table>"
        )
    note = (
        "The first validation image's centre (up to 256 px, first channel; the middle "
        "slice of a volume). Prediction and target share one grey scale "
        "(the target's 0.5-99.5 percentiles); the source has its own."
    )
    return "".join(rows) + f"<p class=note>{escape(note)}</p>"


def _zoom(image: np.ndarray) -> int:
    """Whole-number enlargement of small crops (to about 256 px on screen)."""
    return max(1, 256 // max(image.shape))


def _gray(image: np.ndarray, low: float, high: float) -> np.ndarray:
    scale = (high - low) or 1.0
    return (np.clip((np.asarray(image, np.float64) - low) / scale, 0, 1) * 255).astype(np.uint8)


def _diverging(diff: np.ndarray, spread: float) -> np.ndarray:
    """Blue (prediction below the target) through white to red (above), as RGB."""
    t = np.clip(diff / spread, -1, 1)[..., None]
    white, blue, red = (
        np.array(c, np.float64) for c in ((255, 255, 255), (40, 90, 200), (200, 40, 40))
    )
    rgb = np.where(t < 0, white + (blue - white) * -t, white + (red - white) * t)
    return rgb.round().astype(np.uint8)


def _png(image: np.ndarray) -> str:
    """A data URL of ``image`` (uint8, gray or RGB) as PNG (Pillow, a core dependency)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
