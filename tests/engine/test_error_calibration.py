"""The error map's calibration (engine/error_calibration.py): a monotone map from the
8-fold spread to the expected absolute error, fitted on generated data whose true
expected error is known."""

import json

import numpy as np
import pytest

from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine.error_calibration import ErrorCalibration, calibrate, reliability
from napari_pix2pix.engine.inference import make_predictor
from napari_pix2pix.errors import ModelFileError
from napari_pix2pix.io.model_file import Pix2PixModel
from napari_pix2pix.run_options import PredictOptions

HALF_NORMAL_MEAN = np.sqrt(2 / np.pi)  # E|N(0, 1)|


def noisy_pairs(rng, n, scale=3.0, offset=0.0):
    """Spreads and absolute errors whose expected value is offset + scale * spread * E|N|."""
    spread = rng.gamma(2.0, 1.0, size=(1, n))
    error = np.abs(rng.normal(size=(1, n))) * (offset + scale * spread)
    return spread, error


def test_fit_recovers_the_expected_error_and_holds_on_fresh_data():
    rng = np.random.default_rng(0)
    spread, error = noisy_pairs(rng, 200_000)
    cal = ErrorCalibration.fit(spread, error, 100 + 50 * spread)
    m = cal.channels[0]
    assert len(m.spread) == 16 and m.count.sum() == 200_000 and cal.pixels == 200_000
    assert np.all(np.diff(m.spread) > 0) and np.all(np.diff(m.error) >= 0)
    # the map reads expected error, not spread: 3 * E|N| = 2.39 times the spread
    truth = 3.0 * HALF_NORMAL_MEAN * m.spread
    assert np.allclose(m.error, truth, rtol=0.08)
    # held out: per bin of the expected error, expected and observed agree
    fresh_spread, fresh_error = noisy_pairs(rng, 100_000)
    rows = reliability(cal.expected_error(fresh_spread[0], None), fresh_error, bins=8)
    assert sum(r["n"] for r in rows) == 100_000 and len(rows) == 8
    for r in rows:
        assert r["low"] <= r["expected"] <= r["high"]
        assert r["observed"] == pytest.approx(r["expected"], rel=0.12)
    assert cal.target_range[0][0] == pytest.approx(100 + 50 * spread.min())


def test_a_falling_stretch_is_pooled_never_decreasing_and_keeps_the_mean():
    rng = np.random.default_rng(1)
    spread = rng.uniform(0, 1, size=(1, 50_000))
    # the error falls from spread 0.3 to 0.6: a monotone map pools that stretch
    error = np.where((spread > 0.3) & (spread < 0.6), 1.0 - spread, spread) + 0.1
    cal = ErrorCalibration.fit(spread, error, spread, bins=20)
    m = cal.channels[0]
    assert np.all(np.diff(m.error) >= 0)
    assert np.ptp(m.error[(m.spread > 0.33) & (m.spread < 0.57)]) < 1e-12  # one pooled block
    # isotonic regression keeps the weighted mean: the map is unbiased over its data
    assert np.average(m.error, weights=m.count) == pytest.approx(error.mean(), rel=1e-9)


def test_a_flat_background_of_zero_spread_is_one_bin():
    rng = np.random.default_rng(2)
    spread = np.concatenate([np.zeros(30_000), rng.uniform(0.1, 1.0, 10_000)])[None]
    error = np.concatenate([np.full(30_000, 0.05), 2 * spread[0, 30_000:]])[None]
    cal = ErrorCalibration.fit(spread, error, error)
    m = cal.channels[0]
    assert m.spread[0] == 0 and m.error[0] == pytest.approx(0.05)
    assert m.count[0] == 30_000 and np.all(np.diff(m.spread) > 0)
    assert len(m.edges) == len(m.spread) + 1
    # below the first bin the map stays flat; beyond the last it goes on along the line
    # through the first and last bins (about 2 x spread here), continuous at the last
    probe = np.array([0.0, m.spread[-1], 10.0, 50.0], np.float32)
    out = cal.expected_error(probe, None)
    assert out[0] == pytest.approx(0.05) and out[1] == pytest.approx(m.error[-1], rel=1e-6)
    assert (out[3] - out[2]) / 40 == pytest.approx(2.0, rel=0.05)
    # errors that do not grow with the spread: the map stays flat beyond its data too
    flat = ErrorCalibration.fit(spread, np.full_like(spread, 0.3), error)
    assert flat.expected_error(probe, None) == pytest.approx(np.full(4, 0.3))


