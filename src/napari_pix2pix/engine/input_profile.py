"""Is this input what the model knows? A compact profile of the training inputs, and a
score of how far a new image (or slice) lies from it.

A generator given an input unlike its training data still paints a plausible-looking
output, and nothing in that output says it is wrong. The profile keeps what is cheap to
compare and what the common mistakes change, in the model's NORMALIZED units (so a
brighter image shows as brighter whatever its dtype):

- per channel, intensity quantiles (1 ... 99 %): brighter, darker, more or less
  contrast, another stain or modality;
- per channel, the radially averaged power spectrum in a few log-spaced frequency bands,
  relative to the tile's total power: blur and another pixel size move power to low
  frequencies, noise and a coarser pixel size to high ones.

Both are measured per tile (64 px a side, 32 in 3D, less for small crops or images).
The profile holds the features of a few hundred training tiles (24 windows of 3 x 3
tiles, 2 x 2 x 2 in 3D, at random places: the cost is bounded whatever the data), each
feature divided by its spread over them. A new image, slice or volume is read as a grid
of tiles spread over it; each tile's distance to its nearest training tile (root mean
square over features) is averaged over the grid and divided by the profile's unit: the
90th percentile of the distance of a training tile to the nearest training tile that
does not overlap it. So 1 is "as far as training regions are from each other", and the
default threshold (``THRESHOLD``) sits well above every held-out sample of the four
validation tasks (docs/quality.md, benchmarks/ood.py). The nearest tile, not the mean of
the profile, because real images mix kinds of tile (background and tissue): a brain at
twice its brightness has tiles like none in training, while its mean features can still
lie within training's wide spread.

The pixel size is kept in the profile for the record; it is compared by io/metadata.py's
``scale_mismatch`` where the image carries one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .lazy import read_box
from .normalization import Normalization

VERSION = 1
QUANTILES = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)
BANDS = 5  # log-spaced frequency bands from 2 cycles per tile to Nyquist
# a score above this warns: no held-out sample of the four validation tasks reached it
# (the highest: 1.32, mr2d; 1.83 with the profile train() makes), while changes of
# intensity, noise, blur and modality mostly exceed it (docs/quality.md)
THRESHOLD = 2.5
UNIT_PERCENTILE = 90
# the smallest spread a feature is measured against: a feature that never varied in
# training (a background always at -1) would make any change of it infinitely far
FLOOR = {"intensity": 0.05, "spectrum": 0.1}  # normalized units; log10 power
TRAINING_VIEWS = 24  # bounded cost: 24 windows of a few tiles each, whatever the data
WINDOW = {2: 3, 3: 2}  # tiles per axis of a training view (3x3 in 2D, 2x2x2 in 3D)
GRID = {2: 4, 3: 3}  # tiles per axis of a scored sample (spread over the whole sample)
TILE = {2: 64, 3: 32}  # px a side at most
MIN_TILE = 16
MAX_SAMPLES = 64  # slices (volumes) scored at most: a longer stack, an even spread
# the least unit: training tiles that overlap (a small image gives windows that overlap)
# are nearly equal, and a unit near 0 would make every other image look far
MIN_UNIT = 0.25
READ_CAP = 64 * 2**20  # bytes: a larger region (a big volume) is read tile by tile


def tile_features(tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(intensity, spectrum) features of normalized (N, C, *S) tiles: (N, C, quantiles)
    and (N, C, bands). The spectrum is n-D, Hann-windowed and binned in cycles per pixel
    (metrics.radial_power_spectrum is 2D with one bin per integer radius)."""
    tiles = np.asarray(tiles, np.float32)
    n, c, *shape = tiles.shape
    flat = tiles.reshape(n, c, -1)
    intensity = np.percentile(flat, QUANTILES, axis=2).transpose(1, 2, 0)
    centred = tiles - flat.mean(axis=2).reshape(n, c, *([1] * len(shape)))
    window = np.ones(shape, np.float32)
    for axis, size in enumerate(shape):
        w = np.hanning(size + 2)[1:-1].astype(np.float32) if size > 2 else np.ones(size)
        window = window * w.reshape([-1 if a == axis else 1 for a in range(len(shape))])
    axes = tuple(range(2, 2 + len(shape)))
    power = np.abs(np.fft.fftn(centred * window, axes=axes)) ** 2
    freq = np.sqrt(
        sum(f**2 for f in np.meshgrid(*[np.fft.fftfreq(s) for s in shape], indexing="ij"))
    )
    edges = band_edges(min(shape))
    band = np.digitize(freq, edges) - 1  # -1: below the first edge (the mean), dropped
    power = power.reshape(n, c, -1)
    band = band.ravel()
    sums = np.stack([power[..., band == b].sum(axis=2) for b in range(BANDS)], axis=2)
    total = sums.sum(axis=2, keepdims=True)
    tiny = 1e-12 + 1e-9 * total  # a constant tile: equal (undefined) shares, not -inf
    spectrum = np.log10((sums + tiny / BANDS) / (total + tiny))
    return intensity.astype(np.float64), spectrum.astype(np.float64)


