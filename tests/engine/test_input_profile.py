"""The input profile and its score (engine/input_profile.py) on small simulated fields:
held-out parts of the training distribution score below the threshold, real shifts of
them (brighter, blurred, noisier, another kind of image) above it, with the reason."""

import json

import numpy as np
import pytest
from scipy import ndimage

from napari_pix2pix.engine import input_profile
from napari_pix2pix.engine.axes import AxesLayout
from napari_pix2pix.engine.input_profile import (
    MAX_SAMPLES,
    THRESHOLD,
    build_profile,
    check_input,
    sample_indices,
    tile_features,
)
from napari_pix2pix.engine.lazy import LazySample
from napari_pix2pix.engine.normalization import Normalization
from napari_pix2pix.engine.sample_data import make_pair


@pytest.fixture(scope="module")
def field():
    """A simulated phase-contrast field: the left part trains, the right is held out."""
    phase, fluorescence = make_pair((192, 256), seed=3)
    train, held_out = phase[None, :, :160], phase[None, :, 160:]
    norm = Normalization.fit([train], (0.5, 99.5), "source")
    profile = build_profile([train], norm, (32, 32))
    return train, held_out, fluorescence, norm, profile


def test_the_profile_is_json_and_small(field):
    *_, profile = field
    again = json.loads(json.dumps(profile))
    assert again == profile
    assert len(json.dumps(profile)) < 100_000  # one channel: a few hundred tiles' features
    assert profile["unit"] > 0 and profile["threshold"] == THRESHOLD


def test_held_out_data_does_not_warn_and_shifts_do(field):
    train, held_out, fluorescence, norm, profile = field
    calm = check_input([held_out], norm, profile)
    assert not calm.above, calm.score
    as_float = held_out.astype(np.float32)
    shifted = {
        "brighter": (as_float * 2, "brighter"),
        "blurred": (ndimage.gaussian_filter(as_float, (0, 2, 2)), "less fine detail"),
        "noisier": (
            as_float + np.random.default_rng(0).normal(0, 0.2 * np.ptp(train), as_float.shape),
            "more fine detail",
        ),
        "fluorescence": (fluorescence[None, :, 160:], ""),
    }
    for name, (image, reason) in shifted.items():
        check = check_input([image], norm, profile)
        assert check.above, name
        assert check.score > 2 * calm.score, name
        assert reason in check.reason, (name, check.reason)
        assert "differs from what the model was trained on" in check.message()


def test_the_worst_slice_is_named(field):
    _, held_out, _, norm, profile = field
    stack = [held_out, held_out.astype(np.float32) * 3, held_out]
    check = check_input(stack, norm, profile)
    assert check.worst == 1 and check.above
    assert check.scores[0] < check.threshold and check.scores[2] < check.threshold
    assert "slice 1" in check.message()
    assert check.worst_sample == 1
    assert check.as_dict()["worst"] == 1


def test_no_profile_no_score(field):
    _, held_out, _, norm, _ = field
    assert check_input([held_out], norm, None) is None


def test_lazy_samples_and_3d():
    """Training samples read from a lazy array give the profile of the same data in
    memory; a 3D volume is profiled and scored with 3D tiles."""
    phase, _ = make_pair((24, 64, 64), seed=1)
    norm = Normalization.fit([phase[None]], (0.5, 99.5), "source")
    lazy = LazySample(phase, AxesLayout("ZYX", phase.shape, 3), 0)
    in_memory = build_profile([phase[None]], norm, (16, 16, 16))
    assert build_profile([lazy], norm, (16, 16, 16)) == in_memory
    other, _ = make_pair((24, 64, 64), seed=2)
    assert not check_input([other[None]], norm, in_memory).above
    assert check_input([other[None] * 3.0], norm, in_memory).above


def test_features_of_a_constant_tile_are_finite():
    """Background (a constant tile) has no spectrum: equal shares, not -inf."""
    intensity, spectrum = tile_features(np.zeros((2, 1, 16, 16), np.float32))
    assert np.isfinite(spectrum).all() and np.isfinite(intensity).all()


def test_a_long_stack_is_scored_on_an_even_spread_of_slices(field):
    _, held_out, _, norm, profile = field
    indices = sample_indices(1000)
    assert len(indices) == MAX_SAMPLES and indices[0] == 0 and indices[-1] == 999
    assert sample_indices(5) == [0, 1, 2, 3, 4]
    stack = [held_out, held_out * 3.0]
    check = check_input(stack, norm, profile, indices=[10, 990])
    assert check.worst_sample == 990 and "slice 990" in check.message()


class CountingArray:
    """A lazy array (shape, dtype, __getitem__) that counts its reads."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.reads = array, array.shape, array.dtype, 0

    def __getitem__(self, key):
        self.reads += 1
        return self.array[key]


@pytest.fixture(scope="module")
def stack(field):
    """Four 192 x 160 slices of another phase-contrast field, each a little brighter."""
    *_, norm, profile = field
    phase, _ = make_pair((192, 160), seed=5)
    planes = np.stack([phase * (1.0 + 0.2 * i) for i in range(4)]).astype(np.float32)
    return planes, norm, profile


def test_a_lazy_stack_scores_as_in_memory_with_one_read_per_slice(stack, tmp_path):
    """Each scored slice is read once (the region bounding its tile grid), not once per
    tile: a stack chunked by plane would decode each plane 16 times. The scores are
    those of the same slices in memory, and of the same data as a zarr array."""
    zarr = pytest.importorskip("zarr")
    planes, norm, profile = stack
    layout = AxesLayout("ZYX", planes.shape, 2)
    in_memory = check_input([p[None] for p in planes], norm, profile)
    on_disk = zarr.open_array(
        tmp_path / "stack.zarr", mode="w", shape=planes.shape, chunks=(1, 192, 160), dtype="f4"
    )
    on_disk[:] = planes
    from_zarr = check_input([LazySample(on_disk, layout, n) for n in range(4)], norm, profile)
    counting = CountingArray(planes)
    counted = check_input([LazySample(counting, layout, n) for n in range(4)], norm, profile)
    assert from_zarr.scores == in_memory.scores == counted.scores
    assert from_zarr.reason == in_memory.reason
    assert counting.reads == 4  # one per slice (16 tiles each)
    # training data read lazily: one read per window of 3 x 3 tiles
    counting.reads = 0
    lazy_profile = build_profile([LazySample(counting, layout, 0)], norm, (32, 32), views=5)
    assert lazy_profile == build_profile([planes[:1]], norm, (32, 32), views=5)
    assert counting.reads == 5


def test_a_region_over_the_read_cap_is_read_tile_by_tile(stack, monkeypatch):
    """A scored volume too large to read whole at once is read a tile at a time, with
    the same scores."""
    planes, norm, profile = stack
    layout = AxesLayout("ZYX", planes.shape, 2)
    whole = check_input([p[None] for p in planes[:1]], norm, profile)
    monkeypatch.setattr(input_profile, "READ_CAP", 1000)  # bytes: less than one tile
    counting = CountingArray(planes)
    tiled = check_input([LazySample(counting, layout, 0)], norm, profile)
    assert tiled.scores == whole.scores
    assert counting.reads == 16  # 4 x 4 tiles
