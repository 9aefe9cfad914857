"""Tiled prediction equals whole-image inference, blends without seams, keeps units."""

import numpy as np
import pytest
import torch

import napari_pix2pix as p2p
from napari_pix2pix.engine.normalization import Normalization
from napari_pix2pix.engine.tiling import reflect_indices, tile_starts


def whole_image(model, image):
    """Reference: the generator on the whole normalized image in one call."""
    cfg = model.config
    x = Normalization.of(cfg, "source").forward(image[None, None], channel_axis=1)
    model.generator.eval()
    with torch.inference_mode():
        y = model.generator(torch.from_numpy(x)).numpy()
    return Normalization.of(cfg, "target").inverse(y, channel_axis=1)[0, 0]


def test_one_tile_covering_the_image_equals_whole_image_inference(trained, held_out_pair):
    source, _ = held_out_pair
    # the trained network as it is (fuse=False): tiling itself adds nothing, bit for bit
    out = p2p.predict(trained, source, tile_size=128, device="cpu", fuse=False)
    np.testing.assert_array_equal(out, whole_image(trained, source))


def test_overlapping_tiles_match_whole_image_without_seams(trained, held_out_pair):
    source, target = held_out_pair
    whole = whole_image(trained, source)
    tiled = p2p.predict(trained, source, tile_size=48, overlap=0.5, device="cpu")
    value_range = trained.config.target_high[0] - trained.config.target_low[0]
    err = np.abs(tiled - whole)
    assert err.mean() < 0.02 * value_range
    # seams: the error on tile borders is no larger than in tile interiors
    borders = np.zeros(source.shape, bool)
    for s in tile_starts(128, 48, 0.5):
        for edge in (s, s + 47):
            if 0 < edge < 127:
                borders[edge, :] = borders[:, edge] = True
    assert err[borders].mean() < 1.5 * err[~borders].mean()
    # and tiling costs little accuracy
    mae_tiled = np.abs(tiled - target).mean()
    mae_whole = np.abs(whole - target).mean()
    assert mae_tiled < 1.05 * mae_whole


def test_any_image_size_and_small_images(trained, rng):
    for shape in [(37, 129), (16, 16), (200, 75)]:
        image = rng.integers(0, 30000, shape).astype(np.uint16)
        out = p2p.predict(trained, image, device="cpu")
        assert out.shape == shape and out.dtype == np.float32 and np.isfinite(out).all()


def test_uint16_in_target_units_out(trained, held_out_pair):
    source, target = held_out_pair
    assert source.dtype == np.uint16
    out = p2p.predict(trained, source, device="cpu")
    cfg = trained.config
    assert out.dtype == np.float32
    assert out.min() >= cfg.target_low[0] - 1 and out.max() <= cfg.target_high[0] + 1
    # same units: the prediction's background and mean sit near the target's
    assert abs(np.median(out) - np.median(target)) < 0.1 * (cfg.target_high[0] - cfg.target_low[0])
    assert abs(out.mean() - target.mean()) < 0.25 * target.std()


def test_normalization_round_trips():
    x = np.array([[[0, 1000, 65535]]], np.uint16)
    y = Normalization((1000.0,), (5000.0,)).inverse(Normalization((1000.0,), (5000.0,)).forward(x))
    np.testing.assert_allclose(y, x.astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float64])
def test_input_dtypes(trained, held_out_pair, dtype):
    source = (held_out_pair[0] // 256).astype(dtype)
    assert p2p.predict(trained, source, device="cpu").dtype == np.float32


def test_stack_runs_slice_by_slice(trained, held_out_pair):
    source, _ = held_out_pair
    stack = np.stack([source, source[:, ::-1], source[::-1]])
    out, axes = p2p.predict(
        trained, stack, axes="ZYX", batch_size=3, device="cpu", return_axes=True
    )
    assert out.shape == stack.shape and axes == "ZYX"
    for z in range(3):
        np.testing.assert_allclose(out[z], p2p.predict(trained, stack[z], device="cpu"), atol=1e-3)
    # TYX from a 2D model too, with the axis order kept
    out = p2p.predict(trained, np.moveaxis(stack, 0, -1), axes="YXT", device="cpu")
    assert out.shape == (128, 128, 3)


def test_progress_reports_tiles(trained, held_out_pair):
    calls = []
    p2p.predict(
        trained,
        held_out_pair[0],
        tile_size=32,
        overlap=0.25,
        batch_size=5,
        device="cpu",
        progress=lambda done, total: calls.append((done, total)),
    )
    total = calls[-1][1]
    assert total == len(tile_starts(128, 32, 0.25)) ** 2
    assert calls[-1][0] == total and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_tile_geometry():
    assert tile_starts(100, 128, 0.25) == [0]
    starts = tile_starts(300, 64, 0.25)
    assert starts[0] == 0 and starts[-1] == 300 - 64
    assert max(np.diff(starts)) <= 48
    np.testing.assert_array_equal(reflect_indices(-2, 7, 4), [2, 1, 0, 1, 2, 3, 2])
    np.testing.assert_array_equal(reflect_indices(0, 9, 3), np.pad(np.arange(3), (0, 6), "reflect"))


def test_confidence_map_from_flips_and_rotations(trained, held_out_pair):
    source, target = held_out_pair
    image = source[:, :96]  # not square: rotations change the shape on the way
    pred, spread = p2p.predict(trained, image, uncertainty=True, device="cpu")
    np.testing.assert_array_equal(pred, p2p.predict(trained, image, device="cpu"))
    assert spread.shape == pred.shape and spread.dtype == np.float32
    assert spread.min() >= 0 and spread.mean() > 0
    # the 8 transforms form a group: the spread of a rotated image is the rotated spread
    _, spread_rotated = p2p.predict(trained, np.rot90(image), uncertainty=True, device="cpu")
    np.testing.assert_allclose(spread_rotated, np.rot90(spread), atol=1e-3 * spread.max())
    # stacks keep their axes; streaming outputs are refused with a reason
    stack = np.stack([image, image[::-1]])
    p, s, axes = p2p.predict(trained, stack, axes="ZYX", uncertainty=True, return_axes=True)
    assert p.shape == s.shape == stack.shape and axes == "ZYX"
    np.testing.assert_allclose(s[1], s[0][::-1], atol=1e-3 * s.max())
    with pytest.raises(p2p.InputError, match="in memory"):
        p2p.predict(trained, image, uncertainty=True, out="x.tif")