def band_edges(side: int) -> np.ndarray:
    """BANDS + 1 frequency edges (cycles/px), log-spaced from 2 cycles per tile to 0.5."""
    low = min(2.0 / max(side, 4), 0.25)
    edges = np.geomspace(low, 0.5, BANDS + 1)
    edges[-1] = np.inf  # the corners of the spectrum (beyond 0.5 radially) with the last
    return edges


def _boxes(shape: tuple[int, ...], tile: tuple[int, ...], per_axis: int, corner=None):
    """Tile boxes on a grid: ``per_axis`` tiles evenly spread over ``shape`` (or, with
    ``corner``, a contiguous window of them starting there)."""
    starts = []
    for n, t, axis in zip(shape, tile, range(len(shape))):
        if corner is None:
            s = np.unique(np.linspace(0, n - t, per_axis).round().astype(int))
        else:
            s = np.arange(per_axis) * t + corner[axis]
            s = s[s + t <= n] if (s + t <= n).any() else s[:1]
        starts.append(s)
    grid = np.array(np.meshgrid(*starts, indexing="ij")).reshape(len(shape), -1).T
    return [tuple(slice(int(a), int(a) + t) for a, t in zip(corner_, tile)) for corner_ in grid]


def _read_tiles(sample, boxes) -> list[np.ndarray]:
    """The (C, *tile) blocks of one sample at ``boxes``: the region that bounds them read
    once and cut in memory, or each tile on its own where that region is over READ_CAP.
    A lazy array chunked by plane decodes a whole chunk per read, so 16 tile reads of a
    slice cost 16 decodes of it, where one read of their bounding region costs one."""
    lows = [min(b[a].start for b in boxes) for a in range(len(boxes[0]))]
    highs = [max(b[a].stop for b in boxes) for a in range(len(boxes[0]))]
    itemsize = np.dtype(getattr(sample, "dtype", np.float64)).itemsize
    if sample.shape[0] * np.prod(np.subtract(highs, lows)) * itemsize > READ_CAP:
        return [read_box(sample, b) for b in boxes]
    region = np.asarray(read_box(sample, tuple(slice(a, b) for a, b in zip(lows, highs))))
    return [
        region[(slice(None), *(slice(s.start - a, s.stop - a) for s, a in zip(b, lows)))]
        for b in boxes
    ]


def _features(sample, boxes, norm: Normalization) -> np.ndarray:
    """(tiles, C * (quantiles + bands)) features of the tiles of one sample at ``boxes``."""
    tiles = np.stack([norm.forward(t) for t in _read_tiles(sample, boxes)])
    intensity, spectrum = tile_features(tiles)
    return np.concatenate([intensity, spectrum], axis=2).reshape(len(boxes), -1)


