"""How good the kept model is on the held-out part, how sure that figure is, and what two
trivial predictors score on the same pixels (the run report's numbers).

A validation MAE alone says little: 0.05 is excellent on one target and what the
target's own mean scores on another. So the model is scored next to two baselines a
model has to beat: the training target's mean (a constant image) and the source
rescaled by least squares (``a * source + b``, fitted on the training part; with several
source channels a linear regression over them): what a linear intensity map already
explains. Each score is the mean over units (tiles of the validation images, or whole
images when there are MIN_IMAGES or more) with a 95 % bootstrap percentile interval
over those units. Neighbouring tiles of one image are correlated, so intervals over
tiles are narrower than a new image would show: they say how stable the figure is on
this validation part, not on another microscope's data.

The metrics are validation's own (engine/metrics.py ``image_metrics``: MAE in target
units; PSNR and SSIM over the target's normalization range; Pearson r), one call per
unit, so the model's mean here and the last validation's figure differ only by the
averaging over units."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from inspect import signature
from itertools import product

import numpy as np
import torch
from scipy.stats import bootstrap

from .lazy import LazySample
from .metrics import image_metrics
from .normalization import Normalization, grid_pixels, lazy_budget

METRICS = ("mae", "psnr", "ssim", "pearson_r")
TILE_SIDE = 64  # px per side of a scored tile: SSIM's 11 px window fits many times
MAX_UNITS = 64  # tiles (or images) scored at most: the report costs a second, not minutes
MIN_IMAGES = 4  # validation images from which the units are whole images, not tiles
MIN_TILES = 16  # tiles are made smaller (down to half the side) to have this many
RESAMPLES = 1000
CONFIDENCE = 0.95
FIT_VALUES = 2**20  # training pixels the baselines are fitted on, at most
# scipy >= 1.15 takes the generator as rng=, older ones (>= 1.10 is allowed) random_state=
SEED_ARGUMENT = "rng" if "rng" in signature(bootstrap).parameters else "random_state"


@dataclass(frozen=True)
class Baselines:
    """The two trivial predictors, fitted on the training part: ``mean`` per target
    channel, and ``gain`` (C_target, C_source) with ``offset`` (C_target,) for
    ``target ~ gain @ source + offset``."""

    mean: np.ndarray
    gain: np.ndarray
    offset: np.ndarray

    @classmethod
    def fit(cls, pairs: list, max_values: int = FIT_VALUES) -> Baselines:
        """Fit both on (source, target) (C, *spatial) training samples, in memory or
        lazy; a bounded number of pixels is read (as the normalization fit does)."""
        source, target = training_pixels(pairs, max_values)
        design = np.vstack([source, np.ones((1, source.shape[1]))]).T  # (N, C_source + 1)
        solution = np.linalg.lstsq(design, target.T, rcond=None)[0]  # (C_source + 1, C_target)
        return cls(target.mean(axis=1), solution[:-1].T, solution[-1])

    def constant(self, source: np.ndarray) -> np.ndarray:
        """The training target's mean, in the shape of the target of ``source``."""
        shape = (len(self.mean), *source.shape[1:])
        return np.broadcast_to(self.mean.reshape(-1, *[1] * (source.ndim - 1)), shape).astype(
            np.float32
        )

    def rescaled(self, source: np.ndarray) -> np.ndarray:
        """``gain @ source + offset`` per pixel (C_target, *spatial)."""
        flat = np.asarray(source, np.float64).reshape(source.shape[0], -1)
        out = self.gain @ flat + self.offset[:, None]
        return out.reshape(len(self.offset), *source.shape[1:]).astype(np.float32)

    def summary(self) -> dict:
        return {
            "constant_mean": self.mean.tolist(),
            "rescale_gain": self.gain.tolist(),
            "rescale_offset": self.offset.tolist(),
        }


def training_pixels(pairs: list, max_values: int) -> tuple[np.ndarray, np.ndarray]:
    """(C_source, N) and (C_target, N) float64 values at the same pixels of every pair:
    in-memory pairs subsampled evenly (together at most ``max_values``), lazy ones on
    the normalization fit's grid of boxes (engine/normalization.py)."""
    eager = [(s, t) for s, t in pairs if not (_is_lazy(s) or _is_lazy(t))]
    lazy = [(_readable(s), _readable(t)) for s, t in pairs if _is_lazy(s) or _is_lazy(t)]
    stride = sum(int(np.prod(s.shape[1:])) for s, _ in eager) // max_values + 1
    budget = lazy_budget(len(lazy))
    sides = [[_strided(x, stride) for x in pair] for pair in eager]
    sides += [[grid_pixels(x, budget) for x in pair] for pair in lazy]
    return tuple(np.concatenate([p[i] for p in sides], axis=1).astype(np.float64) for i in (0, 1))


def _strided(sample: np.ndarray, stride: int) -> np.ndarray:
    """(C, N) values every ``stride`` pixels or so: a strided view along each spatial
    axis (no copy of the whole image), then flattened."""
    dims = sample.ndim - 1
    step = int(np.ceil(stride ** (1 / dims)))
    view = np.asarray(sample)[(slice(None),) + (slice(None, None, step),) * dims]
    return view.reshape(sample.shape[0], -1)


