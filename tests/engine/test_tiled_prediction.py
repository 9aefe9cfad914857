"""Tiled prediction equals whole-image inference, blends without seams, keeps units."""

import time
from dataclasses import replace

import numpy as np
import pytest
import torch

import napari_pix2pix as p2p
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine.axes import AxesLayout
from napari_pix2pix.engine.inference import ArrayOutput, fit_to_memory, make_predictor
from napari_pix2pix.engine.memory import unet_bytes
from napari_pix2pix.engine.normalization import Normalization
from napari_pix2pix.engine.tiling import TileMerger, cut_tiles, reflect_indices, tile_starts
from napari_pix2pix.io.model_file import Pix2PixModel
from napari_pix2pix.run_options import PredictOptions


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
    # (this 300-step model's mean is 0.22-0.35 target std off over seeds 0-3; a unit
    # error, e.g. the source's range, is several std off)
    assert abs(out.mean() - target.mean()) < 0.4 * target.std()


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


def small_model(dims: int) -> Pix2PixModel:
    """An untrained depth-4 network: real layers, seconds to build and run."""
    torch.manual_seed(dims)
    config = Pix2PixConfig(
        spatial_dims=dims,
        source_axes="YX" if dims == 2 else "ZYX",
        target_axes="YX" if dims == 2 else "ZYX",
        depth=4,
        base_channels=8,
        patch_size=32 if dims == 2 else 16,
        disc_layers=2,
        source_low=[0.0],
        source_high=[1000.0],
        target_low=[0.0],
        target_high=[500.0],
    )
    return Pix2PixModel(config)


def serial(predictor, image, layout: AxesLayout) -> np.ndarray:
    """Reference: the path before the pipeline, batch by batch on one thread (cut,
    normalize, network, blend and write)."""
    geo = predictor.geometry(layout.spatial_shape)
    out_layout = layout.with_channels(layout.axes, 1)
    output = ArrayOutput(np.empty(out_layout.shape, np.float32), out_layout)
    merger = TileMerger(geo, 1, output, lambda block: predictor.target_norm.inverse(block))
    for batch in cut_tiles(image, layout, geo, range(layout.n_samples), predictor.batch_size):
        tiles = predictor.source_norm.forward(np.stack([t.data for t in batch]), 1)
        merger.add(batch, predictor.forward(tiles))
    return output.array


@pytest.mark.parametrize("dims", [2, 3])
def test_pipelined_run_equals_the_serial_path_bit_for_bit(dims):
    model = small_model(dims)
    shape = (3, 70, 90) if dims == 2 else (36, 40, 28)  # a stack of 3 in 2D
    image = np.random.default_rng(dims).uniform(0, 1000, shape).astype(np.float32)
    layout = AxesLayout("ZYX", shape, dims)
    opts = PredictOptions(device="cpu", tile_size=32 if dims == 2 else 16, batch_size=3)
    predictor = make_predictor(model, opts)
    out = layout.with_channels("ZYX", 1)
    piped = ArrayOutput(np.empty(out.shape, np.float32), out)
    predictor.run(image, layout, piped)
    np.testing.assert_array_equal(piped.array, serial(predictor, image, layout))
    # and the API on top of it, through the default (auto) batch
    np.testing.assert_array_equal(
        p2p.predict(model, image, "ZYX", device="cpu", tile_size=opts.tile_size),
        serial(replace(predictor, batch_size=4), image, layout),
    )


class SlowOutput(ArrayOutput):
    """An in-memory output whose writes take a while and can fail; it records whether a
    write was running when abort came."""

    def __init__(self, shape, fail_at: int | None = None) -> None:
        layout = AxesLayout("ZYX", shape, 2)
        super().__init__(np.zeros(shape, np.float32), layout)
        self.fail_at, self.writes, self.writing = fail_at, 0, False
        self.aborts: list[bool] = []  # for each abort: a write was running
        self.finished = False

    def write(self, n, rows, block):
        self.writing = True
        self.writes += 1
        try:
            time.sleep(0.2)
            if self.writes == self.fail_at:
                raise OSError("no space left on device")
            super().write(n, rows, block)
        finally:
            self.writing = False

    def finish(self):
        self.finished = True

    def abort(self):
        self.aborts.append(self.writing)
        return ""


def banded(image_shape=(3, 64, 64)):
    """A predictor whose batches are one band of tiles each (3 tiles of 32 px across 64
    px): every blend writes once, 3 batches per sample."""
    predictor = make_predictor(
        small_model(2), PredictOptions(device="cpu", tile_size=32, batch_size=3)
    )
    assert len(tile_starts(image_shape[-1], 32, predictor.overlap)) == 3
    return predictor, AxesLayout("ZYX", image_shape, 2)


def test_an_error_while_blending_reaches_the_caller_and_stops_the_run():
    predictor, layout = banded()
    image = np.random.default_rng(0).uniform(0, 1000, layout.shape).astype(np.float32)
    output = SlowOutput(layout.shape, fail_at=2)
    with pytest.raises(OSError, match="no space left"):
        predictor.run(image, layout, output)
    # no batch blended after the failed one, abort once with no write running, no finish
    assert output.writes == 2 and output.aborts == [False] and not output.finished


@pytest.mark.parametrize("failure", ["nan input", "progress cancels"])
def test_an_error_in_the_calling_thread_aborts_once_the_blend_is_done(failure):
    predictor, layout = banded()
    image = np.random.default_rng(0).uniform(0, 1000, layout.shape).astype(np.float32)
    progress = None
    if failure == "nan input":  # found while blend 5 of 9 is still writing (0.2 s)
        image[2, 5, 5] = np.nan
        error, written = p2p.InputError, 5
    else:

        def progress(done, total):
            if done >= 6:
                raise KeyboardInterrupt

        error, written = KeyboardInterrupt, 2
    output = SlowOutput(layout.shape)
    with pytest.raises(error):
        predictor.run(image, layout, output, progress)
    assert output.aborts == [False] and output.writes == written and not output.finished


def test_batch_grows_from_free_memory_on_cuda_only():
    model = small_model(2)
    cfg = model.config
    assert PredictOptions().batch_size is None and PredictOptions(batch_size=4).batch_size == 4
    cpu = make_predictor(model, PredictOptions(device="cpu"))
    assert cpu.batch_size == 4  # auto starts at 4
    cuda = replace(cpu, device=torch.device("cuda"))  # the rule only: nothing runs there
    lots = 2**40

    def grown(predictor, available, grow=True, tiles=None):
        return fit_to_memory(predictor, cfg, available, grow, tiles).batch_size

    assert grown(cuda, lots) == 64  # capped
    assert grown(cuda, lots, tiles=20) == 20  # no more than the image has
    for shape in [(70, 90), (20, 300)]:  # the count predict caps at, without a window
        assert cpu.tiles_per_sample(shape) == cpu.geometry(shape).tiles_per_sample
    assert grown(cuda, lots, tiles=3) == 4  # never below where auto starts
    assert grown(cpu, lots) == 4  # the CPU is tuned for 4
    assert grown(cuda, lots, grow=False) == 4  # batch_size given: kept
    # doubled while one call fits in half the memory, as fit_to_memory shrinks
    budget = 2 * unet_bytes(cfg, 16, cuda.tile)
    assert grown(cuda, budget) == 16 and grown(cuda, budget - 2) == 8
    # too little memory even for 4: the shrinking rule, unchanged
    with pytest.warns(UserWarning, match="using tile"):
        assert grown(cuda, 2 * unet_bytes(cfg, 2, cuda.tile)) == 2
