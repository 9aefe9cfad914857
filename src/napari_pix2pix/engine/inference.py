"""The one inference path: a generator applied to images of any size, tile by tile
(tiling.py), batched through the network in eval mode. ``predict``, the CLI, validation
during training, the napari widget and dask workers all end up in
``TiledPredictor.run``; where the result goes is an output object (ArrayOutput here,
files in io/outputs.py)."""

from __future__ import annotations

import copy
import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..errors import DeviceError, InputError, Pix2PixError, PredictionError
from ..run_options import PredictOptions
from .axes import AxesLayout
from .device import amp_dtype, autocast, resolve_device
from .fusion import inference_copy, memory_format
from .memory import free_memory, gib, is_out_of_memory, smaller, unet_bytes
from .normalization import Normalization
from .tiling import Geometry, TileMerger, cut_tiles, tile_starts


class ArrayOutput:
    """Writes blocks into any array supporting slice assignment (numpy, zarr, memmap).

    The output protocol: ``write(n, rows, block)``, ``sample_done(n)``, ``finish()``,
    ``abort()`` and ``done_samples`` (samples already complete: a resumed run skips them)."""

    def __init__(self, array, layout: AxesLayout) -> None:
        self.array, self.layout = array, layout
        self.done_samples = 0

    def write(self, n: int, rows: slice, block: np.ndarray) -> None:
        self.layout.write(self.array, n, rows, block)

    def sample_done(self, n: int) -> None:
        self.done_samples = n + 1

    def finish(self) -> None:
        pass

    def abort(self) -> str:
        """Stop after a failure; the sentence says what stays on disk ('' if nothing)."""
        return ""

    def discard(self) -> None:
        """After abort, when the run starts again into a new output: drop what stays."""


class TileTooLarge(DeviceError):
    """Even one tile does not fit in the device's memory (predict retries smaller tiles)."""


@dataclass
class Launched:
    """One network call under way: its output array, valid once ``ready`` has passed
    (None: computed already). Ours, not a Future: a CUDA event needs no thread."""

    output: np.ndarray
    ready: torch.cuda.Event | None = None

    def result(self) -> np.ndarray:
        if self.ready is not None:
            self.ready.synchronize()
            self.ready = None
        return self.output


