"""The error map end to end (workflows/error_map.py): a run calibrates its kept model on
its validation part (its best model in the run folder too, and a stopped run's), predict
with uncertainty then returns the expected absolute error in the target's units, and a
model without a calibration (an old file) still returns the raw spread, saying so."""

import warnings

import numpy as np
import pytest
from tiny_options import TINY

import napari_pix2pix as p2p
from napari_pix2pix.engine.error_calibration import ErrorCalibration
from napari_pix2pix.engine.events import StepEvent
from napari_pix2pix.workflows.error_map import UNCALIBRATED

RUN = dict(TINY, steps=40, val_every=20, seed=0)
# 40 steps make a weak model, as these tests need none better
pytestmark = pytest.mark.filterwarnings("ignore:the model kept:UserWarning")


def raw_spread(model, image):
    """The uncalibrated confidence map of ``model`` (its calibration set aside)."""
    stored, model.error_calibration = model.error_calibration, None
    try:
        with pytest.warns(UserWarning, match="no error calibration"):
            return p2p.predict(model, image, uncertainty=True, device="cpu")[1]
    finally:
        model.error_calibration = stored


def test_a_run_calibrates_its_model_and_predict_reads_expected_error(pair, held_out_pair, tmp_path):
    source, target = pair
    run = tmp_path / "run"
    model = p2p.train(source, target, checkpoint_dir=run, **RUN)
    calibration = ErrorCalibration.from_dict(model.error_calibration, 1)
    # the validation strip: the right 10 % of 128 columns (13), its central 64 rows
    assert calibration.pixels == 64 * 13
    assert "Error calibration: " in "\n".join(model.card())
    assert "from 832 validation pixels" in model.summary()["error calibration"]
    # the run folder's best model (keep="best": the returned weights) carries it too
    best = p2p.load_model(run / "best.safetensors")
    assert best.error_calibration == model.error_calibration
    # saved and loaded, it is the same map
    model.save(tmp_path / "m.safetensors")
    assert p2p.load_model(tmp_path / "m.safetensors").error_calibration == model.error_calibration

    image = held_out_pair[0][:, :96]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a calibrated model predicts without the note
        pred, error = p2p.predict(model, image, uncertainty=True, device="cpu")
    spread = raw_spread(model, image)
    np.testing.assert_array_equal(error, calibration.expected_error(spread, None))
    assert error.shape == pred.shape and error.dtype == np.float32
    # the map is monotone in the spread: it ranks the pixels as the spread does
    order = np.argsort(spread.ravel(), kind="stable")
    assert np.all(np.diff(error.ravel()[order]) >= -1e-4 * error.max())


def test_an_uncalibrated_model_gives_the_raw_spread_with_a_note(trained, held_out_pair, tmp_path):
    old = p2p.Pix2PixModel(trained.config, history=trained.history)
    old.generator.load_state_dict(trained.generator.state_dict())
    old.error_calibration = None  # what a file saved before the calibration holds
    old.save(tmp_path / "old.safetensors")
    old = p2p.load_model(tmp_path / "old.safetensors")
    assert old.error_calibration is None
    assert "Error calibration: absent" in "\n".join(old.card())
    image = held_out_pair[0][:, :64]
    with pytest.warns(UserWarning, match="no error calibration") as caught:
        pred, spread = p2p.predict(old, image, uncertainty=True, device="cpu")
    assert str(caught[0].message) == UNCALIBRATED
    assert np.isfinite(spread).all() and spread.min() >= 0
    # the plain prediction is unchanged, and so is the default (no map, no note)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(pred, p2p.predict(old, image, device="cpu"))
    # an evaluation scores it against a target: the card says it is uncalibrated, once
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        evaluation = p2p.evaluate(old, image, held_out_pair[1][:, :64], device="cpu")
    assert not [w for w in said if "no error calibration" in str(w.message)]
    np.testing.assert_array_equal(evaluation.spread, spread)


def test_a_damaged_calibration_is_refused_before_predicting(trained, held_out_pair):
    damaged = p2p.Pix2PixModel(trained.config, history=trained.history)
    damaged.error_calibration = {"channels": [{"spread": [1.0]}], "pixels": 3}
    calls = []
    with pytest.raises(p2p.ModelFileError, match="error calibration cannot be read"):
        p2p.predict(
            damaged,
            held_out_pair[0][:, :64],
            uncertainty=True,
            device="cpu",
            progress=lambda d, t: calls.append(d),
        )
    assert calls == []


def test_a_stopped_run_is_calibrated_and_keep_accurate_calibrates_its_best_model(pair, tmp_path):
    source, target = pair
    run = tmp_path / "stopped"
    events = p2p.train_iter(source, target, checkpoint_dir=run, **RUN)
    for event in events:
        if isinstance(event, StepEvent) and event.step == 30:  # after one validation
            break
    events.close()  # the Train widget's Stop
    model = event.model
    assert model.history.steps_done == 30 and model.error_calibration is not None
    assert p2p.load_model(run / "best.safetensors").error_calibration is not None

    run = tmp_path / "accurate"
    model = p2p.train(source, target, checkpoint_dir=run, keep="accurate", **RUN)
    best = p2p.load_model(run / "best.safetensors")
    assert model.history.kept == "accurate" and best.error_calibration is not None
    assert ErrorCalibration.from_dict(best.error_calibration, 1).pixels == 64 * 13