def profile_tile(patch: tuple[int, ...], largest: tuple[int, ...]) -> tuple[int, ...]:
    """The profile's tile: TILE px a side, less where the training crop is smaller, or
    where a window of WINDOW tiles would not fit in the largest training image (a small
    image must still give many distinct tiles), but not under MIN_TILE."""
    dims = len(patch)
    return tuple(
        min(TILE[dims], p, max(MIN_TILE, s // WINDOW[dims])) for p, s in zip(patch, largest)
    )


def tile_shape(tile: tuple[int, ...], spatial: tuple[int, ...]) -> tuple[int, ...]:
    """The profile's tile, cut to an image smaller than it."""
    return tuple(min(t, s) for t, s in zip(tile, spatial))


def _nearest(query: np.ndarray, reference: np.ndarray, exclude=None):
    """Distance (root mean square over features) of each query row to its nearest
    reference row, and that row's index; pairs where ``exclude`` (a boolean matrix) is
    True are skipped."""
    d = np.sqrt(((query[:, None, :] - reference[None]) ** 2).mean(axis=2))
    if exclude is not None:
        d[exclude] = np.inf
    nearest = d.argmin(axis=1)
    return d[np.arange(len(query)), nearest], nearest


def build_profile(
    samples: list,
    norm: Normalization,
    patch: tuple[int, ...],
    pixel_size=None,
    views: int = TRAINING_VIEWS,
    seed: int = 0,
) -> dict:
    """The profile of training source samples ((C, *spatial) arrays or LazySamples, in
    image units): ``views`` windows of a few tiles at random places, each sample drawn in
    proportion to its size. A JSON-able dict (the model file's "input_profile")."""
    rng = np.random.default_rng(seed)
    dims = len(patch)
    sizes = np.array([np.prod(s.shape[1:]) for s in samples], np.float64)
    largest = tuple(max(s.shape[1 + a] for s in samples) for a in range(dims))
    profile_tile_ = profile_tile(tuple(patch), largest)
    features, places = [], []
    for i in rng.choice(len(samples), size=views, p=sizes / sizes.sum()):
        spatial = tuple(samples[i].shape[1:])
        tile = tile_shape(profile_tile_, spatial)
        span = [min(WINDOW[dims] * t, s) for t, s in zip(tile, spatial)]
        corner = [int(rng.integers(0, s - w + 1)) for s, w in zip(spatial, span)]
        boxes = _boxes(spatial, tile, WINDOW[dims], corner)
        features.append(_features(samples[i], boxes, norm))
        places += [(i, *(b.start for b in box)) for box in boxes]
    features = np.concatenate(features)
    channels = samples[0].shape[0]
    floor = np.tile([FLOOR["intensity"]] * len(QUANTILES) + [FLOOR["spectrum"]] * BANDS, channels)
    spread = np.maximum(features.std(axis=0), floor)
    z = (features / spread).round(2)
    # the unit: how far a training tile lies from the nearest training tile that does not
    # overlap it (windows of a small image overlap, and overlapping tiles are alike)
    places = np.array(places)
    same = places[:, None, 0] == places[None, :, 0]
    near = np.abs(places[:, None, 1:] - places[None, :, 1:]) < np.array(profile_tile_)
    own, _ = _nearest(z, z, same & near.all(axis=2))
    own = own[np.isfinite(own)]  # none: an image of about one tile
    unit = max(float(np.percentile(own, UNIT_PERCENTILE)) if own.size else 0.0, MIN_UNIT)
    profile: dict = {"version": VERSION, "tile": list(profile_tile_), "channels": channels}
    profile.update(quantiles=list(QUANTILES), bands=BANDS, threshold=THRESHOLD)
    profile.update(spread=spread.round(5).tolist(), unit=round(unit, 5))
    profile["tiles"] = z.tolist()
    profile["pixel_size"] = pixel_size
    return profile


@dataclass
class InputCheck:
    """How far an input lies from the model's training inputs.

    ``scores`` holds one score per sample scored (image, slice or volume), ``samples``
    which sample each is (all of them, or an even spread of MAX_SAMPLES of a longer
    stack), ``worst`` the position of the highest, ``above`` whether it exceeds
    ``threshold``; ``reason`` says which way the worst one differs."""

    scores: list[float]
    threshold: float
    samples: list[int] = field(default_factory=list)
    worst: int = 0
    reason: str = ""
    # the worst sample as a person finds it ("slice 4", "T 2, Z 5"); set by predict,
    # which knows the image's axes
    worst_label: str = ""

    @property
    def score(self) -> float:
        return self.scores[self.worst]

    @property
    def worst_sample(self) -> int:
        return self.samples[self.worst] if self.samples else self.worst

    @property
    def above(self) -> bool:
        return self.score > self.threshold

    def where(self) -> str:
        """'slice 4' (the worst sample); '' for a single one."""
        if len(self.scores) <= 1:
            return ""
        return self.worst_label or f"slice {self.worst_sample}"

    def message(self) -> str:
        where = f" at {self.where()}" if self.where() else ""
        return (
            f"this input differs from what the model was trained on (score "
            f"{self.score:.1f} > {self.threshold:g}{where}: {self.reason}); its prediction "
            "may look real and be wrong. Check the image (units, focus, pixel size, "
            "modality) against the training data, or train on images like it."
        )

    def as_dict(self) -> dict:
        return {
            "score": round(self.score, 3),
            "threshold": self.threshold,
            "above": self.above,
            "worst": self.worst_sample,
            "reason": self.reason,
            "scores": [round(s, 3) for s in self.scores],
            "samples": list(self.samples),
        }


def _score(features: np.ndarray, profile: dict) -> tuple[float, str]:
    """Score of one sample's tile features, and why: the mean distance of its tiles to
    their nearest training tiles, in the profile's unit; the reason from the group
    (intensity or spectrum) that differs most from those nearest tiles, and which way."""
    reference = np.asarray(profile["tiles"], np.float64)
    z = features / np.asarray(profile["spread"])
    distance, nearest = _nearest(z, reference)
    difference = (z - reference[nearest]).mean(axis=0).reshape(profile["channels"], -1)
    groups = {
        "intensity": difference[:, : len(QUANTILES)],
        "spectrum": difference[:, len(QUANTILES) :],
    }
    group = max(groups, key=lambda g: float(np.mean(groups[g] ** 2)))
    return float(distance.mean() / profile["unit"]), _reason(group, groups[group])


def _reason(group: str, z: np.ndarray) -> str:
    """Which way the worst group differs, in words."""
    if group == "intensity":
        q = list(QUANTILES)
        level = z[:, q.index(50.0)].mean()
        spread = (z[:, q.index(95.0)] - z[:, q.index(5.0)]).mean()
        if abs(level) >= abs(spread) / 2:
            return "brighter than training" if level > 0 else "darker than training"
        return "more contrast than training" if spread > 0 else "less contrast than training"
    fine = z[:, -2:].mean() - z[:, :2].mean()
    if fine > 0:
        return "more fine detail than training: noisier, sharper, or a larger pixel size"
    return "less fine detail than training: blurrier, or a smaller pixel size"


def score_sample(sample, norm: Normalization, profile: dict) -> tuple[float, str]:
    """Score of one (C, *spatial) sample (array or LazySample, image units): the mean
    features of up to GRID tiles per axis spread over it."""
    spatial = tuple(sample.shape[1:])
    tile = tile_shape(tuple(profile["tile"]), spatial)
    return _score(_features(sample, _boxes(spatial, tile, GRID[len(spatial)]), norm), profile)


def check_input(
    samples, norm: Normalization, profile: dict | None, indices=None
) -> InputCheck | None:
    """The InputCheck of (C, *spatial) samples (arrays or LazySamples, image units;
    ``indices`` their numbers in the image, default 0, 1, ...); None without a profile
    (a model saved before profiles)."""
    if not profile:
        return None
    samples = list(samples)
    scored = [score_sample(s, norm, profile) for s in samples]
    scores = [float(s) for s, _ in scored]
    worst = int(np.argmax(scores))
    threshold = float(profile.get("threshold", THRESHOLD))
    indices = list(range(len(samples))) if indices is None else [int(i) for i in indices]
    return InputCheck(scores, threshold, indices, worst, scored[worst][1])


def sample_indices(count: int) -> list[int]:
    """The samples of an image that are scored: all, or MAX_SAMPLES evenly spread."""
    if count <= MAX_SAMPLES:
        return list(range(count))
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, MAX_SAMPLES)})


def input_profile_text(profile: dict | None) -> str:
    """The model card's line: whether predictions check their input, and against what."""
    if not profile:
        return "Input profile: absent (a model saved before profiles): inputs are not checked"
    return (
        f"Input profile: {len(profile['tiles'])} training tiles; an input scoring above "
        f"{profile.get('threshold', THRESHOLD):g} is warned about"
    )