@dataclass
class TiledPredictor:
    """The network call plus the tiling options; reusable across many images."""

    generator: torch.nn.Module
    source_norm: Normalization
    target_norm: Normalization
    multiple: int
    tile: tuple[int, ...]
    overlap: float = 0.25
    batch_size: int = 4
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype | None = None
    memory_format: torch.memory_format = torch.contiguous_format  # the generator's

    def geometry(self, spatial: tuple[int, ...]) -> Geometry:
        """Tiles shrink to the image where it is smaller (still a multiple of 2**depth)."""
        return Geometry.make(spatial, self._tile_for(spatial), self.overlap)

    def tiles_per_sample(self, spatial: tuple[int, ...]) -> int:
        """The geometry's tile count, without making its blending window."""
        tile = self._tile_for(spatial)
        return math.prod(len(tile_starts(n, t, self.overlap)) for n, t in zip(spatial, tile))

    def _tile_for(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(
            min(t, math.ceil(n / self.multiple) * self.multiple) for t, n in zip(self.tile, spatial)
        )

    def predict_sample(self, sample: np.ndarray) -> np.ndarray:
        """(C_in, *spatial) array -> (C_out, *spatial) float32 in target units."""
        dims = sample.ndim - 1
        axes = "C" + "ZYX"[-dims:]
        out_layout = AxesLayout(axes, (len(self.target_norm.low),) + sample.shape[1:], dims)
        output = ArrayOutput(np.empty(out_layout.shape, np.float32), out_layout)
        self.run(sample, AxesLayout(axes, sample.shape, dims), output)
        return output.array

    def run(self, source, layout: AxesLayout, output, progress=None) -> None:
        """Predict every sample of ``source`` (addressed through ``layout``) into
        ``output``, skipping the samples it already holds (resume). ``progress(done,
        total)`` is called with the tile counts blended so far; raising from it cancels.

        Three stages overlap: while the device computes batch k, the calling thread cuts,
        normalizes and launches batch k+1 (on CUDA a launch does not wait for the card) and
        one background thread blends batch k-1 into ``output``, in order, one at a time.
        Not a DataLoader (pin_memory=True): the tiles must reach the merger in order, the
        reader thread of cut_tiles already reads ahead, and one batch ahead keeps a GPU
        busy."""
        geo = self.geometry(layout.spatial_shape)
        first = output.done_samples
        total = layout.n_samples * geo.tiles_per_sample
        done = first * geo.tiles_per_sample
        merger = TileMerger(
            geo, len(self.target_norm.low), output, lambda block: self.target_norm.inverse(block)
        )
        was_training = self.generator.training
        self.generator.eval()
        try:
            batches = cut_tiles(
                source, layout, geo, range(first, layout.n_samples), self.batch_size
            )
            # leaving this block, by an error too, waits for the blend under way: the
            # output is aborted only once nothing writes to it any more
            with ThreadPoolExecutor(1, thread_name_prefix="pix2pix-blend") as blender:
                blending = None  # (the blend under way, its tile count)

                def settle() -> None:
                    """Wait for the blend under way (raising its error here), report it."""
                    nonlocal blending, done
                    if blending is not None:
                        future, count = blending
                        blending = None
                        future.result()
                        done += count
                        if progress is not None:
                            progress(done, total)

                def hand_over(batch, launched) -> None:
                    """The launched batch's predictions, checked, to the blending thread."""
                    nonlocal blending
                    predictions = self.finish(launched)
                    if not np.isfinite(predictions).all():
                        raise PredictionError(
                            f"the model gave NaN or infinite values for sample {batch[0].n}; "
                            "nothing is handed back. The model may be damaged, or the image far "
                            "from what it was trained on."
                        )
                    settle()
                    blending = blender.submit(merger.add, batch, predictions), len(batch)

                in_flight = None  # (batch, launched): on the device, not yet finished
                with closing(batches):
                    for batch in batches:
                        tiles = self.source_norm.forward(np.stack([t.data for t in batch]), 1)
                        if not np.isfinite(tiles).all():
                            raise InputError(
                                "the image contains NaN or infinite values (or values too large "
                                "to normalise); replace them (e.g. numpy.nan_to_num) before "
                                "prediction."
                            )
                        launched = self.launch(tiles)
                        if in_flight is not None:
                            hand_over(*in_flight)
                        in_flight = batch, launched
                if in_flight is not None:
                    hand_over(*in_flight)
                settle()
            output.finish()
        except TileTooLarge:  # predict retries with smaller tiles
            output.abort()
            raise
        except Pix2PixError as exc:
            left = output.abort()
            if left:  # the message the user reads names the file that stays
                raise type(exc)(f"{exc} {left}") from exc
            raise
        except BaseException:
            output.abort()
            raise
        finally:
            self.generator.train(was_training)

    def forward(self, tiles: np.ndarray) -> np.ndarray:
        """The network on a batch of tiles, waited for (launch, then finish)."""
        return self.finish(self.launch(tiles))

    def launch(self, tiles: np.ndarray) -> list[Launched]:
        """Start the network on a batch of tiles, in calls of ``batch_size`` tiles; on
        CUDA it returns with the work queued, elsewhere done. Out of memory (on CUDA
        raised here, when the call allocates), the call is split in halves (and
        ``batch_size`` lowered for the rest of the run), then TileTooLarge."""
        launched, i = [], 0
        while i < len(tiles):
            chunk = tiles[i : i + self.batch_size]
            try:
                launched.append(self._launch(chunk))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                free_memory(self.device)
                if len(chunk) == 1:
                    raise TileTooLarge(
                        f"out of memory on {self.device} for a single tile of {chunk.shape[2:]}"
                    ) from exc
                self.batch_size = smaller(len(chunk), self.tile, self.multiple, self.multiple)[0]
                warnings.warn(
                    f"out of memory on {self.device} with {len(chunk)} tiles per batch; "
                    f"continuing with batch_size={self.batch_size}.",
                    stacklevel=2,
                )
                continue
            i += len(chunk)
        return launched

    def finish(self, launched: list[Launched]) -> np.ndarray:
        """The predictions of launched calls, (N, C_out, *tile) float32, once computed."""
        outputs = [call.result() for call in launched]
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    @torch.inference_mode()
    def _launch(self, tiles: np.ndarray) -> Launched:
        """One network call. On CUDA the tiles go up from a pinned buffer and the result
        comes down into one, both without waiting (PyTorch's caching host allocator does
        not reuse a pinned block while a copy from it is pending); elsewhere it computes."""
        x = torch.from_numpy(tiles)
        if self.device.type != "cuda":
            t = x.to(self.device).contiguous(memory_format=self.memory_format)
            with autocast(self.device, self.dtype):
                y = self.generator(t)
            return Launched(y.float().cpu().contiguous().numpy())
        pinned = torch.empty(x.shape, dtype=x.dtype, pin_memory=True).copy_(x)
        t = pinned.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.dtype):
            y = self.generator(t)
        host = torch.empty(y.shape, dtype=torch.float32, pin_memory=True)
        host.copy_(y.float(), non_blocking=True)
        ready = torch.cuda.Event()
        ready.record(torch.cuda.current_stream(self.device))
        return Launched(host.numpy(), ready)  # the array keeps ``host`` alive

    def with_smaller_tiles(self, exc: TileTooLarge) -> TiledPredictor:
        """The next tile size of the out-of-memory policy at batch 1, or a clear error."""
        fallback = smaller(1, self.tile, self.multiple, self.multiple)
        if fallback is None:
            fix = (
                "free memory (close other programs)"
                if self.device.type == "cpu"
                else "predict on the CPU (device='cpu') or free memory on the GPU"
            )
            raise DeviceError(f"{exc}, even at the smallest tile size {self.tile}: {fix}.") from exc
        warnings.warn(
            f"{exc}; retrying with tile_size={fallback[1]} and batch_size=1 (less context "
            "per tile, otherwise the same prediction).",
            stacklevel=3,
        )
        return replace(self, tile=fallback[1], batch_size=1)


