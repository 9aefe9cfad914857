"""The error map: the spread over the 8 flips/rotations turned into the expected absolute
error in the target's units, calibrated on the run's validation data.

The spread (inference.predict_with_spread) ranks pixels by how wrong they are likely to
be (Pearson r 0.4-0.7 with the error, docs/quality.md), but its scale is not the
error's: a model can be consistently wrong in all 8 orientations. The calibration is a
monotone map from spread to the mean absolute error of the plain prediction, fitted per
output channel on validation pixels:

- binned, then made monotone (isotonic regression over the bins' means): no shape is
  assumed (the relation is neither linear nor proportional; a flat background has no
  spread and some error), a larger spread never means a smaller expected error, and
  the map is a few dozen numbers that a model file keeps as plain JSON;
- equal-count bins (quantiles of the spread), so every bin's mean rests on as many
  pixels; the map interpolates linearly between the bins' mean spreads (np.interp),
  stays flat below the first (the error floor of the calmest pixels) and, beyond the
  last, goes on along the line through the first and last bins: held-out data has
  larger spreads than validation (0.5-8 % of the pixels of the four tasks), and flat
  there the largest errors were read 40 % too low (MR 3D: expected 19.5 against 32.7
  observed in the top bin, 32.4 along the line; docs/quality.md). The line, not the
  last bin's error per unit of spread: a map that is flat (errors that do not grow
  with the spread) stays flat.

``reliability`` measures a calibration on other data: per bin of the expected error,
the mean expected against the mean observed error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelFileError
from .inference import TiledPredictor, predict_with_spread

BINS = 16  # bins of the fit: ~60,000 pixels each at the default cap
MAX_PIXELS = 1_000_000  # validation pixels predicted 8 times at most (the cost's bound)
# the share of each validation sample's rows (slices) predicted 8 times: the calibration
# then costs about 4-5 validations (the demo recipe's 400-step run: 6.6 % with all of it,
# about 2.5 % with half); a quarter, 2 %, read the held-out error 1.2-1.9x too high or
# low where half and all of it agreed within 0.9-1.2x (docs/quality.md)
SHARE = 0.5
MIN_ROWS = 16
RELIABILITY_BINS = 8


@dataclass(frozen=True)
class ChannelMap:
    """One output channel's map: the bins' edges, their mean spread, the expected error
    (their mean absolute error, made non-decreasing) and their pixel counts."""

    edges: np.ndarray  # (bins + 1,) spread at the bins' boundaries
    spread: np.ndarray  # (bins,) mean spread, strictly increasing
    error: np.ndarray  # (bins,) expected absolute error, non-decreasing
    count: np.ndarray  # (bins,) validation pixels


@dataclass(frozen=True)
class ErrorCalibration:
    """Spread -> expected absolute error, one ChannelMap per output channel, with the
    number of validation pixels it was fitted on and the target's range there (its
    units' scale, for a reader of the model file)."""

    channels: list[ChannelMap]
    pixels: int
    target_range: list[tuple[float, float]]

    @classmethod
    def fit(cls, spread, error, target, bins: int = BINS) -> ErrorCalibration:
        """Fit on validation samples: lists of (C, *spatial) arrays of the spread, the
        absolute error of the plain prediction and the target (or single arrays)."""
        spread, error, target = (_by_channel(a) for a in (spread, error, target))
        channels = [_fit_channel(s, e, bins) for s, e in zip(spread, error)]
        ranges = [(float(t.min()), float(t.max())) for t in target]
        return cls(channels, int(spread[0].size), ranges)

    def expected_error(self, spread: np.ndarray, channel_axis: int | None) -> np.ndarray:
        """The expected absolute error for a spread array laid out as ``predict`` returns
        it (``channel_axis``: where its C axis is, None with one channel)."""
        spread = np.asarray(spread, np.float32)
        if channel_axis is None:
            return _apply(self.channels[0], spread)
        out = np.empty_like(spread)
        for c, m in enumerate(self.channels):
            index = (slice(None),) * channel_axis + (c,)
            out[index] = _apply(m, spread[index])
        return out

    def summary(self) -> str:
        bins = len(self.channels[0].spread)
        return f"error calibration: {bins} bins from {self.pixels:,} validation pixels"

    def to_dict(self) -> dict:
        """Plain JSON: what the model document stores under "error_calibration"."""
        return {
            "method": "isotonic over equal-count bins of the 8-fold spread",
            "pixels": self.pixels,
            "target_range": [list(r) for r in self.target_range],
            "channels": [
                {
                    "edges": m.edges.tolist(),
                    "spread": m.spread.tolist(),
                    "expected_error": m.error.tolist(),
                    "count": m.count.tolist(),
                }
                for m in self.channels
            ],
        }

    @classmethod
    def from_dict(cls, data: dict, out_channels: int) -> ErrorCalibration:
        """Read back a model document's calibration, checked: a damaged one is refused
        with a ModelFileError rather than turning into a wrong error map."""
        try:
            channels = [
                ChannelMap(
                    np.asarray(c["edges"], np.float64),
                    np.asarray(c["spread"], np.float64),
                    np.asarray(c["expected_error"], np.float64),
                    np.asarray(c["count"], np.int64),
                )
                for c in data["channels"]
            ]
            calibration = cls(
                channels,
                int(data["pixels"]),
                [(float(lo), float(hi)) for lo, hi in data["target_range"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"the model's error calibration cannot be read ({exc!r}); predict without "
                "uncertainty, or retrain to calibrate again."
            ) from exc
        for m in channels:
            n = len(m.spread)
            ok = (
                n >= 1
                and m.edges.shape == (n + 1,)
                and m.error.shape == m.count.shape == (n,)
                and np.all(np.isfinite(m.spread))
                and np.all(np.isfinite(m.error))
                and np.all(np.diff(m.spread) > 0)
                and np.all(np.diff(m.error) >= 0)
            )
            if not ok:
                raise ModelFileError(
                    "the model's error calibration is damaged (its bins are not increasing "
                    "or not finite); predict without uncertainty, or retrain."
                )
        if len(channels) != out_channels:
            raise ModelFileError(
                f"the model's error calibration has {len(channels)} channel(s) but the model "
                f"predicts {out_channels}; predict without uncertainty, or retrain."
            )
        return calibration


def calibrate(
    predictor: TiledPredictor,
    samples: list,
    context: int = 0,
    max_pixels: int = MAX_PIXELS,
    bins: int = BINS,
    share: float = SHARE,
) -> ErrorCalibration | None:
    """Predict validation ``samples`` ((source, target) pairs, (C, *spatial)) with their
    spread and fit the calibration on their scored columns (after ``context``): of each
    sample, the central ``share`` of its first spatial axis (rows, or slices of a
    volume; at least MIN_ROWS), and at most ``max_pixels`` scored pixels in all (samples
    in order, the last one cut to fit), so the 8 predictions cost about 8 x ``share``
    validation passes and never more than 8 passes over a million pixels. None without
    samples."""
    spreads, errors, targets, left = [], [], [], max_pixels
    for source, target in samples:
        source, target = _cut(source, target, context, left, share)
        if source is None:
            break
        dims = source.ndim - 1
        axes = "C" + "ZYX"[-dims:]
        pred, spread = predict_with_spread(
            predictor, np.asarray(source), axes, axes, target.shape[0], dims
        )
        target = np.asarray(target, np.float32)[..., context:]
        pred, spread = pred[..., context:], spread[..., context:]
        spreads.append(spread)
        errors.append(np.abs(pred - target))
        targets.append(target)
        left -= int(np.prod(target.shape[1:]))
    if not spreads:
        return None
    return ErrorCalibration.fit(spreads, errors, targets, bins)


def reliability(expected, observed, bins: int = RELIABILITY_BINS) -> list[dict]:
    """Per bin of the expected error (its quantiles; equal values share one bin, so a
    bin may hold more pixels than another): its range, the mean expected and the mean
    observed absolute error, and the pixel count (flattened over everything)."""
    expected = np.asarray(expected, np.float64).ravel()
    observed = np.asarray(observed, np.float64).ravel()
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    which = np.searchsorted(edges[1:-1], expected, side="right")
    rows = []
    for b in range(len(edges) - 1):
        inside = which == b
        if not inside.any():
            continue
        e = expected[inside]
        rows.append(
            {
                "low": float(e.min()),
                "high": float(e.max()),
                "expected": float(e.mean()),
                "observed": float(observed[inside].mean()),
                "n": int(inside.sum()),
            }
        )
    return rows


def _by_channel(arrays) -> list[np.ndarray]:
    """(C, *spatial) arrays (or one) as one flat float64 array per channel."""
    arrays = [arrays] if isinstance(arrays, np.ndarray) else list(arrays)
    channels = arrays[0].shape[0]
    return [
        np.concatenate([np.asarray(a[c], np.float64).ravel() for a in arrays])
        for c in range(channels)
    ]


def _fit_channel(spread: np.ndarray, error: np.ndarray, bins: int) -> ChannelMap:
    keep = np.isfinite(spread) & np.isfinite(error)
    spread, error = spread[keep], error[keep]
    if spread.size == 0:
        raise ValueError("no finite validation pixels to calibrate on")
    order = np.argsort(spread, kind="stable")
    parts = np.array_split(order, min(bins, spread.size))
    means = np.array([[spread[p].mean(), error[p].mean(), p.size] for p in parts])
    edges = [spread[parts[0][0]]] + [spread[p[-1]] for p in parts]
    # bins of one repeated spread (a flat background: spread 0) are one bin, since the
    # map is a function of the spread
    merged, merged_edges = [means[0]], [edges[0], edges[1]]
    for (s, e, n), edge in zip(means[1:], edges[2:]):
        last = merged[-1]
        if s <= last[0]:
            total = last[2] + n
            merged[-1] = np.array(
                [(last[0] * last[2] + s * n) / total, (last[1] * last[2] + e * n) / total, total]
            )
            merged_edges[-1] = edge
        else:
            merged.append(np.array([s, e, n]))
            merged_edges.append(edge)
    merged = np.array(merged)
    error = _isotonic(merged[:, 1], merged[:, 2])
    return ChannelMap(np.array(merged_edges), merged[:, 0], error, merged[:, 2].astype(np.int64))


def _isotonic(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted pool-adjacent-violators: the closest non-decreasing sequence (scipy's
    optimize.isotonic_regression needs scipy 1.12; the project supports 1.10)."""
    blocks: list[list[float]] = []  # [mean, weight, length]
    for v, w in zip(values, weights):
        blocks.append([float(v), float(w), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([np.full(n, v) for v, _, n in blocks])


def _apply(m: ChannelMap, spread: np.ndarray) -> np.ndarray:
    expected = np.interp(spread, m.spread, m.error)
    if len(m.spread) > 1:  # beyond the last bin: the line through the first and last
        slope = (m.error[-1] - m.error[0]) / (m.spread[-1] - m.spread[0])
        beyond = m.error[-1] + (spread - m.spread[-1]) * slope
        expected = np.where(spread > m.spread[-1], beyond, expected)
    return expected.astype(np.float32)


def _cut(source, target, context: int, left: int, share: float):
    """The central ``share`` of the sample's first spatial axis, cut further so that its
    scored part holds at most ``left`` pixels (None, None when less than 8 rows or
    slices, or all, would be left: a sliver is mostly border)."""
    scored = target[..., context:]
    total = scored.shape[1]
    per_row = int(np.prod(scored.shape[2:]))
    rows = min(total, max(round(total * share), MIN_ROWS), left // max(per_row, 1))
    if rows < min(8, total):
        return None, None
    band = slice((total - rows) // 2, (total - rows) // 2 + rows)
    return source[:, band], target[:, band]


def calibration_text(data: dict | None) -> str:
    """What the model card says of a model document's calibration: its bins and pixels,
    or that it is absent."""
    if not data:
        return (
            "absent (saved by an earlier version, trained without validation, or stopped by "
            "Ctrl-C): the error map "
            "is the raw spread"
        )
    channels = data.get("channels") or [{}]
    bins = len(channels[0].get("spread", []))
    return (
        f"{bins} bins from {data.get('pixels', 0):,} validation pixels: the error map reads "
        "as expected absolute error"
    )
