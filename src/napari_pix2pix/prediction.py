"""Applying a generator to images of any size: overlapping tiles, batched through the
network in eval mode, blended with a separable Gaussian window, streamed band by band.

This is the only inference path: ``predict``, the CLI, validation during training, the
napari widget and dask workers all end up in ``TiledPredictor.run``. Tiles are cut from
bands of rows (the first spatial axis) read by a prefetching thread; once every tile
touching a band of rows is done, those rows are final and go to the output, so memory
is bounded by a band of tiles, not by the image or stack.
"""

from __future__ import annotations

import itertools
import math
import os
import queue
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .data import AxesLayout, as_array, check_array, check_axes, denormalize, normalize, output_axes
from .device import amp_dtype, autocast, free_memory, is_out_of_memory, resolve_device
from .errors import DeviceError, ImageFileError, InputError, Pix2PixError
from .outputs import ArrayOutput, ZarrOutput, open_output

Progress = Callable[[int, int], None]


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
                total[o:o + t] += w
            weight.append(total[:n])
        return cls(tuple(spatial), tuple(tile), starts, window.astype(np.float32), weight)

    @property
    def tiles_per_sample(self) -> int:
        return int(np.prod([len(s) for s in self.starts]))


@dataclass
class TiledPredictor:
    """The network call plus the tiling options; reusable across many images."""

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

    def geometry(self, spatial: tuple[int, ...]) -> Geometry:
        """Tiles shrink to the image where it is smaller (still a multiple of 2**depth)."""
        tile = tuple(min(t, math.ceil(n / self.multiple) * self.multiple)
                     for t, n in zip(self.tile, spatial))
        return Geometry.make(spatial, tile, self.overlap)

    def predict_sample(self, sample: np.ndarray) -> np.ndarray:
        """(C_in, *spatial) array -> (C_out, *spatial) float32 in target units."""
        dims = sample.ndim - 1
        spatial = "ZYX"[-dims:]
        layout = AxesLayout("C" + spatial, sample.shape, dims)
        out_layout = AxesLayout("C" + spatial, (len(self.target_low),) + sample.shape[1:], dims)
        output = ArrayOutput(np.empty(out_layout.shape, np.float32), out_layout)
        self.run(sample, layout, output)
        return output.array

    def run(self, source, layout: AxesLayout, output, progress: Progress | None = None) -> None:
        """Predict every sample of ``source`` (addressed through ``layout``) into
        ``output``, skipping the samples it already holds (resume)."""
        geo = self.geometry(layout.spatial_shape)
        per_sample = geo.tiles_per_sample
        first = output.done_samples
        total = layout.n_samples * per_sample
        done = first * per_sample
        bands: queue.Queue = queue.Queue(maxsize=3)
        stop = threading.Event()
        reader = threading.Thread(target=self._read_bands, name="pix2pix-reader", daemon=True,
                                  args=(source, layout, geo, range(first, layout.n_samples),
                                        bands, stop))
        reader.start()
        accumulators: dict[int, _Band] = {}
        pending: list[tuple] = []
        was_training = self.generator.training
        self.generator.eval()
        try:
            while True:
                item = bands.get()
                if isinstance(item, BaseException):
                    raise item
                finished = item is None
                if not finished:
                    n, k, band = item
                    if k == 0:
                        accumulators[n] = _Band(geo, len(self.target_low))
                    others = list(itertools.product(*geo.starts[1:]))
                    for j, o in enumerate(others):
                        cut = (slice(None), slice(None)) + tuple(slice(s, s + t) for s, t in
                                                                 zip(o, geo.tile[1:]))
                        pending.append((n, k, o, band[cut], j == len(others) - 1))
                while pending and (len(pending) >= self.batch_size or finished):
                    batch, pending = pending[: self.batch_size], pending[self.batch_size:]
                    tiles = np.stack([b[3] for b in batch])
                    if tiles.dtype.kind == "f" and not np.isfinite(tiles).all():
                        raise InputError("the image contains NaN or infinite values; replace them "
                                         "(e.g. numpy.nan_to_num) before prediction.")
                    pred = self.forward(normalize(tiles, self.source_low, self.source_high, 1))
                    for (n, k, o, _, last), p in zip(batch, pred):
                        acc = accumulators[n]
                        acc.add(k, o, p)
                        if last:
                            rows, block = acc.flush(k)
                            output.write(n, rows, denormalize(block, self.target_low,
                                                              self.target_high))
                            if k == len(geo.starts[0]) - 1:
                                output.sample_done(n)
                                del accumulators[n]
                    done += len(batch)
                    if progress is not None:
                        progress(done, total)
                if finished:
                    break
            output.finish()
        except BaseException:
            stop.set()
            output.abort()
            raise
        finally:
            stop.set()
            self.generator.train(was_training)

    def _read_bands(self, source, layout: AxesLayout, geo: Geometry, samples, bands: queue.Queue,
                    stop: threading.Event) -> None:
        """Reader thread: bands (C, tile rows, *other axes padded to the tiles) in order."""
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
                    except Exception as exc:  # noqa: BLE001 - a file that breaks mid-way
                        raise ImageFileError(f"reading the input failed at sample {n}, rows "
                                             f"{lo}-{hi} ({type(exc).__name__}: {exc}).") from exc
                    if hi - lo != t0 or lo != s:
                        band = band[:, idx - lo]
                    if any(p[1] for p in pads):
                        band = np.pad(band, pads, mode="reflect" if min(geo.spatial) > 1 else "edge")
                    if not put((n, k, band)):
                        return
            put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer to raise
            put(exc)

    def forward(self, tiles: np.ndarray) -> np.ndarray:
        """The network on a batch of tiles; out of memory, the batch is split in halves
        (and ``batch_size`` lowered for the rest of the run), then TileTooLarge."""
        outputs, i = [], 0
        while i < len(tiles):
            chunk = tiles[i: i + self.batch_size]
            try:
                outputs.append(self._forward(chunk))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                free_memory(self.device)
                if len(chunk) == 1:
                    raise TileTooLarge(f"out of memory on {self.device} for a single tile of "
                                       f"{chunk.shape[2:]}") from exc
                self.batch_size = len(chunk) // 2
                warnings.warn(f"out of memory on {self.device} with {len(chunk)} tiles per batch; "
                              f"continuing with batch_size={self.batch_size}.", stacklevel=2)
                continue
            i += len(chunk)
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    @torch.inference_mode()
    def _forward(self, tiles: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(tiles).to(self.device)
        with autocast(self.device, self.dtype):
            y = self.generator(t)
        return y.float().cpu().numpy()


class TileTooLarge(DeviceError):
    """Even one tile does not fit in the device's memory (predict retries smaller tiles)."""


class _Band:
    """Weighted sums for the rows one band of tiles covers, in one sample."""

    def __init__(self, geo: Geometry, channels: int) -> None:
        self.geo = geo
        self.acc = np.zeros((channels,) + (geo.tile[0],) + geo.spatial[1:], np.float32)

    def add(self, k: int, other_starts: tuple[int, ...], pred: np.ndarray) -> None:
        geo = self.geo
        rows = min(geo.tile[0], geo.spatial[0] - geo.starts[0][k])
        region = tuple(slice(o, min(o + t, n)) for o, t, n in zip(other_starts, geo.tile[1:], geo.spatial[1:]))
        crop = (slice(0, rows),) + tuple(slice(0, r.stop - r.start) for r in region)
        self.acc[(slice(None), slice(0, rows)) + region] += pred[(slice(None),) + crop] * geo.window[crop]

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


def make_predictor(model, tile_size=None, overlap: float = 0.25, batch_size: int = 4,
                   device="auto", amp: str = "off") -> TiledPredictor:
    """Check the tiling options against the model and build the predictor."""
    cfg = model.config
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0.0 <= overlap < 1.0:
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


def dihedral_transforms(axes: str):
    """The 8 flips/rotations of the Y-X plane as (forward, inverse) pairs for arrays
    with ``axes`` (inverse for an output with other axes takes its own axes string)."""
    def make(k: int, flip: bool):
        def forward(a, ax=axes):
            y, x = ax.index("Y"), ax.index("X")
            return np.rot90(np.flip(a, x) if flip else a, k, axes=(y, x))

        def inverse(a, ax):
            y, x = ax.index("Y"), ax.index("X")
            a = np.rot90(a, -k, axes=(y, x))
            return np.flip(a, x) if flip else a
        return forward, inverse
    return [make(k, flip) for flip in (False, True) for k in range(4)]


def _predict_with_spread(predictor: TiledPredictor, array: np.ndarray, axes: str, out_axes: str,
                         cfg, progress: Progress | None) -> tuple[np.ndarray, np.ndarray]:
    """Test-time augmentation: the plain prediction and the standard deviation over the
    prediction of every flip/rotation of the image (mapped back), accumulated with
    Welford's method so memory stays at three output-sized arrays."""
    transforms = dihedral_transforms(axes)
    mean = m2 = first = None
    for i, (forward, inverse) in enumerate(transforms):
        moved = np.ascontiguousarray(forward(array))
        layout = AxesLayout(axes, moved.shape, cfg.spatial_dims)
        output = open_output(None, layout, out_axes, cfg.out_channels)

        def report(done, total, i=i):
            if progress is not None:
                progress(i * total + done, len(transforms) * total)
        predictor.run(moved, layout, output, report)
        pred = np.ascontiguousarray(inverse(output.array, out_axes))
        if first is None:
            first, mean, m2 = pred, pred.astype(np.float64), np.zeros(pred.shape)
        else:
            delta = pred - mean
            mean += delta / (i + 1)
            m2 += delta * (pred - mean)
    return first, np.sqrt(m2 / len(transforms)).astype(np.float32)


def _smaller_tiles(predictor: TiledPredictor, exc: TileTooLarge) -> TiledPredictor:
    """Half the tile side (keeping it a multiple of 2**depth), or give up clearly."""
    m = predictor.multiple
    smaller = tuple(max(m, t // 2 // m * m) for t in predictor.tile)
    if smaller == predictor.tile:
        fix = ("free memory (close other programs)" if predictor.device.type == "cpu" else
               "predict on the CPU (device='cpu') or free memory on the GPU")
        raise DeviceError(f"{exc}, even at the smallest tile size {smaller}: {fix}.") from exc
    warnings.warn(f"{exc}; retrying with tile_size={smaller} and batch_size=1 (less context per "
                  "tile, otherwise the same prediction).", stacklevel=3)
    return replace(predictor, tile=smaller, batch_size=1)


def prepare_image(model, image, axes: str | None, lazy: bool = True):
    """Resolve the image's array, axes, scale and layout, checking it fits the model.
    Paths are opened lazily (only the tiles' rows are read)."""
    from .data import ImageData, read_image

    cfg = model.config
    scale, unit = {}, None
    if isinstance(image, (str, os.PathLike)) and lazy:
        image = read_image(image, lazy=True)
    if isinstance(image, ImageData):
        scale, unit = image.scale, image.unit
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
    layout = AxesLayout(axes, array.shape, cfg.spatial_dims)
    if layout.channels != cfg.in_channels:
        raise InputError(f"the image has {layout.channels} channel(s) (axes {axes!r}, shape "
                         f"{tuple(array.shape)}) but the model expects {cfg.in_channels}.")
    return array, axes, layout, scale, unit


def predict(model, image, axes: str | None = None, tile_size=None, overlap: float = 0.25,
            batch_size: int = 4, device="auto", amp: str = "off",
            progress: Progress | None = None, return_axes: bool = False, out=None,
            if_exists: str = "overwrite", uncertainty: bool = False):
    """Translate ``image`` with a trained model, tile by tile.

    Args:
        model: a Pix2PixModel or the path of a saved model.
        image: numpy, dask or zarr array (any integer/float dtype), or a TIFF path (read
            lazily, a band of rows at a time).
        axes: the image's axes (default: from the file, else the model's source axes).
            2D models run slice by slice over Z/T (batched across slices); 3D models
            tile in 3D.
        tile_size: tile side (default: the training patch size); rounded up to a multiple
            of 2**depth.
        overlap: fraction of overlap between neighbouring tiles, blended with a Gaussian.
        progress: called with (tiles done, tiles total); raising from it cancels.
        return_axes: also return the output's axes string.
        out: None (return a numpy array), a writable array of the output's shape, or a
            path: ``.tif``/``.ome.tif`` (streamed, BigTIFF when large, renamed from
            ``.partial`` when complete) or ``.zarr`` (marked complete at the end).
        if_exists: for an existing ``out`` path: "overwrite", "resume" (zarr: skip the
            slices already written) or "error".
        uncertainty: also return a confidence map: the per-pixel standard deviation, in
            target units, of the predictions of the 8 flipped/rotated copies of the image
            (test-time augmentation; 8x the work, in memory only).

    Returns:
        float32 array in the target's units with the input's axes (C only where the
        model's target has channels), or the ``out`` given; ``(result, spread)`` with
        ``uncertainty``; the output axes appended with ``return_axes``.
    """
    from .model import as_model

    model = as_model(model)
    cfg = model.config
    array, axes, layout, scale, unit = prepare_image(model, image, axes)
    out_axes = output_axes(cfg.source_axes, cfg.target_axes, axes)
    predictor = make_predictor(model, tile_size, overlap, batch_size, device, amp)
    if uncertainty:
        if out is not None:
            raise InputError("uncertainty=True returns the prediction and its spread in memory; "
                             "leave out=None (or predict without uncertainty to stream).")
        result = _predict_with_spread(predictor, np.asarray(array), axes, out_axes, cfg, progress)
        return (*result, out_axes) if return_axes else result
    while True:
        output = open_output(out, layout, out_axes, cfg.out_channels, scale, unit, if_exists)
        try:
            predictor.run(array, layout, output, progress)
            break
        except TileTooLarge as exc:
            predictor = _smaller_tiles(predictor, exc)
            # start again; a zarr store keeps the slices already finished
            if_exists = "resume" if isinstance(output, ZarrOutput) else "overwrite"
    result = Path(out) if isinstance(out, (str, os.PathLike)) else output.array
    return (result, out_axes) if return_axes else result


_WORKER_MODELS: dict[int, object] = {}


def predict_lazy(model, image, axes: str | None = None, tile_size=None, overlap: float = 0.25,
                 batch_size: int = 4, device="auto", amp: str = "off"):
    """The prediction as a lazy dask array with one task per sample (slice, time point
    or volume), each run by the same tiled engine as ``predict``.

    Compute it with any dask scheduler: inside a ``dask.distributed.Client`` it runs on
    that cluster (a LocalCluster, dask-jobqueue on Slurm, Kubernetes, ...), and
    ``.to_zarr()`` writes it without gathering it. The model travels to the workers in
    its safetensors form (no pickled torch objects) and is rebuilt once per worker.
    """
    import dask.array as da

    from .model import as_model

    model = as_model(model)
    cfg = model.config
    array, axes, layout, _, _ = prepare_image(model, image, axes)
    make_predictor(model, tile_size, overlap, batch_size, "cpu", amp)  # checks the options now
    x = array if isinstance(array, da.Array) else da.from_array(array, chunks=-1)
    x = x.rechunk(tuple(1 if a in layout.sample_axes else -1 for a in axes))
    out_axes = output_axes(cfg.source_axes, cfg.target_axes, axes)
    model_bytes = model.to_bytes()
    key = hash(model_bytes)
    options = dict(axes=axes, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
                   device=device, amp=amp)

    def block(chunk: np.ndarray) -> np.ndarray:
        from .model import model_from_bytes

        if key not in _WORKER_MODELS:
            _WORKER_MODELS[key] = model_from_bytes(model_bytes)
        return predict(_WORKER_MODELS[key], np.asarray(chunk), **options)

    kwargs: dict = {"dtype": np.float32, "meta": np.empty((0,) * len(out_axes), np.float32)}
    if "C" in axes and "C" not in out_axes:
        kwargs["drop_axis"] = axes.index("C")
    elif "C" not in axes and "C" in out_axes:
        kwargs["new_axis"] = out_axes.index("C")
    chunks = list(x.chunks)
    if "C" in axes:
        chunks.pop(axes.index("C"))
    if "C" in out_axes:
        chunks.insert(out_axes.index("C"), (cfg.out_channels,))
    return da.map_blocks(block, x, chunks=tuple(chunks), **kwargs)