def check_values(source, layout: AxesLayout, norm: Normalization) -> None:
    """Before any tile runs: a float image must hold no NaN or infinite value, and no
    value that normalisation cannot represent (a float64 1e300 would turn to inf). Read
    band by band, so a stack larger than memory is checked too; integer images need no
    check."""
    if np.dtype(source.dtype).kind != "f":
        return
    low, high, rows = np.inf, -np.inf, max(1, 2**22 // max(1, math.prod(layout.shape[1:])))
    for n in range(layout.n_samples):
        for start in range(0, layout.spatial_shape[0], rows):
            block = layout.read(source, n, slice(start, start + rows))
            finite = np.isfinite(block)
            if not finite.all():
                raise InputError(
                    f"the image contains {int((~finite).sum())} NaN or infinite values (the "
                    f"first in sample {n}); replace them (e.g. numpy.nan_to_num) before "
                    "prediction."
                )
            low, high = min(low, float(block.min())), max(high, float(block.max()))
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = norm.forward(np.array([[low, high]] * len(norm.low)))
    if not np.isfinite(scaled).all():
        raise InputError(
            f"the image holds values from {low:g} to {high:g}, which cannot be represented "
            f"after normalisation (the model was trained on {norm.low[0]:g}..{norm.high[0]:g}); "
            "rescale the image to the range of the training data."
        )


AUTO_BATCH = 4  # tiles per call when batch_size is left to auto (what the CPU is tuned for)
MAX_AUTO_BATCH = 64  # the most tiles per call auto grows to on CUDA


def fit_to_memory(
    predictor: TiledPredictor,
    config,
    available: int | None,
    grow: bool = False,
    tiles: int | None = None,
) -> TiledPredictor:
    """One memory rule for both directions: one call must fit in half the available
    memory. ``grow`` (batch_size left to auto), on CUDA only, doubles the batch while
    that holds, up to MAX_AUTO_BATCH and the ``tiles`` the image has; otherwise shrink the
    batch, then the tiles (the out-of-memory order), until it holds; refuse a model whose
    smallest tile cannot fit (a model of absurd depth would otherwise allocate tens of
    GiB). The CPU never grows: its kernels are packed and tuned for AUTO_BATCH."""
    if available is None:
        return predictor
    batch, tile = predictor.batch_size, predictor.tile
    if grow and predictor.device.type == "cuda":
        limit = max(batch, min(MAX_AUTO_BATCH, tiles or MAX_AUTO_BATCH))
        while batch < limit and unet_bytes(config, min(2 * batch, limit), tile) <= available // 2:
            batch = min(2 * batch, limit)
        predictor = replace(predictor, batch_size=batch)
    while unet_bytes(config, batch, tile) > available // 2:
        fallback = smaller(batch, tile, predictor.multiple, predictor.multiple)
        if fallback is None:
            raise DeviceError(
                f"this model needs about {gib(unet_bytes(config, 1, tile))} for even its "
                f"smallest tile {tile} (2**depth = {predictor.multiple} px per side), more than "
                f"the {gib(available)} available on {predictor.device}: it cannot be applied "
                "here."
            )
        batch, tile = fallback
    if (batch, tile) != (predictor.batch_size, predictor.tile):
        warnings.warn(
            f"tile {predictor.tile} x batch {predictor.batch_size} would need more memory than "
            f"the {gib(available)} available; using tile {tile} x batch {batch}.",
            stacklevel=3,
        )
    return replace(predictor, batch_size=batch, tile=tile)


def make_predictor(model, options: PredictOptions) -> TiledPredictor:
    """The predictor for ``model`` (config and generator) with checked tiling options."""
    cfg = model.config
    tile_size = options.tile_size
    if tile_size is None:
        tile = tuple(cfg.patch_size)
    else:
        tile = (tile_size,) * cfg.spatial_dims if isinstance(tile_size, int) else tuple(tile_size)
        if len(tile) != cfg.spatial_dims:
            raise InputError(
                f"tile_size must be a positive integer or {cfg.spatial_dims} of them, "
                f"got {tile_size!r}."
            )
        rounded = tuple(int(math.ceil(t / cfg.multiple) * cfg.multiple) for t in tile)
        if rounded != tile:
            warnings.warn(
                f"tile_size {tile_size} is not a multiple of 2**depth = {cfg.multiple}; "
                f"using {rounded}.",
                stacklevel=3,
            )
        tile = rounded
    _check_overlap(options.overlap, cfg.spatial_dims)
    dev = resolve_device(options.device)
    amp = amp_dtype(dev, options.amp)
    batch = AUTO_BATCH if options.batch_size is None else options.batch_size
    # packed for fp32 batches only: under autocast the packed kernels would run in fp32
    batch_shape = None if amp else (batch, cfg.in_channels, *tile)
    generator = (
        inference_copy(model.generator, dev, batch_shape=batch_shape)
        if options.fuse
        else _on_device(model.generator, dev)
    )
    layout = memory_format(generator) if options.fuse and dev.type == "cpu" else None
    return TiledPredictor(
        generator,
        Normalization.of(cfg, "source"),
        Normalization.of(cfg, "target"),
        cfg.multiple,
        tile,
        options.overlap,
        batch,
        dev,
        amp,
        layout or torch.contiguous_format,
    )


MAX_WORK = 100  # each pixel computed at most this many times (overlap 0.9 in 2D)


def _check_overlap(overlap: float, dims: int) -> None:
    """Overlap multiplies the work by about (1 / (1 - overlap)) ** dims: refuse absurd
    amounts, warn about large ones."""
    work = (1.0 / (1.0 - overlap)) ** dims
    largest = 1 - MAX_WORK ** (-1 / dims)  # 0.9 in 2D
    if overlap > largest + 1e-9:  # not the rounding of 1 / (1 - 0.9): 0.9 itself passes
        shown = math.floor(largest * 100 + 1e-6) / 100  # rounded down: itself allowed
        raise InputError(
            f"overlap={overlap} would compute every pixel about {work:,.0f} times; use at "
            f"most {shown:.2f} (0.25 to 0.5 is usual)."
        )
    if work > 16:
        warnings.warn(
            f"overlap={overlap} computes every pixel about {work:.0f} times; 0.25 to "
            "0.5 is usually enough.",
            stacklevel=4,
        )


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


def predict_with_spread(
    predictor: TiledPredictor,
    array: np.ndarray,
    axes: str,
    out_axes: str,
    out_channels: int,
    spatial_dims: int,
    progress=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Test-time augmentation: the plain prediction and the standard deviation over the
    prediction of every flip/rotation of the image (mapped back), accumulated with
    Welford's method so memory stays at three output-sized arrays."""
    transforms = dihedral_transforms(axes)
    mean = m2 = first = None
    for i, (forward, inverse) in enumerate(transforms):
        moved = np.ascontiguousarray(forward(array))
        layout = AxesLayout(axes, moved.shape, spatial_dims)
        out_layout = layout.with_channels(out_axes, out_channels)
        output = ArrayOutput(np.empty(out_layout.shape, np.float32), out_layout)

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


def _on_device(generator: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The caller's network as it is when it is on ``device`` already, else a copy there:
    predicting must not move the caller's model (fuse=False) to another device."""
    here = next(generator.parameters(), None)
    if (
        here is None
        or here.device == device
        or (device.type == here.device.type and device.index is None)
    ):
        return generator
    return copy.deepcopy(generator).to(device)
