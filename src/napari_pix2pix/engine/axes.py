"""Axes strings (letters T, Z, C, Y, X) and the layouts they describe.

Internally every image is "canonical": (N, C, *spatial), where N runs over independent
samples (T, and Z when the model is 2D) and spatial is (Y, X) or (Z, Y, X). AxesLayout
addresses a sample's rows in an array of any axes order without reshaping it, so that
numpy, zarr and dask arrays (and the files behind them) are read region by region.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

AXES_LETTERS = "TZCYX"
# the usual order of an array's axes when nothing says otherwise (napari's too)
USUAL_AXES = {2: "YX", 3: "ZYX", 4: "TZYX", 5: "TCZYX"}


def guess_axes(ndim: int) -> str:
    """The one default guess of axes: the usual order for ``ndim`` dimensions, or ''
    when there is none. Only 2D is unambiguous: the library asks for ``axes`` otherwise
    (required_axes), the napari side shows the guess in an editable field."""
    return USUAL_AXES.get(ndim, "")


def required_axes(ndim: int, what: str = "image") -> str:
    """Axes for an image that came without any: 'YX' for 2D, else ask."""
    if ndim == 2:
        return "YX"
    raise InputError(
        f"the {what} has {ndim} dimensions; say what they are with axes=... "
        f"(e.g. {_axes_hint(ndim)!r})."
    )


def check_axes(axes: str, ndim: int, spatial_dims: int = 2, what: str = "image") -> str:
    """Return the upper-cased axes string, or raise a message saying what is wrong."""
    if not isinstance(axes, str):
        raise InputError(
            f"axes for the {what} must be a string such as 'YX' or 'CYX', got {axes!r}."
        )
    axes = axes.upper().replace("S", "C")
    unknown = sorted(set(axes) - set(AXES_LETTERS))
    if unknown:
        raise InputError(
            f"axes {axes!r} for the {what} uses unknown letters {unknown}; "
            f"use only {', '.join(AXES_LETTERS)} (time, depth, channel, rows, columns)."
        )
    repeated = sorted({a for a in axes if axes.count(a) > 1})
    if repeated:
        raise InputError(
            f"axes {axes!r} for the {what} repeats {repeated}; each letter may appear once."
        )
    if len(axes) != ndim:
        raise InputError(
            f"axes {axes!r} has {len(axes)} letters but the {what} has {ndim} dimensions; "
            f"give one letter per dimension (e.g. {_axes_hint(ndim)!r})."
        )
    if "Y" not in axes or "X" not in axes:
        raise InputError(f"axes {axes!r} for the {what} must contain Y and X.")
    if spatial_dims == 3 and "Z" not in axes:
        raise InputError(
            f"a 3D model (spatial_dims=3) needs a Z axis, but the {what} axes are {axes!r}."
        )
    return axes


def _axes_hint(ndim: int) -> str:
    return {2: "YX", 3: "ZYX or CYX", 4: "CZYX or TZYX", 5: "TCZYX"}.get(ndim, "YX")


def spatial_axes(spatial_dims: int) -> str:
    return "ZYX" if spatial_dims == 3 else "YX"


def canonical_order(axes: str, spatial_dims: int) -> tuple[list[int], str]:
    """Permutation to (sample axes..., C?, spatial...) and the sample-axes letters."""
    spatial = spatial_axes(spatial_dims)
    samples = "".join(a for a in axes if a not in spatial and a != "C")
    order = [axes.index(a) for a in samples]
    if "C" in axes:
        order.append(axes.index("C"))
    order += [axes.index(a) for a in spatial]
    return order, samples


def to_canonical(array, axes: str, spatial_dims: int):
    """(any axes order) -> (N, C, *spatial). Works on numpy, dask and zarr-backed arrays
    as long as they support transpose/reshape (no data is read for lazy arrays)."""
    order, samples = canonical_order(axes, spatial_dims)
    x = array.transpose(order) if order != list(range(len(order))) else array
    n = int(np.prod([array.shape[axes.index(a)] for a in samples])) if samples else 1
    c = array.shape[axes.index("C")] if "C" in axes else 1
    return x.reshape((n, c) + tuple(x.shape[-spatial_dims:]))


def output_axes(source_axes: str, target_axes: str, image_axes: str) -> str:
    """Axes of a prediction: the input's axes, with a C axis only where the model's
    target has one (placed where the input has its C, else before the spatial axes)."""
    out = image_axes.replace("C", "")
    if "C" in target_axes:
        pos = (
            image_axes.index("C")
            if "C" in image_axes
            else min(out.index(a) for a in "ZYX" if a in out)
        )
        out = out[:pos] + "C" + out[pos:]
    return out


class AxesLayout:
    """Addresses one sample's band of rows in an array of any axes order.

    A sample is one combination of the non-spatial, non-channel axes (T, and Z for 2D
    models); its block is (C, *spatial) with spatial (Y, X) or (Z, Y, X)."""

    def __init__(self, axes: str, shape: tuple[int, ...], spatial_dims: int) -> None:
        self.axes, self.shape, self.spatial_dims = axes, tuple(int(s) for s in shape), spatial_dims
        self.spatial = spatial_axes(spatial_dims)
        _, self.sample_axes = canonical_order(axes, spatial_dims)
        self.sample_shape = tuple(self.shape[axes.index(a)] for a in self.sample_axes)
        self.n_samples = int(np.prod(self.sample_shape)) if self.sample_shape else 1
        self.channels = self.shape[axes.index("C")] if "C" in axes else 1
        self.spatial_shape = tuple(self.shape[axes.index(a)] for a in self.spatial)
        block = ("C" if "C" in axes else "") + self.spatial
        # order of the block's axes as they come out of array[index]
        self._kept = [a for a in axes if a in block]
        self._to_block = [self._kept.index(a) for a in block]
        self._from_block = [block.index(a) for a in self._kept]

    def index(self, n: int, rows: slice) -> tuple:
        sample = (
            dict(zip(self.sample_axes, np.unravel_index(n, self.sample_shape)))
            if self.sample_axes
            else {}
        )
        first = self.spatial[0]
        return tuple(
            int(sample[a]) if a in sample else rows if a == first else slice(None)
            for a in self.axes
        )

    def read(self, array, n: int, rows: slice) -> np.ndarray:
        """(C, rows, *other spatial) of sample ``n``."""
        return self.read_box(array, n, (rows,))

    def read_box(self, array, n: int, box: tuple[slice, ...]) -> np.ndarray:
        """(C, *box) of sample ``n``: ``box`` holds slices over the first spatial axes
        (the others whole); only that region is read from a lazy array."""
        index = list(self.index(n, slice(None)))
        for a, s in zip(self.spatial, box):
            index[self.axes.index(a)] = s
        block = np.asarray(array[tuple(index)])
        block = block.transpose(self._to_block)
        return block if "C" in self.axes else block[None]

    def write(self, array, n: int, rows: slice, block: np.ndarray) -> None:
        """Store a (C, rows, *other spatial) block of sample ``n``."""
        if "C" not in self.axes:
            block = block[0]
        array[self.index(n, rows)] = block.transpose(self._from_block)

    def with_channels(self, axes: str, channels: int) -> AxesLayout:
        """The layout of an output with ``axes`` (the sample and spatial sizes of this
        one, ``channels`` in C)."""
        sizes = dict(zip(self.sample_axes, self.sample_shape))
        sizes.update(zip(self.spatial, self.spatial_shape))
        sizes["C"] = channels
        return AxesLayout(axes, tuple(sizes[a] for a in axes), self.spatial_dims)
