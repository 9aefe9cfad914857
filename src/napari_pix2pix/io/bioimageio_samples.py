"""The sample a bioimage.io package carries: the test input its consumers reproduce
(the caller's image or the simulated sample, cut or padded to the model's patch) and
the cover image (input | output)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.arrays import check_array, check_finite
from ..errors import InputError
from .images import as_image


def test_input_of(model, test_input) -> np.ndarray:
    """(1, C, *patch_size) float32: the caller's image or the simulated sample."""
    c = model.config
    if test_input is None:
        from ..engine.sample_data import make_pair

        array = make_pair(tuple(c.patch_size), seed=0)[0]
    else:
        array = as_image(test_input, "test input").array
        check_array(array, "test input")
        array = np.asarray(array)
    d = c.spatial_dims
    if array.ndim == d:
        array = np.repeat(array[None], c.in_channels, axis=0)
    elif not (array.ndim == d + 1 and array.shape[0] == c.in_channels):
        axes = "YX" if d == 2 else "ZYX"
        raise InputError(
            f"the test input must have axes {axes} or C{axes} with C = "
            f"{c.in_channels} (the model's input channels), got shape "
            f"{tuple(array.shape)}."
        )
    array = array.astype(np.float32)
    check_finite(array, "test input")
    for axis, size in enumerate(c.patch_size, start=1):
        n = array.shape[axis]
        if n >= size:
            start = (n - size) // 2
            array = np.take(array, np.arange(start, start + size), axis=axis)
        else:
            before = (size - n) // 2
            widths = [(0, 0)] * array.ndim
            widths[axis] = (before, size - n - before)
            array = np.pad(array, widths, mode="reflect" if n > 1 else "edge")
    return np.ascontiguousarray(array[None])


def _to_uint8(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (0.5, 99.5))
    scaled = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8)


def write_cover(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """input | output (first channel; middle slice of 3D), each scaled to 8 bit."""
    from PIL import Image

    def plane(a):
        a = a[0, 0]
        return a[a.shape[0] // 2] if a.ndim == 3 else a

    left, right = _to_uint8(plane(x)), _to_uint8(plane(y))
    gap = np.full((left.shape[0], max(2, left.shape[1] // 64)), 255, np.uint8)
    image = Image.fromarray(np.concatenate([left, gap, right], axis=1))
    factor = max(1, 256 // image.height)
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
    image.save(path)
