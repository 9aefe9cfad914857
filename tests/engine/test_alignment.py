"""The misalignment of a pair is found across modalities (phase contrast vs nuclei)."""

import numpy as np
import pytest

from napari_pix2pix.engine.alignment import estimate_shift, middle_plane
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
