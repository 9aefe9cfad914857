"""Training samples that stay on disk: ``LazySample`` is one (C, *spatial) sample of a
lazy array (a file-backed array, zarr, dask, or anything numpy-like with ``shape``,
``dtype`` and ``__getitem__``) that reads only the boxes asked for, so that training
memory does not grow with the dataset."""

from __future__ import annotations

import numpy as np

from .arrays import check_finite
from .axes import AxesLayout


class LazySample:
    """Sample ``n`` of ``array`` (axes described by ``layout``) as a (C, *spatial) view.

    ``read(box)`` reads one region; ``view[..., a:b]`` narrows the view without reading
    (the train/validation strip); ``numpy.asarray(view)`` reads it whole. Values are
    checked to be finite as they are read."""

    def __init__(self, array, layout: AxesLayout, n: int, region=None, what: str = "image"):
        self.array, self.layout, self.n, self.what = array, layout, n, what
        self.region = (
            tuple(region) if region is not None else tuple((0, s) for s in layout.spatial_shape)
        )
        self.shape = (layout.channels, *(b - a for a, b in self.region))
        self.dtype = np.dtype(array.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def read(self, box: tuple[slice, ...] | None = None) -> np.ndarray:
        """(C, *box) in the array's dtype; ``box`` is one slice per spatial axis (step 1),
        relative to this view; None reads the whole view."""
        box = box or tuple(slice(None) for _ in self.shape[1:])
        absolute = []
        for (lo, _), s, size in zip(self.region, box, self.shape[1:]):
            start, stop, _step = s.indices(size)
            absolute.append(slice(lo + start, lo + max(start, stop)))
        block = self.layout.read_box(self.array, self.n, tuple(absolute))
        check_finite(block, self.what)
        return block

    def __getitem__(self, key) -> LazySample:
        """A narrower view: slices (step 1) over the spatial axes, the channels whole."""
        key = key if isinstance(key, tuple) else (key,)
        if Ellipsis in key:
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
        key = key + (slice(None),) * (self.ndim - len(key))
        if key[0] != slice(None) or any(
            not isinstance(k, slice) or k.step not in (None, 1) for k in key
        ):
            raise IndexError("a LazySample narrows by spatial slices only")
        region = []
        for (lo, _), s, size in zip(self.region, key[1:], self.shape[1:]):
            start, stop, _ = s.indices(size)
            region.append((lo + start, lo + max(start, stop)))
        return LazySample(self.array, self.layout, self.n, region, self.what)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        block = self.read()
        return block if dtype is None else block.astype(dtype)

    def astype(self, dtype) -> np.ndarray:
        return self.read().astype(dtype)


def read_box(sample, box: tuple[slice, ...]) -> np.ndarray:
    """(C, *box) of an in-memory sample (a numpy view) or a LazySample."""
    if isinstance(sample, LazySample):
        return sample.read(box)
    return sample[(slice(None), *box)]


def loaded(sample) -> np.ndarray:
    """A sample in memory (LazySample views are read whole, numpy arrays pass)."""
    return np.asarray(sample) if isinstance(sample, LazySample) else sample
