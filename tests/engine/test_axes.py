"""Axes strings and canonical layouts."""

import numpy as np

from napari_pix2pix.engine.axes import to_canonical


def test_canonical_layouts():
    x = np.zeros((5, 3, 7, 8))
    assert to_canonical(x, "ZCYX", 2).shape == (5, 3, 7, 8)
    assert to_canonical(x, "ZCYX", 3).shape == (1, 3, 5, 7, 8)
    assert to_canonical(np.zeros((7, 8, 3)), "YXC", 2).shape == (1, 3, 7, 8)
    assert to_canonical(np.zeros((2, 4, 7, 8)), "TZYX", 2).shape == (8, 1, 7, 8)
