"""How good a model is on a pair it never saw, before anyone trusts it: the metrics of
validation (MAE in the target's units; PSNR and SSIM over its normalization range;
Pearson r), with the difference and the confidence map to look at where it errs."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..engine.arrays import check_array, check_finite
from ..engine.metrics import image_metrics
from ..engine.normalization import Normalization
from ..errors import InputError
from ..io.images import read_image
from ..io.model_file import as_model
from .prediction import predict


@dataclass
class Evaluation:
    metrics: dict[str, float]  # mae, psnr, ssim, pearson_r
    prediction: np.ndarray  # in the target's units, with ``axes``
    difference: np.ndarray  # prediction - target
    spread: np.ndarray  # the confidence map (spread over the 8 flips/rotations)
    axes: str


def evaluate(model, source, target, axes: str | None = None, **options) -> Evaluation:
    """Predict ``source`` (any input ``predict`` takes; ``options`` are its tiling and
    device options) and score it against ``target``, an array laid out as the
    prediction is (the source's axes; C only where the model predicts channels), or an
    image file holding one."""
    model = as_model(model)
    if isinstance(target, (str, os.PathLike)):
        target = read_image(target).array
    target = np.asarray(target)
    check_array(target, "target")  # before the prediction, which may take long
    pred, spread, out_axes = predict(
        model, source, axes=axes, uncertainty=True, return_axes=True, **options
    )
    if target.shape != pred.shape:
        raise InputError(
            f"the target's shape {target.shape} differs from the prediction's "
            f"{pred.shape} (axes {out_axes}): choose the target that belongs to this source."
        )
    target = target.astype(np.float32)
    check_finite(target, "target")
    dims = model.config.spatial_dims
    metrics = image_metrics(
        _batch(pred, out_axes, dims),
        _batch(target, out_axes, dims),
        Normalization.of(model.config, "target"),
    )
    return Evaluation(metrics, pred, pred - target, spread, out_axes)


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
