"""The run report's numbers (engine/held_out.py): the baselines fitted on the training
part, the scored units, and the bootstrap intervals."""

import numpy as np
import pytest

from napari_pix2pix.engine.axes import AxesLayout
from napari_pix2pix.engine.held_out import (
    MAX_UNITS,
    MIN_IMAGES,
    Baselines,
    held_out_scores,
    mean_interval,
    one_thread,
    unit_boxes,
)
from napari_pix2pix.engine.lazy import LazySample
from napari_pix2pix.engine.metrics import image_metrics
from napari_pix2pix.engine.normalization import Normalization


def linear_pair(rng, shape, noise=0.0):
    """A 2-channel source and a target that is 3 * s0 - 2 * s1 + 5 (plus noise)."""
    source = rng.random((2, *shape)).astype(np.float32)
    target = 3 * source[:1] - 2 * source[1:] + 5 + rng.normal(0, noise, (1, *shape))
    return source, target.astype(np.float32)


def test_baselines_recover_a_linear_map_over_channels_from_memory_and_from_lazy_samples():
    rng = np.random.default_rng(0)
    source, target = linear_pair(rng, (120, 90))
    fitted = Baselines.fit([(source, target)])
    assert fitted.gain == pytest.approx(np.array([[3.0, -2.0]]), abs=1e-6)
    assert fitted.offset == pytest.approx([5.0], abs=1e-6)
    assert fitted.mean == pytest.approx([target.mean()], rel=1e-6)
    # a lazy source (read by boxes) with an in-memory target: read at the same pixels
    lazy = LazySample(np.moveaxis(source, 0, -1), AxesLayout("YXC", (120, 90, 2), 2), 0)
    small = Baselines.fit([(lazy, target)], max_values=2000)
    assert small.gain == pytest.approx(fitted.gain, abs=1e-5)
    assert small.offset == pytest.approx(fitted.offset, abs=1e-5)
    held = rng.random((2, 40, 30)).astype(np.float32)
    assert fitted.rescaled(held) == pytest.approx(3 * held[:1] - 2 * held[1:] + 5, abs=1e-4)
    assert fitted.constant(held).shape == (1, 40, 30)
    assert np.all(fitted.constant(held) == np.float32(fitted.mean[0]))


def test_units_are_tiles_of_few_images_and_whole_images_of_many_and_capped():
    boxes, side = unit_boxes([(1, 256, 77)])
    assert side == 32 and len(boxes) == 16  # 64 px tiles would be only 4 of them
    boxes, side = unit_boxes([(1, 512, 512)])
    assert side == 64 and len(boxes) == MAX_UNITS  # 8 x 8 tiles
    covered = np.zeros((512, 512), int)
    for _, (ys, xs) in boxes:
        covered[ys, xs] += 1
    assert covered.min() == covered.max() == 1  # every pixel scored once
    many = [(1, 30, 30)] * MIN_IMAGES
    boxes, side = unit_boxes(many)
    assert side is None and [b[0] for b in boxes] == list(range(MIN_IMAGES))
    boxes, _ = unit_boxes([(1, 4096, 4096)])
    assert len(boxes) == MAX_UNITS and len({repr(b[1]) for b in boxes}) == MAX_UNITS
    boxes, _ = unit_boxes([(1, 20, 64, 64)])  # a volume: boxes in 3D
    assert all(len(box) == 3 for _, box in boxes)


def test_mean_interval_is_a_percentile_bootstrap_of_the_mean():
    values = np.random.default_rng(1).normal(10, 2, 400)
    out = mean_interval(values)
    assert out["mean"] == pytest.approx(values.mean())
    half = 1.96 * values.std() / np.sqrt(values.size)  # the normal approximation
    assert out["low"] == pytest.approx(values.mean() - half, abs=0.25 * half)
    assert out["high"] == pytest.approx(values.mean() + half, abs=0.25 * half)
    assert mean_interval(values) == out  # seeded: the same report twice
    one = mean_interval(np.array([3.0, np.nan]))
    assert one["mean"] == 3.0 and one["low"] is None and one["units"] == 1
    assert mean_interval(np.array([2.0, 2.0]))["low"] == 2.0


def test_held_out_scores_rank_a_good_model_above_the_baselines():
    rng = np.random.default_rng(2)
    train = linear_pair(rng, (200, 200), noise=0.05)
    source, target = linear_pair(rng, (256, 64), noise=0.05)
    target = target + np.where(source[:1] > 0.9, 2.0, 0.0).astype(np.float32)  # not linear
    model = target + rng.normal(0, 0.02, target.shape).astype(np.float32)
    norm = Normalization.fit([target], (0.5, 99.5), "target")
    out = held_out_scores([source], [model], [target], norm, Baselines.fit([train]))
    assert out["unit"] == "tile" and out["units"] == 16 and out["images"] == 1
    model_mae = out["scores"]["model"]["mae"]
    rescaled, constant = out["scores"]["rescaled source"], out["scores"]["constant mean"]
    assert model_mae["low"] <= model_mae["mean"] <= model_mae["high"]
    assert model_mae["high"] < rescaled["mae"]["low"] < constant["mae"]["low"]
    assert out["scores"]["model"]["pearson_r"]["mean"] > rescaled["pearson_r"]["mean"]
    assert constant["pearson_r"]["mean"] == 0.0  # a constant has no correlation
    # a unit's scores are validation's own (image_metrics): 32 px tiles, 16 of them
    corners = [(y, x) for y in range(0, 256, 32) for x in (0, 32)]
    with one_thread():  # as held_out_scores scores them: else seconds on a busy machine
        whole = image_metrics(model[None], target[None], norm)
        tiles = [
            image_metrics(*(a[None, :, y : y + 32, x : x + 32] for a in (model, target)), norm)
            for y, x in corners
        ]
    for metric in ("mae", "psnr", "ssim", "pearson_r"):
        mean = np.mean([t[metric] for t in tiles])
        assert out["scores"]["model"][metric]["mean"] == pytest.approx(mean, rel=1e-5)
    assert model_mae["mean"] == pytest.approx(whole["mae"], rel=1e-4)  # MAE averages alike
