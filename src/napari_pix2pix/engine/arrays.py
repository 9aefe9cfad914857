"""What the engine accepts as an image: numpy, dask or zarr arrays (or anything numpy
can convert) of a numeric dtype, not empty, with finite values."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

SUPPORTED_DTYPES = (
    "uint8",
    "uint16",
    "uint32",
    "int8",
    "int16",
    "int32",
    "float16",
    "float32",
    "float64",
    "bool",
)


def as_array(image, what: str):
    """A numpy-like array for ``image``: zarr arrays become dask arrays, which (unlike
    zarr) transpose and reshape lazily; torch tensors and big-endian arrays become
    native numpy arrays."""
    module = type(image).__module__
    if module.startswith("zarr"):
        import dask.array as da

        return da.from_zarr(image)
    if module.startswith("torch"):
        image = image.detach().cpu().numpy()
    if module.startswith("dask") and any(math.isnan(c) for c in image.shape):
        raise InputError(
            f"the {what} is a dask array of unknown size {image.shape}; call "
            ".compute_chunk_sizes() on it first."
        )
    if isinstance(image, np.ndarray) and not image.dtype.isnative:
        return image.astype(image.dtype.newbyteorder("="))
    if not hasattr(image, "shape") or not hasattr(image, "dtype"):
        try:
            image = np.asarray(image)
        except Exception as exc:  # anything unconvertible is a user error
            raise InputError(
                f"the {what} must be an array or an image path, got {type(image).__name__}."
            ) from exc
    return image


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_array(array, what: str) -> None:
    if str(array.dtype) not in SUPPORTED_DTYPES:
        raise InputError(
            f"the {what} has dtype {array.dtype}; use an integer or float image "
            f"({', '.join(SUPPORTED_DTYPES)})."
        )
    if 0 in array.shape:
        raise InputError(f"the {what} is empty (shape {tuple(array.shape)}).")


def check_finite(array: np.ndarray, what: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise InputError(
            f"the {what} contains {bad} NaN or infinite values; replace them "
            f"(e.g. numpy.nan_to_num) before training or prediction."
        )
    if array.dtype.itemsize > 4 and array.dtype.kind == "f" and array.size:
        largest = float(np.abs(array).max())
        if largest > FLOAT32_MAX:  # the networks compute in float32: it would become inf
            raise InputError(
                f"the {what} holds values up to {largest:g}, beyond float32's range "
                f"({FLOAT32_MAX:.3g}) in which the networks compute; rescale it."
            )
