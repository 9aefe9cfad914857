"""Applying a generator to images of any size: overlapping tiles, batched through the
network in eval mode, blended with a Gaussian window computed once.

This is the only inference path: ``predict``, the CLI, validation during training and
the napari widget all end up in ``TiledPredictor``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .data import (as_array, check_array, check_axes, denormalize, from_canonical, normalize,
                   output_axes, to_canonical)
from .device import amp_dtype, autocast, resolve_device
from .errors import InputError

Progress = Callable[[int, int], None]


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Evenly spread tile origins covering [0, length) with at least ``overlap`` overlap."""
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1.0 - overlap)))
    n = math.ceil((length - tile) / step) + 1
    return [int(round(v)) for v in np.linspace(0, length - tile, n)]


def gaussian_window(tile: tuple[int, ...], sigma_scale: float = 0.125) -> np.ndarray:
    """Separable Gaussian blending weights (sigma = 1/8 of the tile, as MONAI's).

    Not MONAI's compute_importance_map: it clamps small weights to a floor, which makes
    a tile's unreliable edge weigh as much as a neighbour's centre where both are small
    (along the image border), leaving visible seams there."""
    window = np.ones((), np.float64)
    for n in tile:
        x = np.arange(n) - (n - 1) / 2.0
        g = np.exp(-0.5 * (x / (sigma_scale * n)) ** 2)
        window = np.multiply.outer(window, g / g.max())
    return window.astype(np.float32)


def reflect_indices(start: int, size: int, length: int) -> np.ndarray:
    """Indices start..start+size-1 mirrored into [0, length) (numpy 'reflect' padding)."""
    idx = np.arange(start, start + size)
    if length == 1:
        return np.zeros_like(idx)
    period = 2 * (length - 1)
    idx = np.abs(idx) % period
    return np.where(idx >= length, period - idx, idx)


def read_tile(sample, starts: tuple[int, ...], size: tuple[int, ...]) -> np.ndarray:
    """Read a (C, *size) tile of a (C, *spatial) array, reflecting beyond its borders.
    Only the bounding box is read, so lazy (zarr/dask) arrays stay lazy."""
    spatial = sample.shape[1:]
    inside = all(0 <= s and s + t <= n for s, t, n in zip(starts, size, spatial))
    if inside:
        return np.asarray(sample[(slice(None),) + tuple(slice(s, s + t) for s, t in zip(starts, size))])
    idx = [reflect_indices(s, t, n) for s, t, n in zip(starts, size, spatial)]
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in idx)
    block = np.asarray(sample[(slice(None),) + box])
    return block[(slice(None),) + np.ix_(*[i - b.start for i, b in zip(idx, box)])]


