"""The misalignment of a pair is found across modalities (phase contrast vs nuclei)."""

import numpy as np
import pytest
from scipy import ndimage

from napari_pix2pix.engine.alignment import (
    MIN_CONTRAST,
    MIN_SIGNIFICANCE,
    SEARCH,
    TOLERATED_SHIFT,
    PairShift,
    estimate_shift,
    middle_plane,
    misalignment_warning,
    pair_shift,
    prediction_shift,
)
from napari_pix2pix.engine.sample_data import make_pair


@pytest.mark.parametrize("shift", [(5, 0), (0, -5), (3, 7), (-6, -2)])
def test_a_shifted_target_is_measured(shift):
    source, target = make_pair((160, 192), seed=3, nucleus_radius=5.0)
    aligned = estimate_shift(source, target)
    assert max(abs(v) for v in aligned) <= 1  # the pair as made
    moved = np.roll(target, shift, axis=(0, 1))
    found = estimate_shift(source, moved)
    assert all(abs(f - a - s) <= 1 for f, a, s in zip(found, aligned, shift))


def test_the_middle_plane_of_any_axes():
    stack = np.arange(3 * 2 * 4 * 5).reshape(3, 2, 4, 5)  # ZCYX
    np.testing.assert_array_equal(middle_plane(stack, "ZCYX"), stack[1, 0])
    rgb = np.arange(4 * 5 * 3).reshape(4, 5, 3)
    np.testing.assert_array_equal(middle_plane(rgb, "YXC"), rgb[:, :, 0])


def _cut(source, target, offset, margin=8):
    """The pair's windows with the target's cut ``offset`` px further along each axis
    (no wrap-around): its content moves by -offset."""
    inner = tuple(slice(margin, n - margin) for n in source.shape)
    moved = tuple(slice(s.start + o, s.stop + o) for s, o in zip(inner, offset))
    return source[inner], target[moved]


def test_an_aligned_pair_does_not_warn():
    source, target = make_pair((176, 208), seed=3, nucleus_radius=5.0)
    found = pair_shift(*_cut(source, target, (0, 0)))
    assert found.length <= TOLERATED_SHIFT and not found.warns


@pytest.mark.parametrize("offset", [(0, 6), (-6, 0), (4, -5)])
def test_a_pair_shifted_by_6_px_warns(offset):
    source, target = make_pair((176, 208), seed=3, nucleus_radius=5.0)
    found = pair_shift(*_cut(source, target, offset))
    assert found.warns and found.contrast >= MIN_CONTRAST
    assert all(abs(f + o) <= 1 for f, o in zip(found.shift, offset))


def test_a_long_shift_warns_when_it_is_clear_by_contrast_or_significance():
    assert PairShift((3.0, 3.0), MIN_CONTRAST, 0.0).warns
    assert PairShift((3.0, 3.0), 0.01, MIN_SIGNIFICANCE).warns  # a large image
    assert not PairShift((3.0, 3.0), 0.01, MIN_SIGNIFICANCE - 1).warns
    assert not PairShift((1.0, 1.0), 0.9, 100.0).warns  # within the tolerance


def test_a_shift_on_a_large_pair_is_significant():
    source, target = make_pair((528, 528), seed=3, nucleus_radius=5.0)
    aligned = pair_shift(*_cut(source, target, (0, 0)))
    assert aligned.significance < MIN_SIGNIFICANCE and not aligned.warns
    found = pair_shift(*_cut(source, target, (3, -3)))
    assert found.significance >= MIN_SIGNIFICANCE and found.warns


def test_a_3d_shift_is_found():
    source, target = make_pair((48, 80, 80), seed=1, nucleus_radius=5.0)
    assert not pair_shift(*_cut(source, target, (0, 0, 0), margin=6)).warns
    found = pair_shift(*_cut(source, target, (2, -3, 4), margin=6))
    assert len(found.shift) == 3 and found.warns
    assert all(abs(f + o) <= 1 for f, o in zip(found.shift, (2, -3, 4)))


@pytest.mark.parametrize("seed", [1, 9, 20])
def test_an_unrelated_prediction_gives_no_shift_beyond_the_search(seed):
    rng = np.random.default_rng(seed)
    prediction, target = (ndimage.gaussian_filter(rng.normal(size=(128, 128)), 3) for _ in "pt")
    shift, uncertainty = prediction_shift(prediction[None], target[None])
    assert all(abs(s) <= SEARCH + 0.5 for s in shift)  # a peak on the search's edge: none
    assert not misalignment_warning(shift, uncertainty)
