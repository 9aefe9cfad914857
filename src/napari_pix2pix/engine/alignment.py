"""Whether a source and its target are aligned. Misaligned pairs are the most common
silent cause of blurry pix2pix results. Two checks, calibrated on real aligned pairs
and the same pairs shifted by known amounts (benchmarks/alignment.py, docs/quality.md):

- Before training (``pair_shift``), across modalities: the two images rarely look alike
  (phase contrast against a nuclear stain), so the shift is found by cross-correlating
  where their edges run: the normalised gradient fields, (n_s . n_t)^2 summed over the
  image (sign- and contrast-free; sharper than correlating gradient magnitudes, which
  false-alarmed on half of the aligned phase -> DAPI crops). Edges of two modalities
  need not coincide, so the peak of an aligned pair can sit a few pixels off where it
  is flat (phase -> DAPI: up to 5 px); a warning therefore also needs the peak to be
  clearly better than no shift: by a large fraction (``contrast``), or consistently
  over the image (``significance``, a t-statistic over blocks).
- During training (``prediction_shift``), in one modality: a validation prediction and
  its target, by plain normalised cross-correlation with subpixel refinement, with an
  uncertainty from the spread over tiles. The network learns part of a misalignment, so
  this sees only what it did not learn (docs/quality.md, "Alignment check")."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import fft, ndimage

MAX_SIDE = 1024  # larger images are cropped to their centre: enough for a shift
SEARCH = 16  # pixels: the largest shift sought along each axis
TOLERATED_SHIFT = 2.0  # pixels (length of the shift vector); more is worth a warning
# 1 - (edge agreement at no shift) / (at the best shift) needed to warn. Aligned real
# pairs (benchmarks/alignment.py): 0.16 at most on 648 256-px phase -> DAPI crops, 0.00
# on MR T1 -> tissue (2D, 3D). Shifted by 4 px: MR 0.37 or more, but phase -> DAPI
# 0.00-0.45 (median 0.14), so no gate both spares every aligned crop and finds 95 % of
# those; 0.18 keeps a margin above the aligned ones and finds about a third
MIN_CONTRAST = 0.18
# ... or the best shift beats no shift by this many standard errors (t-statistic of
# the per-block differences, BLOCK px blocks). Contrast shrinks with image size (a 4 px
# shift of 960 px phase -> DAPI crops: 0.02-0.12); the t-statistic of aligned pairs does
# not grow with size, that of shifted ones does. Aligned real crops reach 3.9 (256-960
# px phase -> DAPI, 1080 windows, three seeds); 4.5 finds 92 % of 4 px shifts of 960 px
# crops (all whose shift reads as > 2 px), 21-27 % of 512 px ones (contrast alone: 0-10 %)
MIN_SIGNIFICANCE = 4.5
BLOCK = 16  # px: side of the blocks whose spread gives the significance's error
PREDICTION_SIDE = 384  # predictions are compared on their centre: enough, and fast
# px of shift left in the validation predictions: aligned real crops stay under 0.9 (a
# 3D model's predictions sat 0.85 voxel off in z), 4 px ones are found 2.2 px or longer
PREDICTION_TOLERANCE = 1.5
PREDICTION_SIGNIFICANCE = 3.0  # the shift must be this many uncertainties long


@dataclass(frozen=True)
class PairShift:
    """By how much a target is displaced from its source (pixels, one per spatial axis)
    and how clearly: ``contrast`` is 0 when no shift fits the edges as well as the best
    one, and near 1 when no shift fits them much worse; ``significance`` is how many
    standard errors (from the spread over image blocks) the best shift fits them
    better than no shift."""

    shift: tuple[float, ...]
    contrast: float
    significance: float = 0.0

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.shift))

    @property
    def warns(self) -> bool:
        clear = self.contrast >= MIN_CONTRAST or self.significance >= MIN_SIGNIFICANCE
        return self.length > TOLERATED_SHIFT and clear


def pair_shift(source: np.ndarray, target: np.ndarray) -> PairShift:
    """The whole-pixel displacement of ``target`` from ``source`` (two arrays of one
    shape, 2D or 3D, one channel each) up to SEARCH and a quarter of each side, and how
    clearly it beats no shift."""
    a, b = (_edge_fields(_centre(np.asarray(x, np.float64))) for x in (source, target))
    correlation = _correlate(a, b)
    shift = _peak(correlation)
    best, none = correlation[tuple(int(s) for s in shift)], correlation.flat[0]
    contrast = float(np.clip(1 - none / best, 0.0, 1.0)) if best > 0 else 0.0
    significance = _significance(a, b, shift)
    return PairShift(tuple(float(s) for s in shift), contrast, significance)


def estimate_shift(source: np.ndarray, target: np.ndarray) -> tuple[float, ...]:
    """``pair_shift``'s displacement alone, (dy, dx) or (dz, dy, dx)."""
    return pair_shift(source, target).shift


