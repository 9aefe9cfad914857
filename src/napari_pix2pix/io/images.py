"""Images as the library meets them: an array, or a file, with axes and physical pixel
sizes. Paths are opened by format (TIFF, NIfTI, MHA/NRRD with ITK); arrays pass
through."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.arrays import as_array
from ..errors import ImageFileError
from ..options import user_path
from .medical import MEDICAL_SUFFIXES, is_medical, is_nifti, read_medical, write_nifti
from .output_paths import check_input_path
from .physical_sizes import check_sizes
from .tiff import TIFF_SUFFIXES, read_tiff, write_tiff
from .zarr_input import is_zarr, read_zarr


@dataclass
class ImageData:
    """An image with its axes ('' when unknown), physical pixel size per spatial axis
    (e.g. {'X': 0.65}) in ``unit``, and the file it came from (None for arrays; a zarr
    array's store folder), so that no output is ever written over it."""

    array: object
    axes: str = ""
    scale: dict[str, float] = field(default_factory=dict)
    unit: str | None = None
    source: Path | None = None
    meta: dict | None = None  # a medical volume's header/affine, so outputs lie where it lies


def read_image(path, lazy: bool = False, series: int | None = None) -> ImageData:
    """Read an image file with its axes and physical pixel sizes.

    ``lazy`` returns an array backed by the file instead of reading it whole; ``series``
    picks one image of a file that holds several (OME-TIFF positions). NIfTI volumes
    come as "ZYX" (4D "TZYX", 5D "CTZYX") with their header in ``meta``. A ``.zarr``
    store (a folder) is read chunk by chunk (zarr_input.py)."""
    path = check_input_path(path, ImageFileError, "image file", folder_ok=is_zarr(path))
    if is_zarr(path):
        if series is not None:
            raise ImageFileError(f"{str(path)!r} holds one array; series= is for TIFF files.")
        return ImageData(*read_zarr(path, lazy), source=path)
    if is_medical(path):
        if series is not None:
            raise ImageFileError(f"{str(path)!r} holds one volume; series= is for TIFF files.")
        array, axes, scale, unit, meta = read_medical(path, lazy)
        return ImageData(array, axes, scale, unit, source=path, meta=meta)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise ImageFileError(
            f"{str(path)!r} is not a TIFF file, a medical volume or a zarr store "
            f"(.tif/.tiff, {'/'.join(MEDICAL_SUFFIXES)}, .zarr expected)."
        )
    return ImageData(*read_tiff(path, lazy, series), source=path)


def write_image(
    path,
    array: np.ndarray,
    axes: str,
    scale: dict[str, float] | None = None,
    unit: str | None = None,
    overwrite: bool = False,
    meta: dict | None = None,
) -> Path:
    """Write an OME-TIFF (BigTIFF when large) carrying axes and physical pixel sizes,
    or a NIfTI volume (.nii, .nii.gz) with the header in ``meta`` (ImageData.meta of a
    NIfTI input: its affine is kept exactly). Written to a temporary name and renamed, so
    an interrupted write never leaves a file that looks complete. What it writes is the
    user's image, not marked as a prediction, so no overwrite option replaces it later;
    an existing file is replaced only with ``overwrite`` and only if it is a prediction
    of napari-pix2pix (which, saved again here, becomes the user's)."""
    # refused before anything is touched: an empty path, a name it does not write
    # (a TIFF named .zarr, .png or .h5 would not read back as one), bad pixel sizes
    path = user_path(path, "the image path")
    if is_medical(path) and not is_nifti(path):
        raise ImageFileError(f"{str(path)!r}: medical volumes are written as NIfTI (.nii.gz).")
    if not (is_nifti(path) or path.name.lower().endswith(TIFF_SUFFIXES)):
        raise ImageFileError(
            f"write_image writes OME-TIFF (.tif, .tiff, .ome.tif, .ome.tiff) or NIfTI "
            f"(.nii, .nii.gz), not {str(path)!r}; give a name ending in one of these."
        )
    scale, unit = check_sizes(scale, unit)
    if is_nifti(path):
        return write_nifti(path, array, axes, scale, unit, meta, overwrite)
    return write_tiff(path, array, axes, scale, unit, overwrite)


def as_image(image, what: str, lazy: bool = False) -> ImageData:
    """A user's image (array, ImageData or path) as ImageData with a numpy-like array."""
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image, lazy=lazy)
    if not isinstance(image, ImageData):
        image = ImageData(image, source=store_path(image))
    scale, unit = check_sizes(image.scale, image.unit)  # a user's ImageData: not recorded if bad
    return ImageData(as_array(image.array, what), image.axes, scale, unit, image.source, image.meta)


def store_path(array) -> Path | None:
    """The folder or file behind a zarr (or dask-of-zarr) array, if it has one."""
    store = getattr(array, "store", None)
    for attribute in ("root", "path", "dir_path"):
        value = getattr(store, attribute, None)
        if isinstance(value, (str, os.PathLike)) and str(value):
            return Path(value)
    return None
