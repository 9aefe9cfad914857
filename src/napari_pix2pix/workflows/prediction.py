"""``predict`` and ``predict_lazy``: a model (object or file) applied to an image
(array, dask/zarr array or file) through the engine's one tiled path, into memory, an
array, a streamed file, or a dask graph for a cluster."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from ..engine.arrays import check_array
from ..engine.axes import AxesLayout, check_axes, output_axes
from ..engine.inference import (
    TileTooLarge,
    check_values,
    fit_to_memory,
    make_predictor,
    predict_with_spread,
)
from ..engine.input_profile import InputCheck, check_input, sample_indices
from ..engine.lazy import LazySample
from ..engine.memory import device_memory
from ..engine.normalization import Normalization
from ..errors import InputError
from ..io.formats import format_of
from ..io.images import as_image
from ..io.metadata import pixel_size, scale_mismatch
from ..io.model_file import Pix2PixModel, as_model, model_from_bytes
from ..io.outputs import check_output, open_output
from ..options import options_doc, split_options, user_path
from ..run_options import PredictOptions
from .error_map import error_map, expected_error


def predict(
    model,
    image,
    axes: str | None = None,
    *,
    out=None,
    progress=None,
    return_axes: bool = False,
    return_input_check: bool = False,
    **options,
):
    """Translate ``image`` with a trained model, tile by tile.

    Args:
        model: a Pix2PixModel or the path of a saved model.
        image: numpy, dask or zarr array (any integer/float dtype), or a TIFF path (read
            lazily, a band of rows at a time) or NIfTI path (.nii mapped from disk,
            .nii.gz read whole).
        axes: the image's axes (default: from the file, else the model's source axes).
            2D models run slice by slice over Z/T (batched across slices); 3D models
            tile in 3D.
        out: None (return a numpy array), a writable array of the output's shape, or a
            path: ``.tif``/``.ome.tif`` (streamed, BigTIFF when large, renamed from
            ``.partial`` when complete), ``.nii``/``.nii.gz`` (held in memory, written
            with a NIfTI input's header: its affine unchanged) or ``.zarr`` (marked
            complete at the end).
        progress: called with (tiles done, tiles total); raising from it cancels.
        return_axes: also return the output's axes string.
        return_input_check: also return how far the image lies from the model's
            training inputs: an ``InputCheck`` (engine/input_profile.py) with a score
            per slice (per volume for a 3D model; 64 slices evenly spread on a longer
            stack), ``.score`` and ``.worst_sample`` the highest and where, ``.above``
            whether it exceeds ``.threshold`` and ``.reason`` which way it differs; None
            for a model without an input profile (saved by an earlier version). Above the
            threshold a warning says so whether or not it is returned.

    Returns:
        float32 array in the target's units with the input's axes (C only where the
        model's target has channels), or the ``out`` given; ``(result, error map)``
        with ``uncertainty``: the expected absolute error per pixel in the target's
        units (the spread of the 8 flips/rotations calibrated on the run's validation;
        the raw spread, with a warning, for a model without a calibration);
        the output axes appended with ``return_axes``, then the
        InputCheck with ``return_input_check``.
    """
    result, out_axes, check = _predict(model, image, axes, out, progress, options, True)
    parts = [
        *result,
        *([out_axes] if return_axes else []),
        *([check] if return_input_check else []),
    ]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _predict(
    model, image, axes, out, progress, options: dict, check_input: bool, note_uncalibrated=True
):
    """predict's work: ((result,) or (result, spread), output axes, InputCheck or None).
    ``check_input`` False leaves out the input check (predict_lazy's blocks: it checked
    the whole image once); ``note_uncalibrated`` False, the warning that the confidence
    map is uncalibrated (evaluate: scored against a target, the card says it)."""
    opts = PredictOptions(axes=axes, **split_options(options, PredictOptions, what="predict")[0])
    model_path = user_path(model) if isinstance(model, (str, os.PathLike)) else None
    model = as_model(model)
    cfg = model.config
    image = as_image(image, "image", lazy=True)
    axes, layout = image_layout(model, image.array, opts.axes, image.axes)
    out_axes = output_axes(cfg.source_axes, cfg.target_axes, axes)
    predictor = make_predictor(model, opts)
    tiles = layout.n_samples * predictor.tiles_per_sample(layout.spatial_shape)
    predictor = fit_to_memory(
        predictor, cfg, device_memory(predictor.device), opts.batch_size is None, tiles
    )
    # everything a user can get wrong is found before the first tile runs
    inputs = (model_path, image.source)
    if opts.uncertainty and out is not None:
        raise InputError(
            "uncertainty=True returns the prediction and its spread in memory; "
            "leave out=None (or predict without uncertainty to stream)."
        )
    out_shape = layout.with_channels(out_axes, cfg.out_channels).shape
    check_output(out, out_shape, out_axes, opts.if_exists, inputs)
    check_values(image.array, layout, predictor.source_norm)
    mismatch = scale_mismatch(model.history.pixel_size, pixel_size(image.scale, image.unit))
    if mismatch:
        warnings.warn(mismatch, stacklevel=3)
    check = input_check(model, image.array, layout, stacklevel=4) if check_input else None
    # the confidence map read as the expected error, where the model has a calibration
    calibration = error_map(model, 4, note_uncalibrated) if opts.uncertainty else None
    if opts.uncertainty:
        result = predict_with_spread(
            predictor,
            np.asarray(image.array),
            axes,
            out_axes,
            cfg.out_channels,
            cfg.spatial_dims,
            progress,
        )
        if calibration is not None:
            result = (result[0], expected_error(calibration, result[1], out_axes))
        return result, out_axes, check
    to_file = isinstance(out, (str, os.PathLike))
    zarr_out = to_file and format_of(out).resumable  # a store: resumable
    # a file is marked as this model's prediction: the hash of its file form
    model_sha256 = hashlib.sha256(model.to_bytes()).hexdigest() if to_file else ""
    identity = _identity(model_sha256, image, layout, opts) if zarr_out else None
    if_exists = opts.if_exists
    while True:
        output = open_output(
            out,
            layout,
            out_axes,
            cfg.out_channels,
            image.scale,
            image.unit,
            if_exists,
            inputs,
            identity,
            image.meta,
            model_sha256,
        )
        try:
            predictor.run(image.array, layout, output, progress)
            break
        except TileTooLarge as exc:
            output.discard()
            predictor = predictor.with_smaller_tiles(exc)
            # start again; a zarr store keeps the slices already finished (one replacing
            # an earlier result starts again beside it: that result stays until the end)
            if_exists = "resume" if zarr_out and if_exists != "overwrite" else if_exists
    result = Path(out) if isinstance(out, (str, os.PathLike)) else output.array
    return (result,), out_axes, check


def input_check(model, array, layout: AxesLayout, stacklevel: int = 3) -> InputCheck | None:
    """How far the image lies from the model's training inputs, per slice (volume), with
    a warning above the threshold; None for a model without an input profile. Reads a
    grid of tiles of each scored slice, not the whole image."""
    indices = sample_indices(layout.n_samples)
    samples = [LazySample(array, layout, n) for n in indices]
    try:
        check = check_input(
            samples, Normalization.of(model.config, "source"), model.input_profile, indices
        )
    except Exception as exc:  # a file that breaks part-way (a damaged plane), a damaged
        # profile: said, and the prediction goes on (it names a damaged sample itself,
        # keeping what it wrote: tiling.py)
        warnings.warn(
            f"the input was not checked against the model's training inputs ({exc}).",
            stacklevel=stacklevel,
        )
        return None
    if check is not None:
        check.worst_label = sample_label(layout, check.worst_sample)
    if check is not None and check.above:
        warnings.warn(check.message(), stacklevel=stacklevel)
    return check


def sample_label(layout: AxesLayout, n: int) -> str:
    """Sample ``n`` as a person finds it in the viewer: 'slice 4', 'time point 2',
    'T 2, Z 5' (a stack of several sample axes)."""
    axes, shape = layout.sample_axes, layout.sample_shape
    if len(axes) == 1:
        return f"{'slice' if axes == 'Z' else 'time point' if axes == 'T' else axes} {n}"
    if not axes:
        return ""
    return ", ".join(f"{a} {int(i)}" for a, i in zip(axes, np.unravel_index(n, shape)))


predict.__doc__ += options_doc(PredictOptions)

_WORKER_MODELS: dict[int, Pix2PixModel] = {}


def predict_lazy(model, image, axes: str | None = None, **options):
    """The prediction as a lazy dask array with one task per sample (slice, time point
    or volume), each run by the same tiled engine as ``predict``.

    Compute it with any dask scheduler: inside a ``dask.distributed.Client`` it runs on
    that cluster (a LocalCluster, dask-jobqueue on Slurm, Kubernetes, ...), and
    ``.to_zarr()`` writes it without gathering it. The model travels to the workers in
    its safetensors form (no pickled torch objects) and is rebuilt once per worker.
    """
    import dask.array as da

    opts = PredictOptions(
        axes=axes, **split_options(options, PredictOptions, what="predict_lazy")[0]
    )
    if opts.uncertainty or "if_exists" in options:
        raise InputError(
            "predict_lazy takes the tiling options only (no uncertainty, no if_exists)."
        )
    model = as_model(model)
    cfg = model.config
    image = as_image(image, "image", lazy=True)
    axes, layout = image_layout(model, image.array, opts.axes, image.axes)
    make_predictor(model, PredictOptions(**{**options, "device": "cpu"}))  # checks the options now
    array = image.array
    input_check(model, array, layout)
    x = array if isinstance(array, da.Array) else da.from_array(array, chunks=-1)
    x = x.rechunk(tuple(1 if a in layout.sample_axes else -1 for a in axes))
    out_axes = output_axes(cfg.source_axes, cfg.target_axes, axes)
    model_bytes = model.to_bytes()
    key = hash(model_bytes)
    options = {k: v for k, v in options.items() if k != "axes"}

    def block(chunk: np.ndarray) -> np.ndarray:
        if key not in _WORKER_MODELS:
            _WORKER_MODELS[key] = model_from_bytes(model_bytes)
        # the whole image was checked once, above: not again per block
        (result,), _, _ = _predict(
            _WORKER_MODELS[key], np.asarray(chunk), axes, None, None, options, False
        )
        return result

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


def _identity(model_sha256: str, image, layout: AxesLayout, opts: PredictOptions) -> dict:
    """What identifies a prediction, recorded in a zarr output so that ``resume`` only
    ever continues the same work: the model (a hash of its file form), the input (its
    file's path, size and time, or a hash of sampled rows of an array) and the tiling."""
    model_hash = model_sha256[:16]
    if image.source is not None and image.source.is_file():
        info = image.source.stat()
        source = {
            "path": str(image.source.resolve()),
            "size": info.st_size,
            "mtime_ns": info.st_mtime_ns,
        }
    else:
        digest = hashlib.sha256(str((tuple(image.array.shape), str(image.array.dtype))).encode())
        rows = slice(0, min(16, layout.spatial_shape[0]))
        for n in sorted({0, layout.n_samples // 2, layout.n_samples - 1}):
            digest.update(np.ascontiguousarray(layout.read(image.array, n, rows)).tobytes())
        source = {"shape": list(image.array.shape), "sampled_hash": digest.hexdigest()[:16]}
        if image.source is not None:
            source["path"] = str(image.source.resolve())
    tiling = {"tile_size": opts.tile_size, "overlap": opts.overlap, "amp": opts.amp}
    return {"model": model_hash, "input": source, "tiling": json.loads(json.dumps(tiling))}


def image_layout(model, array, axes: str | None, file_axes: str) -> tuple[str, AxesLayout]:
    """The image's axes (given, from its file, else the model's) and layout, checked
    against the model."""
    cfg = model.config
    check_array(array, "image")
    if axes is None:
        if file_axes and len(file_axes) == array.ndim:
            axes = file_axes
        elif len(cfg.source_axes) == array.ndim:
            axes = cfg.source_axes
        else:
            raise InputError(
                f"the image has {array.ndim} dimensions but the model was trained on "
                f"{cfg.source_axes!r}; pass axes=... (e.g. 'ZYX' for a stack)."
            )
    axes = check_axes(axes, array.ndim, cfg.spatial_dims, "image")
    layout = AxesLayout(axes, array.shape, cfg.spatial_dims)
    if layout.channels != cfg.in_channels:
        raise InputError(
            f"the image has {layout.channels} channel(s) (axes {axes!r}, shape "
            f"{tuple(array.shape)}) but the model expects {cfg.in_channels}."
        )
    return axes, layout
