"""The two halves of tiled prediction: cutting overlapping tiles from bands of rows
(read ahead by a thread, reflect-padded at the borders) and merging the network's tiles
back with a separable Gaussian window, handing each band of finished rows to the output.
Memory is bounded by a band of tiles, not by the image or stack."""

from __future__ import annotations

import itertools
import math
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import ImageFileError, Pix2PixError
from .axes import AxesLayout


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Evenly spread tile origins covering [0, length) with at least ``overlap`` overlap."""
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1.0 - overlap)))
    n = math.ceil((length - tile) / step) + 1
    return [int(round(v)) for v in np.linspace(0, length - tile, n)]


def gaussian_1d(n: int, sigma_scale: float = 0.125) -> np.ndarray:
    """1D Gaussian blending weights (sigma = 1/8 of the tile, as MONAI's); the window is
    their outer product.

    Not MONAI's compute_importance_map: it clamps small weights to a floor, which makes a
    tile's unreliable edge weigh as much as a neighbour's centre where both are small
    (along the image border), leaving visible seams there."""
    x = np.arange(n) - (n - 1) / 2.0
    g = np.exp(-0.5 * (x / (sigma_scale * n)) ** 2)
    return g / g.max()


def reflect_indices(start: int, size: int, length: int) -> np.ndarray:
    """Indices start..start+size-1 mirrored into [0, length) (numpy 'reflect' padding)."""
    idx = np.arange(start, start + size)
    if length == 1:
        return np.zeros_like(idx)
    period = 2 * (length - 1)
    idx = np.abs(idx) % period
    return np.where(idx >= length, period - idx, idx)


@dataclass
class Geometry:
    """Tile size, tile origins, the blending window and its per-axis sums for one
    spatial shape. The weight sum is separable, so it costs one vector per axis."""

    spatial: tuple[int, ...]
    tile: tuple[int, ...]
    starts: list[list[int]]
    window: np.ndarray = field(repr=False)
    weight: list[np.ndarray] = field(repr=False)

    @classmethod
    def make(cls, spatial, tile, overlap) -> Geometry:
        starts = [tile_starts(n, t, overlap) for n, t in zip(spatial, tile)]
        axis_windows = [np.ones(t) if len(s) == 1 else gaussian_1d(t) for s, t in zip(starts, tile)]
        window = axis_windows[0]
        for w in axis_windows[1:]:
            window = np.multiply.outer(window, w)
        weight = []
        for n, t, s, w in zip(spatial, tile, starts, axis_windows):
            total = np.zeros(max(n, t) + t)
            for o in s:
                total[o : o + t] += w
            weight.append(total[:n])
        return cls(tuple(spatial), tuple(tile), starts, window.astype(np.float32), weight)

    @property
    def tiles_per_sample(self) -> int:
        return int(np.prod([len(s) for s in self.starts]))


@dataclass
class Tile:
    """One tile: sample ``n``, band ``k`` (its row origin), its origin along the other
    spatial axes, the (C, *tile) data, and whether it is the band's last."""

    n: int
    k: int
    origin: tuple[int, ...]
    data: np.ndarray = field(repr=False)
    last_in_band: bool


def cut_tiles(
    source, layout: AxesLayout, geo: Geometry, samples: range, batch_size: int
) -> Iterator[list[Tile]]:
    """Batches of tiles of the given samples, in order. A thread reads the bands of rows
    ahead (a file or a dask graph works while the network runs); closing the iterator
    stops it."""
    bands: queue.Queue = queue.Queue(maxsize=3)
    stop = threading.Event()
    reader = threading.Thread(
        target=_read_bands,
        name="pix2pix-reader",
        daemon=True,
        args=(source, layout, geo, samples, bands, stop),
    )
    reader.start()
    others = list(itertools.product(*geo.starts[1:]))
    pending: list[Tile] = []
    try:
        while True:
            item = bands.get()
            if isinstance(item, BaseException):
                raise item
            if item is not None:
                n, k, band = item
                for j, o in enumerate(others):
                    cut = (slice(None), slice(None)) + tuple(
                        slice(s, s + t) for s, t in zip(o, geo.tile[1:])
                    )
                    pending.append(Tile(n, k, o, band[cut], j == len(others) - 1))
            while pending and (len(pending) >= batch_size or item is None):
                batch, pending = pending[:batch_size], pending[batch_size:]
                yield batch
            if item is None:
                return
    finally:
        stop.set()


def _read_bands(
    source, layout: AxesLayout, geo: Geometry, samples, bands: queue.Queue, stop: threading.Event
) -> None:
    """Reader thread: bands (C, tile rows, *other axes padded to the tiles) in order,
    then None; an exception is handed over to be raised by the consumer."""
    length, t0 = geo.spatial[0], geo.tile[0]
    pads = [(0, 0), (0, 0)] + [(0, max(0, t - n)) for n, t in zip(geo.spatial[1:], geo.tile[1:])]

    def put(item) -> bool:
        """Hand over an item unless the consumer has gone (then False)."""
        while not stop.is_set():
            try:
                bands.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        for n in samples:
            for k, s in enumerate(geo.starts[0]):
                idx = reflect_indices(s, t0, length)
                lo, hi = int(idx.min()), int(idx.max()) + 1
                try:
                    band = layout.read(source, n, slice(lo, hi))
                except Pix2PixError:
                    raise
                except Exception as exc:  # a file that breaks mid-way
                    raise ImageFileError(
                        f"reading the input failed at sample {n}, rows "
                        f"{lo}-{hi} ({type(exc).__name__}: {exc})."
                    ) from exc
                if hi - lo != t0 or lo != s:
                    band = band[:, idx - lo]
                if any(p[1] for p in pads):
                    band = np.pad(band, pads, mode="reflect" if min(geo.spatial) > 1 else "edge")
                if not put((n, k, band)):
                    return
        put(None)
    except BaseException as exc:  # handed to the consumer to raise
        put(exc)


class TileMerger:
    """Blends predicted tiles into bands of rows and writes each band to ``output`` as
    soon as no later tile touches it; ``to_units`` maps the blended rows to the target's
    units first."""

    def __init__(
        self, geo: Geometry, channels: int, output, to_units: Callable[[np.ndarray], np.ndarray]
    ) -> None:
        self.geo, self.channels, self.output, self.to_units = geo, channels, output, to_units
        self.bands: dict[int, _Band] = {}

    def add(self, tiles: list[Tile], predictions: np.ndarray) -> None:
        for tile, pred in zip(tiles, predictions):
            band = self.bands.get(tile.n)
            if band is None:
                band = self.bands[tile.n] = _Band(self.geo, self.channels)
            band.add(tile.k, tile.origin, pred)
            if tile.last_in_band:
                rows, block = band.flush(tile.k)
                self.output.write(tile.n, rows, self.to_units(block))
                if tile.k == len(self.geo.starts[0]) - 1:
                    self.output.sample_done(tile.n)
                    del self.bands[tile.n]


class _Band:
    """Weighted sums for the rows one band of tiles covers, in one sample."""

    def __init__(self, geo: Geometry, channels: int) -> None:
        self.geo = geo
        self.acc = np.zeros((channels,) + (geo.tile[0],) + geo.spatial[1:], np.float32)

    def add(self, k: int, other_starts: tuple[int, ...], pred: np.ndarray) -> None:
        geo = self.geo
        rows = min(geo.tile[0], geo.spatial[0] - geo.starts[0][k])
        region = tuple(
            slice(o, min(o + t, n)) for o, t, n in zip(other_starts, geo.tile[1:], geo.spatial[1:])
        )
        crop = (slice(0, rows),) + tuple(slice(0, r.stop - r.start) for r in region)
        self.acc[(slice(None), slice(0, rows)) + region] += (
            pred[(slice(None),) + crop] * geo.window[crop]
        )

    def flush(self, k: int) -> tuple[slice, np.ndarray]:
        """Rows that no later tile touches: blended result, and shift the rest up."""
        geo = self.geo
        start = geo.starts[0][k]
        stop = geo.starts[0][k + 1] if k + 1 < len(geo.starts[0]) else geo.spatial[0]
        n = stop - start
        weight = geo.weight[0][start:stop]
        for w in geo.weight[1:]:
            weight = np.multiply.outer(weight, w)
        block = self.acc[:, :n] / weight.astype(np.float32)
        rest = self.acc[:, n:].copy()
        self.acc[:] = 0.0
        self.acc[:, : rest.shape[1]] = rest
        return slice(start, stop), block