@dataclass
class TiledPredictor:
    """Tile geometry plus the network call; reusable across many images."""

    generator: torch.nn.Module
    source_low: list[float]
    source_high: list[float]
    target_low: list[float]
    target_high: list[float]
    multiple: int
    tile: tuple[int, ...]
    overlap: float = 0.25
    batch_size: int = 4
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype | None = None

    def tile_for(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Shrink the tile to the image where the image is smaller (still a valid size)."""
        return tuple(min(t, math.ceil(n / self.multiple) * self.multiple)
                     for t, n in zip(self.tile, spatial))

    def run(self, x, progress: Progress | None = None) -> np.ndarray:
        """(N, C_in, *spatial) raw array -> (N, C_out, *spatial) float32 in target units."""
        n_samples, spatial = x.shape[0], tuple(x.shape[2:])
        tile = self.tile_for(spatial)
        grid = list(itertools.product(*[tile_starts(n, t, self.overlap) for n, t in zip(spatial, tile)]))
        if len(grid) == 1:  # one tile: no blending, exactly the whole-image result
            window = np.ones(tile, np.float32)
        else:
            window = gaussian_window(tile)
        weight = np.zeros(spatial, np.float32)
        for starts in grid:
            region, crop = _region(starts, tile, spatial)
            weight[region] += window[crop]
        out = np.zeros((n_samples, len(self.target_low)) + spatial, np.float32)
        jobs = [(n, starts) for n in range(n_samples) for starts in grid]
        total = len(jobs)
        was_training = self.generator.training
        self.generator.eval()
        try:
            for first in range(0, total, self.batch_size):
                batch = jobs[first: first + self.batch_size]
                tiles = np.stack([read_tile(x[n], starts, tile) for n, starts in batch])
                if tiles.dtype.kind == "f" and not np.isfinite(tiles).all():
                    raise InputError("the image contains NaN or infinite values; replace them "
                                     "(e.g. numpy.nan_to_num) before prediction.")
                pred = self.forward(normalize(tiles, self.source_low, self.source_high, channel_axis=1))
                for (n, starts), p in zip(batch, pred):
                    region, crop = _region(starts, tile, spatial)
                    out[(n, slice(None)) + region] += p[(slice(None),) + crop] * window[crop]
                if progress is not None:
                    progress(min(first + self.batch_size, total), total)
        finally:
            self.generator.train(was_training)
        out /= weight
        return denormalize(out, self.target_low, self.target_high, channel_axis=1)

    @torch.inference_mode()
    def forward(self, tiles: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(tiles).to(self.device)
        with autocast(self.device, self.dtype):
            y = self.generator(t)
        return y.float().cpu().numpy()


def _region(starts, tile, spatial):
    """Output slices of a tile clipped to the image, and the matching slices of the tile."""
    stops = [min(s + t, n) for s, t, n in zip(starts, tile, spatial)]
    region = tuple(slice(s, e) for s, e in zip(starts, stops))
    crop = tuple(slice(0, e - s) for s, e in zip(starts, stops))
    return region, crop


def make_predictor(model, tile_size=None, overlap: float = 0.25, batch_size: int = 4,
                   device="auto", amp: str = "off") -> TiledPredictor:
    """Check the tiling options against the model and build the predictor."""
    cfg = model.config
    if not 0.0 <= overlap < 1.0:
        raise InputError(f"overlap must be in [0, 1), got {overlap!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if tile_size is None:
        tile = tuple(cfg.patch_size)
    else:
        tile = (tile_size,) * cfg.spatial_dims if isinstance(tile_size, int) else tuple(tile_size)
        if len(tile) != cfg.spatial_dims or any(
                isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t <= 0 for t in tile):
            raise InputError(f"tile_size must be a positive integer or {cfg.spatial_dims} of them, "
                             f"got {tile_size!r}.")
        rounded = tuple(int(math.ceil(t / cfg.multiple) * cfg.multiple) for t in tile)
        if rounded != tile:
            warnings.warn(f"tile_size {tile_size} is not a multiple of 2**depth = {cfg.multiple}; "
                          f"using {rounded}.", stacklevel=3)
        tile = rounded
    dev = resolve_device(device)
    return TiledPredictor(model.generator.to(dev), cfg.source_low, cfg.source_high, cfg.target_low,
                          cfg.target_high, cfg.multiple, tile, overlap, batch_size, dev,
                          amp_dtype(dev, amp))


def prepare_image(model, image, axes: str | None):
    """Resolve the image's array and axes and check it fits the model; returns
    (array, axes, canonical view)."""
    cfg = model.config
    array, file_axes = as_array(image, "image")
    check_array(array, "image")
    if axes is None:
        if file_axes and len(file_axes) == array.ndim:
            axes = file_axes
        elif len(cfg.source_axes) == array.ndim:
            axes = cfg.source_axes
        else:
            raise InputError(f"the image has {array.ndim} dimensions but the model was trained on "
                             f"{cfg.source_axes!r}; pass axes=... (e.g. 'ZYX' for a stack).")
    axes = check_axes(axes, array.ndim, cfg.spatial_dims, "image")
    canonical = to_canonical(array, axes, cfg.spatial_dims)
    if canonical.shape[1] != cfg.in_channels:
        raise InputError(f"the image has {canonical.shape[1]} channel(s) (axes {axes!r}, shape "
                         f"{tuple(array.shape)}) but the model expects {cfg.in_channels}.")
    return array, axes, canonical


def predict(model, image, axes: str | None = None, tile_size=None, overlap: float = 0.25,
            batch_size: int = 4, device="auto", amp: str = "off",
            progress: Progress | None = None, return_axes: bool = False):
    """Translate ``image`` with a trained model, tile by tile.

    Args:
        model: a Pix2PixModel or the path of a saved model.
        image: numpy array (any integer/float dtype) or TIFF path.
        axes: the image's axes (default: from the file, else the model's source axes).
            2D models run slice by slice over Z/T; 3D models tile in 3D.
        tile_size: tile side (default: the training patch size); rounded up to a multiple
            of 2**depth.
        overlap: fraction of overlap between neighbouring tiles, blended with a Gaussian.
        progress: called with (tiles done, tiles total).
        return_axes: also return the output's axes string.

    Returns:
        float32 array in the target's units, with the input's axes (C only where the
        model's target has channels); ``(array, axes)`` with ``return_axes``.
    """
    from .model import as_model

    model = as_model(model)
    cfg = model.config
    array, axes, canonical = prepare_image(model, image, axes)
    predictor = make_predictor(model, tile_size, overlap, batch_size, device, amp)
    out = predictor.run(canonical, progress)
    out_axes = output_axes(cfg.source_axes, cfg.target_axes, axes)
    result = from_canonical(out, axes, tuple(array.shape), out_axes, cfg.spatial_dims)
    return (result, out_axes) if return_axes else result
