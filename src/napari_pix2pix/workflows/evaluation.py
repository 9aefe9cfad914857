"""How good a model is on a pair it never saw, before anyone trusts it: the metrics of
validation (MAE in the target's units; PSNR and SSIM over its normalization range;
Pearson r), with the difference and the confidence map to look at where it errs."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from ..engine.arrays import check_array, check_finite
from ..engine.axes import output_axes
from ..engine.metrics import image_metrics
from ..engine.normalization import Normalization
from ..errors import InputError
from ..io.images import as_image, read_image
from ..io.model_file import as_model
from .prediction import _predict, image_layout


@dataclass
class Evaluation:
    metrics: dict[str, float]  # mae, psnr, ssim, pearson_r
    prediction: np.ndarray  # in the target's units, with ``axes``
    difference: np.ndarray  # prediction - target
    # the confidence map: the expected absolute error where the model is calibrated
    # (workflows/error_map.py), else the spread over the 8 flips/rotations
    spread: np.ndarray | None
    axes: str


def evaluate(model, source, target, axes: str | None = None, **options) -> Evaluation:
    """Predict ``source`` (any input ``predict`` takes; ``options`` are its tiling and
    device options) and score it against ``target``, an array laid out as the
    prediction is (the source's axes; C only where the model predicts channels), or an
    image file holding one. A target that cannot be scored is refused before anything
    is predicted; one that holds the source's own data is warned about."""
    model = as_model(model)
    if isinstance(target, (str, os.PathLike)):
        target = read_image(target).array
    target = np.asarray(target)
    note = check_target(model, source, target, axes)  # before the prediction, which may take long
    if note:
        warnings.warn(note, stacklevel=2)
    # scored against a target: whether the map is calibrated is the model card's to say
    progress = options.pop("progress", None)
    (pred, spread), out_axes, _ = _predict(
        model, source, axes, None, progress, {**options, "uncertainty": True}, True, False
    )
    return score(model, pred, target, out_axes, spread)


def check_target(
    model, source, target, axes: str | None = None, target_axes: str | None = None
) -> str | None:
    """Whether ``target`` can score the prediction of ``source`` (with ``axes``), found
    without predicting: its dtype, and its shape (and ``target_axes``, where known)
    against the prediction's, else an InputError that names both shapes and the fix.
    Returns a warning when it can be scored but should not be: the target holds the
    source's own data (a prediction scored against its input, not a ground truth)."""
    model = as_model(model)
    cfg = model.config
    target = np.asarray(target)
    check_array(target, "target")
    image = as_image(source, "image", lazy=True)
    axes, layout = image_layout(model, image.array, axes, image.axes)
    out_axes = output_axes(cfg.source_axes, cfg.target_axes, axes)
    shape = layout.with_channels(out_axes, cfg.out_channels).shape
    known = target_axes if target_axes and len(target_axes) == target.ndim else None
    wrong_axes = known is not None and (
        ("C" in known) != ("C" in out_axes) or (set(known) == set(out_axes) and known != out_axes)
    )
    if tuple(target.shape) != tuple(shape) or wrong_axes:
        said = f" (axes {known})" if known else ""
        layout_hint = f"a C axis of {cfg.out_channels} channels" if "C" in out_axes else "no C axis"
        raise InputError(
            f"the target's shape {tuple(target.shape)}{said} differs from the prediction's "
            f"{tuple(shape)} (axes {out_axes}) of the source, shape "
            f"{tuple(image.array.shape)} (axes {axes}): choose the target that belongs to "
            f"this source, laid out as the prediction ({layout_hint}), or crop it to the "
            "source's size."
        )
    if isinstance(image.array, np.ndarray) and image.array.shape == target.shape:
        if target is image.array or np.array_equal(image.array, target):
            return (
                "the target holds the same data as the source: the prediction is scored "
                "against its own input, not a ground truth. Choose the held-out target "
                "that belongs to this source (e.g. its fluorescence image)."
            )
    return None


def score(model, prediction, target, axes: str, spread=None) -> Evaluation:
    """Score a ``prediction`` (with ``axes``, as ``predict`` returns it) of ``model``
    against ``target``, laid out as it is; ``spread``, its confidence map, is kept."""
    model = as_model(model)
    pred, target = np.asarray(prediction, np.float32), np.asarray(target)
    check_array(target, "target")
    if target.shape != pred.shape:
        raise InputError(
            f"the target's shape {target.shape} differs from the prediction's "
            f"{pred.shape} (axes {axes}): choose the target that belongs to this source."
        )
    target = target.astype(np.float32)
    check_finite(target, "target")
    dims = model.config.spatial_dims
    metrics = image_metrics(
        _batch(pred, axes, dims),
        _batch(target, axes, dims),
        Normalization.of(model.config, "target"),
    )
    return Evaluation(metrics, pred, pred - target, spread, axes)


def _batch(array: np.ndarray, axes: str, spatial_dims: int) -> np.ndarray:
    """(N, C, *spatial): the model's spatial axes last, C before them, the rest (the
    slices a 2D model ran over) as the batch."""
    spatial = [i for i, a in enumerate(axes) if a in "ZYX"][-spatial_dims:]
    channel = [axes.index("C")] if "C" in axes else []
    rest = [i for i in range(len(axes)) if i not in spatial + channel]
    moved = np.transpose(array, rest + channel + spatial)
    shape = [array.shape[i] for i in spatial]
    c = array.shape[channel[0]] if channel else 1
    return moved.reshape(-1, c, *shape)