def _is_lazy(sample) -> bool:
    return isinstance(sample, LazySample)


class _InMemory:
    """An in-memory sample read like a LazySample, so that a pair of one lazy and one
    in-memory image is read at the same grid boxes (grid_pixels reads ``.read(box)``)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.shape = array, array.shape

    def read(self, box: tuple[slice, ...] | None = None) -> np.ndarray:
        return self.array if box is None else self.array[(slice(None), *box)]


def _readable(sample):
    return sample if _is_lazy(sample) else _InMemory(np.asarray(sample))


def unit_boxes(shapes: list[tuple[int, ...]]) -> tuple[list[tuple], int | None]:
    """The scored units of validation images of (C, *spatial) ``shapes`` as (image
    index, spatial box) pairs, and the tile side (None for whole images). Whole images
    when there are MIN_IMAGES or more, else tiles of TILE_SIDE px, or smaller (down to
    half) where that leaves fewer than MIN_TILES."""
    if len(shapes) >= MIN_IMAGES:
        whole = [(i, tuple(slice(0, n) for n in s[1:])) for i, s in enumerate(shapes)]
        return whole[:MAX_UNITS], None
    for side in (TILE_SIDE, TILE_SIDE * 3 // 4, TILE_SIDE // 2):
        boxes = tiles(shapes, side)
        if len(boxes) >= MIN_TILES:
            break
    return boxes, side


def tiles(shapes: list[tuple[int, ...]], side: int) -> list[tuple]:
    """Each spatial axis cut into nearly equal parts of about ``side`` px (one part when
    it is shorter); at most MAX_UNITS tiles, evenly spread over the images."""
    boxes = []
    for i, shape in enumerate(shapes):
        cuts = [np.linspace(0, n, max(1, n // side) + 1).round().astype(int) for n in shape[1:]]
        for parts in product(*[range(len(c) - 1) for c in cuts]):
            boxes.append((i, tuple(slice(c[p], c[p + 1]) for c, p in zip(cuts, parts))))
    if len(boxes) > MAX_UNITS:
        keep = np.unique(np.linspace(0, len(boxes) - 1, MAX_UNITS).round().astype(int))
        boxes = [boxes[k] for k in keep]
    return boxes


def unit_scores(
    predictions: list[np.ndarray], targets: list[np.ndarray], boxes: list, norm: Normalization
) -> dict[str, np.ndarray]:
    """Each metric of every unit: {metric: (units,) array}; NaN where it is undefined
    (SSIM of a unit under 11 px)."""
    rows = [
        image_metrics(
            np.asarray(predictions[i][(slice(None), *box)], np.float32)[None],
            np.asarray(targets[i][(slice(None), *box)], np.float32)[None],
            norm,
        )
        for i, box in boxes
    ]
    return {m: np.array([r[m] for r in rows], np.float64) for m in METRICS}


def mean_interval(
    values: np.ndarray, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> dict:
    """The mean of the finite ``values`` and its bootstrap percentile interval
    (scipy.stats.bootstrap); ``low``/``high`` are None with fewer than two units (no
    interval to give), NaN mean when none is finite."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    out = {"mean": float(values.mean()) if values.size else float("nan"), "units": values.size}
    out["low"] = out["high"] = None
    if values.size >= 2:
        if np.ptp(values) == 0:  # every resample's mean is the same value
            out["low"] = out["high"] = out["mean"]
        else:
            ci = bootstrap(
                (values,),
                np.mean,
                n_resamples=resamples,
                confidence_level=confidence,
                method="percentile",
                **{SEED_ARGUMENT: np.random.default_rng(seed)},
            ).confidence_interval
            out["low"], out["high"] = float(ci.low), float(ci.high)
    return out


def held_out_scores(
    sources: list[np.ndarray],
    predictions: list[np.ndarray],
    targets: list[np.ndarray],
    norm: Normalization,
    baselines: Baselines | None,
) -> dict:
    """The model's and the baselines' scores on the same units of the validation part:
    {"unit": "tile"|"image", "units", "images", "tile_side", "confidence",
    "resamples", "scores": {predictor: {metric: mean_interval}}}. Arrays are (C, *spatial)
    per validation image; ``sources`` for the rescaled baseline (None: no baselines)."""
    boxes, side = unit_boxes([t.shape for t in targets])
    predictors = {"model": predictions}
    if baselines is not None:
        predictors["constant mean"] = [baselines.constant(s) for s in sources]
        predictors["rescaled source"] = [baselines.rescaled(s) for s in sources]
    scores = {}
    with one_thread():
        for name, preds in predictors.items():
            values = unit_scores(preds, targets, boxes, norm)
            scores[name] = {m: mean_interval(values[m]) for m in METRICS}
    return {
        "unit": "tile" if side else "image",
        "units": len(boxes),
        "images": len(targets),
        "tile_side": side,
        "confidence": CONFIDENCE,
        "resamples": RESAMPLES,
        "scores": scores,
        "baselines": baselines.summary() if baselines is not None else None,
    }


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread for the many small convolutions of the units' SSIM: with
    two threads on a busy two-core machine each 64 px tile took 300 ms (the threads
    wait for each other), on one 4.5 ms (``image_metrics``, 20 calls each)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
