"""The error map: at the end of a run the spread over the 8 flips/rotations is calibrated
on the run's validation part (engine/error_calibration.py) and kept in the model, so
that ``predict(..., uncertainty=True)`` returns the expected absolute error in the
target's units; a model without a calibration (saved before it existed, or trained
without validation) still returns the raw spread, with a note saying so."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch

from ..engine.error_calibration import ErrorCalibration, calibrate
from ..engine.inference import make_predictor
from ..io.model_file import Pix2PixModel
from ..run_options import PredictOptions
from .run_folder import save_best

UNCALIBRATED = (
    "this model has no error calibration (saved by an earlier napari-pix2pix, trained "
    "without validation, or stopped by Ctrl-C or SIGTERM): the confidence map is the raw "
    "spread of the 8 flips/rotations in the target's units, not an expected error. Train "
    "with validation (and end or Stop the run) to calibrate it."
)


def calibrate_at_end(model: Pix2PixModel, split, device, folder, best_weights) -> list[str]:
    """At the end of a run, once the kept model is chosen: its calibration, and the run
    folder's best model saved again with its own. Returns the warnings (nothing fails)."""
    notes = [calibrate_run(model, split, device)]
    if folder is not None and best_weights is not None and split.val:
        best, note = calibrated_best(model, best_weights, split, device)
        notes.append(note)
        try:
            save_best(folder, best, best_weights)
        except OSError as exc:  # OutputError included
            notes.append(f"the best model could not be saved again with its error map ({exc}).")
    return [note for note in notes if note]


def calibrate_run(model: Pix2PixModel, split, device) -> str | None:
    """``model.error_calibration`` fitted on the run's validation part (the kept weights,
    predicted as ``predict`` does, 8 times; at most error_calibration.MAX_PIXELS
    validation pixels, so it costs at most 8 passes over a million pixels), None without
    validation. Returns a warning when it fails: the trained model is never lost to it."""
    model.error_calibration = None
    if not split.val:
        return None
    try:
        predictor = make_predictor(model, PredictOptions(device=str(device)))
        fitted = calibrate(predictor, split.val, split.val_context)
    except Exception as exc:  # after training: whatever fails, the model is kept
        return (
            f"the error map could not be calibrated ({exc}); the model is saved without it "
            "(its confidence map is the raw spread)."
        )
    model.error_calibration = fitted.to_dict() if fitted is not None else None
    return None


def calibrated_best(model: Pix2PixModel, weights: dict, split, device):
    """The run folder's best model (``weights``) with its own calibration, and a warning
    or None: ``model`` when it holds those weights (keep="best", the default), else a
    copy fitted again (a second 8-fold pass, only with keep="accurate" or "last")."""
    if model.history.kept == "best":
        return model, None
    with torch.random.fork_rng(devices=[]):  # built without drawing the run's numbers
        best = Pix2PixModel(
            model.config, history=copy.deepcopy(model.history), input_profile=model.input_profile
        )
    best.generator.load_state_dict(weights)
    best.generator.eval()
    return best, calibrate_run(best, split, device)


def error_map(
    model: Pix2PixModel, stacklevel: int = 3, note: bool = True
) -> ErrorCalibration | None:
    """The model's calibration, checked (a damaged one is a ModelFileError before
    anything is predicted); None, with the UNCALIBRATED warning (``note``), when it has
    none."""
    if not model.error_calibration:
        if note:
            warnings.warn(UNCALIBRATED, stacklevel=stacklevel)
        return None
    return ErrorCalibration.from_dict(model.error_calibration, model.config.out_channels)


def expected_error(calibration: ErrorCalibration, spread: np.ndarray, axes: str) -> np.ndarray:
    """The spread (laid out with ``axes``) as the expected absolute error."""
    return calibration.expected_error(spread, axes.index("C") if "C" in axes else None)