def prediction_shift(prediction: np.ndarray, target: np.ndarray) -> tuple[tuple[float, ...], float]:
    """(shift, uncertainty) of ``target`` against ``prediction``, two (C, *spatial)
    arrays of one shape in one modality: the subpixel displacement per spatial axis
    (up to SEARCH) and its standard error in pixels (length of the per-axis errors),
    from the spread of the same estimate over half-size overlapping tiles; inf where the
    image is too small to tile or has no structure."""
    pred, tgt = (_centre(np.asarray(x, np.float64), PREDICTION_SIDE) for x in (prediction, target))
    shift = _subpixel_shift(pred, tgt)
    tiles = _tiles(pred.shape[1:])
    if len(tiles) < 4 or shift is None:
        return shift or tuple(0.0 for _ in pred.shape[1:]), float("inf")
    found = [_subpixel_shift(pred[(slice(None), *t)], tgt[(slice(None), *t)]) for t in tiles]
    found = np.array([f for f in found if f is not None])
    if len(found) < 4:
        return shift, float("inf")
    # tiles half-overlap: about half as many independent estimates as tiles
    errors = found.std(axis=0, ddof=1) / np.sqrt(len(found) / 2)
    return shift, float(np.linalg.norm(errors))


def validation_shift(predictions, targets) -> tuple[tuple[float, ...], float]:
    """``prediction_shift`` over several validation pairs, weighted by precision."""
    found = [prediction_shift(p, t) for p, t in zip(predictions, targets)]
    weights = np.array([1 / u**2 if np.isfinite(u) and u > 0 else 0.0 for _, u in found])
    if not weights.sum():
        return found[0][0], float("inf")
    shift = (weights[:, None] * np.array([s for s, _ in found])).sum(0) / weights.sum()
    return tuple(float(s) for s in shift), float(1 / np.sqrt(weights.sum()))


def misalignment_warning(shift: tuple[float, ...], uncertainty: float) -> str:
    """A warning ('' for none) when the validation predictions are clearly displaced
    from their targets: more than PREDICTION_TOLERANCE and PREDICTION_SIGNIFICANCE
    uncertainties."""
    length = float(np.linalg.norm(shift))
    if not (length > PREDICTION_TOLERANCE and length > PREDICTION_SIGNIFICANCE * uncertainty):
        return ""
    names = ("dz", "dy", "dx")[-len(shift) :]
    return (
        f"the validation predictions are displaced from their targets by "
        f"({', '.join(names)}) = ({', '.join(f'{s:+.1f}' for s in shift)}) "
        f"± {uncertainty:.1f} px: source and target are probably misaligned by at least "
        "that much (the network learns part of a shift, so the pairs may be shifted "
        "more). pix2pix needs aligned pairs; register them, or check that they belong "
        "together."
    )