def test_each_channel_has_its_own_map_on_its_axis():
    rng = np.random.default_rng(3)
    s0, e0 = noisy_pairs(rng, 20_000, scale=1.0)
    s1, e1 = noisy_pairs(rng, 20_000, scale=10.0)
    spread, error = np.concatenate([s0, s1]), np.concatenate([e0, e1])
    cal = ErrorCalibration.fit(spread.reshape(2, 100, 200), error.reshape(2, 100, 200), error)
    image = np.ones((5, 2, 4), np.float32)  # axes "YCX": channel axis 1
    out = cal.expected_error(image, 1)
    assert out[:, 1].mean() / out[:, 0].mean() == pytest.approx(10, rel=0.2)


def test_round_trips_as_json_and_refuses_a_damaged_one():
    rng = np.random.default_rng(4)
    spread, error = noisy_pairs(rng, 5_000)
    cal = ErrorCalibration.fit(spread, error, error)
    data = json.loads(json.dumps(cal.to_dict()))
    back = ErrorCalibration.from_dict(data, out_channels=1)
    probe = np.linspace(0, 10, 50, dtype=np.float32)
    assert np.array_equal(back.expected_error(probe, None), cal.expected_error(probe, None))
    assert (
        back.summary()
        == cal.summary()
        == (f"error calibration: {len(cal.channels[0].spread)} bins from 5,000 validation pixels")
    )
    with pytest.raises(ModelFileError, match="1 channel.*predicts 2"):
        ErrorCalibration.from_dict(data, out_channels=2)
    data["channels"][0]["expected_error"] = data["channels"][0]["expected_error"][::-1]
    with pytest.raises(ModelFileError, match="damaged"):
        ErrorCalibration.from_dict(data, out_channels=1)
    del data["channels"]
    with pytest.raises(ModelFileError, match="cannot be read"):
        ErrorCalibration.from_dict(data, out_channels=1)


def test_calibrate_predicts_a_central_band_of_the_scored_columns_within_the_cap():
    """A real (untrained) network: the fitted map's mean over the validation pixels
    equals the plain prediction's mean absolute error there, on the scored columns only
    and within the cap."""
    config = Pix2PixConfig(
        depth=4,
        patch_size=32,
        base_channels=8,
        source_low=[0.0],
        source_high=[1.0],
        target_low=[0.0],
        target_high=[1.0],
    )
    model = Pix2PixModel(config)
    predictor = make_predictor(model, PredictOptions(device="cpu"))
    rng = np.random.default_rng(5)
    source = rng.uniform(0, 1, (1, 48, 64)).astype(np.float32)
    target = rng.uniform(0, 1, (1, 48, 64)).astype(np.float32)
    pairs = [(source, target), (source, target)]
    cal = calibrate(predictor, pairs, context=16, max_pixels=2000, share=1.0)
    assert cal.pixels == 41 * 48  # 42 rows of 48 scored columns do not fit; 41 do
    band = slice(3, 44)  # the 41 central rows of 48
    observed = np.abs(predictor.predict_sample(source[:, band]) - target[:, band])[..., 16:]
    m = cal.channels[0]
    assert np.average(m.error, weights=m.count) == pytest.approx(observed.mean(), rel=1e-4)
    # by default half of each sample's rows (at least 16): the central band
    cal = calibrate(predictor, pairs, context=16)
    assert cal.pixels == 2 * 24 * 48
    observed = np.abs(predictor.predict_sample(source[:, 12:36]) - target[:, 12:36])[..., 16:]
    m = cal.channels[0]
    assert np.average(m.error, weights=m.count) == pytest.approx(observed.mean(), rel=1e-4)
    assert calibrate(predictor, []) is None


def test_reliability_keeps_equal_expected_errors_in_one_bin():
    """A map flat below its first bin gives many pixels one expected error: they are one
    bin (not split by position), so its observed mean is over all of them."""
    expected = np.concatenate([np.full(6_000, 0.5), np.linspace(1, 2, 4_000)])
    observed = np.concatenate([np.linspace(0, 1, 6_000), np.linspace(1, 2, 4_000)])
    rows = reliability(expected, observed, bins=8)
    # the 6,000 pixels at 0.5 are in the first bin (with the few up to its upper edge)
    assert rows[0]["low"] == 0.5 and 6_000 <= rows[0]["n"] < 6_500
    assert all(r["low"] >= 1 for r in rows[1:])
    assert sum(r["n"] for r in rows) == 10_000
    assert all(a["high"] < b["low"] for a, b in zip(rows, rows[1:]))
