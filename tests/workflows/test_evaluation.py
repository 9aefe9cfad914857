"""evaluate(): a model scored on a pair it never saw, against numpy's own numbers."""

import numpy as np
import pytest

import napari_pix2pix as p2p
from napari_pix2pix.engine.sample_data import make_pair


def test_metrics_match_numpy_and_the_difference_is_the_error(trained):
    source, target = make_pair((96, 96), seed=11, nucleus_radius=5.0)
    result = p2p.evaluate(trained, source, target, device="cpu")
    pred = p2p.predict(trained, source, device="cpu")
    np.testing.assert_allclose(result.prediction, pred, atol=1e-4)
    error = pred.astype(np.float64) - target
    np.testing.assert_allclose(result.difference, error, atol=1e-3)
    assert result.metrics["mae"] == pytest.approx(np.abs(error).mean(), rel=1e-4)
    r = np.corrcoef(pred.ravel(), target.ravel().astype(np.float64))[0, 1]
    assert result.metrics["pearson_r"] == pytest.approx(r, abs=1e-6)
    lo, hi = trained.config.target_low[0], trained.config.target_high[0]
    unit = lambda a: (np.asarray(a, np.float64) - lo) / (hi - lo)  # noqa: E731
    mse = np.mean((unit(pred) - unit(target)) ** 2)
    assert result.metrics["psnr"] == pytest.approx(10 * np.log10(1 / mse), abs=0.05)
    assert 0 < result.metrics["ssim"] <= 1
    assert result.spread.shape == pred.shape and result.axes == "YX"


def test_a_stack_is_scored_slice_by_slice_and_a_wrong_target_is_refused(trained):
    source, target = make_pair((64, 64), seed=12, nucleus_radius=5.0)
    stack, targets = np.stack([source] * 3), np.stack([target] * 3)
    one = p2p.evaluate(trained, source, target, device="cpu").metrics
    three = p2p.evaluate(trained, stack, targets, axes="ZYX", device="cpu").metrics
    assert three["mae"] == pytest.approx(one["mae"], rel=1e-3)
    assert three["ssim"] == pytest.approx(one["ssim"], rel=1e-3)
    with pytest.raises(p2p.InputError, match="differs from the prediction"):
        p2p.evaluate(trained, source, target[:32], device="cpu")


def test_a_target_file_is_read_and_a_complex_target_refused(trained, tmp_path):
    source, target = make_pair((64, 64), seed=12, nucleus_radius=5.0)
    p2p.write_image(tmp_path / "s.tif", source, "YX")
    p2p.write_image(tmp_path / "t.tif", target, "YX")
    from_files = p2p.evaluate(trained, tmp_path / "s.tif", str(tmp_path / "t.tif"), device="cpu")
    assert from_files.metrics == pytest.approx(
        p2p.evaluate(trained, source, target, device="cpu").metrics
    )
    with pytest.raises(p2p.InputError, match="target has dtype complex64"):
        p2p.evaluate(trained, source, target.astype(np.complex64), device="cpu")


def test_the_target_is_checked_before_predicting_and_the_source_as_target_warned(
    tmp_path, monkeypatch
):
    from tiny_options import untrained_model

    import napari_pix2pix.workflows.evaluation as evaluation

    model = untrained_model(tmp_path / "m.safetensors")
    source, target = make_pair((64, 64), seed=12, nucleus_radius=5.0)
    predict = evaluation._predict
    monkeypatch.setattr(evaluation, "_predict", lambda *a, **k: pytest.fail("predicted"))
    with pytest.raises(p2p.InputError, match=r"\(48, 64\).*\(64, 64\).*choose the target"):
        p2p.evaluate(model, source, target[:48], device="cpu")
    with pytest.raises(p2p.InputError, match=r"\(axes YXC\).*no C axis"):
        evaluation.check_target(model, source, np.stack([target] * 3, -1), "YX", "YXC")
    assert evaluation.check_target(model, source, target) is None
    monkeypatch.setattr(evaluation, "_predict", predict)
    with pytest.warns(UserWarning, match="same data as the source"):
        p2p.evaluate(model, source, source.copy(), device="cpu", tile_size=32)