def middle_plane(array, axes: str) -> np.ndarray:
    """The YX plane in the middle of every other axis (the first channel), read alone
    from a lazy array."""
    index = tuple(
        slice(None) if a in "YX" else (0 if a == "C" else n // 2) for a, n in zip(axes, array.shape)
    )
    return np.asarray(array[index], dtype=np.float64)


def _centre(image: np.ndarray, side: int = MAX_SIDE) -> np.ndarray:
    """The central ``side`` px of every axis (channels too: a few suffice)."""
    cuts = tuple(slice((n - min(n, side)) // 2, (n + min(n, side)) // 2) for n in image.shape)
    return image[cuts]


def _edge_fields(image: np.ndarray) -> list[np.ndarray]:
    """The products n_i n_j of the normalised gradient n = g / sqrt(|g|^2 + eps^2) after
    a light blur (eps: the mean gradient, so flat noisy areas weigh little), zero-mean:
    correlating them sums (n_s . n_t)^2 over the image."""
    gradient = np.gradient(ndimage.gaussian_filter(image, 1.0))
    size = np.sqrt(sum(g**2 for g in gradient))
    eps = size.mean() + 1e-12
    n = [g / np.sqrt(size**2 + eps**2) for g in gradient]
    fields = []
    for i, j in itertools.combinations_with_replacement(range(len(n)), 2):
        f = n[i] * n[j] * (1.0 if i == j else np.sqrt(2.0))
        fields.append(f - f.mean())
    return fields


def _correlate(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """Circular cross-correlation summed over paired fields; index s: b displaced by s."""
    total = sum(np.fft.ifftn(np.fft.fftn(y) * np.conj(np.fft.fftn(x))).real for x, y in zip(a, b))
    return total / a[0].size


def _peak(correlation: np.ndarray) -> np.ndarray:
    """The shift (one integer per axis, signed) of the correlation's maximum within
    SEARCH and a quarter of each side."""
    shifts = [np.fft.fftfreq(n, 1 / n) for n in correlation.shape]  # 0, 1, ..., -1
    near = np.ones(correlation.shape, bool)
    for axis, (s, n) in enumerate(zip(shifts, correlation.shape)):
        keep = np.abs(s) <= min(SEARCH, n // 4)
        near &= keep.reshape([-1 if a == axis else 1 for a in range(correlation.ndim)])
    index = np.unravel_index(np.argmax(np.where(near, correlation, -np.inf)), correlation.shape)
    return np.array([s[i] for s, i in zip(shifts, index)])


def _significance(a: list[np.ndarray], b: list[np.ndarray], shift: np.ndarray) -> float:
    """The t-statistic of (edge agreement at ``shift``) - (at no shift) over BLOCK px
    blocks: the image's own spread measures the noise, so an aligned pair stays near
    the same values at any size while a real shift grows with the area. Two products
    of the fields and a sum per block: cheap next to the correlation's FFTs."""
    if not shift.any():
        return 0.0
    axes = tuple(range(a[0].ndim))
    moved = tuple(-int(s) for s in shift)
    diff = sum(x * (np.roll(y, moved, axes) - y) for x, y in zip(a, b))
    counts = [max(2, n // BLOCK) for n in diff.shape]
    diff = diff[tuple(slice(0, n - n % c) for n, c in zip(diff.shape, counts))]
    split = [v for n, c in zip(diff.shape, counts) for v in (c, n // c)]
    blocks = diff.reshape(split).sum(axis=tuple(range(1, 2 * diff.ndim, 2))).ravel()
    spread = blocks.std(ddof=1)
    return float(blocks.mean() / (spread / np.sqrt(blocks.size))) if spread > 0 else 0.0


def _subpixel_shift(pred: np.ndarray, target: np.ndarray) -> tuple[float, ...] | None:
    """The displacement of ``target`` from ``pred`` ((C, *spatial)): the peak of their
    cross-correlation (each channel blurred lightly, zero-mean, unit variance), refined
    by a parabola through the peak and its neighbours along each axis. Only the
    prediction is windowed (its edges tapered) and slides over the zero-padded target,
    each position divided by the target's energy under the window: windowing both
    would pull the peak towards zero by up to 8 % of the shift on small images. None
    without structure to match."""
    spatial = pred.shape[1:]
    window = _taper(spatial)
    padded = [fft.next_fast_len(n + min(SEARCH, n // 4), real=True) for n in spatial]
    product, energy = np.zeros(padded), np.zeros(padded)
    axes = tuple(range(len(padded)))
    for p, t in zip(pred, target):
        p, t = (ndimage.gaussian_filter(x, 1.0) for x in (p, t))
        if p.std() < 1e-12 or t.std() < 1e-12:
            continue
        p, t = ((x - x.mean()) / x.std() for x in (p, t))
        product += np.fft.irfftn(
            np.fft.rfftn(t, padded, axes) * np.conj(np.fft.rfftn(window * p, padded, axes)),
            padded,
            axes,
        )
        energy += np.fft.irfftn(
            np.fft.rfftn(t**2, padded, axes) * np.conj(np.fft.rfftn(window, padded, axes)),
            padded,
            axes,
        )
    if not product.any():
        return None
    total = product / np.sqrt(np.maximum(energy, 1e-12 * energy.max()))
    peak = _peak(total)
    reach = [min(SEARCH, n // 4) for n in spatial]
    if any(abs(p) >= r for p, r in zip(peak, reach)):
        return None  # on the edge of the search: no maximum there, nothing to refine
    refined = []
    for axis, s in enumerate(peak):
        here = [int(v) for v in peak]
        values = []
        for step in (-1, 0, 1):
            here[axis] = int(s) + step
            values.append(total[tuple(here)])
        low, mid, high = values
        curve = low - 2 * mid + high
        refined.append(float(s) + (0.5 * (low - high) / curve if curve < 0 else 0.0))
    return tuple(refined)


def _taper(spatial: tuple[int, ...]) -> np.ndarray:
    """1 inside, falling to 0 as cos^2 over the outer min(SEARCH, side / 4) px."""
    window = np.ones(spatial)
    for axis, n in enumerate(spatial):
        edge = max(1, min(SEARCH, n // 4))
        ramp = np.sin(0.5 * np.pi * (np.arange(edge) + 0.5) / edge) ** 2
        profile = np.ones(n)
        profile[:edge], profile[n - edge :] = ramp, ramp[::-1]
        window = window * profile.reshape([-1 if a == axis else 1 for a in range(len(spatial))])
    return window


def _tiles(spatial: tuple[int, ...], smallest: int = 24) -> list[tuple[slice, ...]]:
    """Half-size tiles at a quarter-side stride (3 per axis) on axes of at least
    2 * ``smallest`` px; whole other axes."""
    per_axis = []
    for n in spatial:
        if n < 2 * smallest:
            per_axis.append([slice(0, n)])
        else:
            per_axis.append([slice(i * n // 4, i * n // 4 + n // 2) for i in range(3)])
    return list(itertools.product(*per_axis))
