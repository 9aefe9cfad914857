"""Images as the library meets them: an array, or a file, with axes and physical pixel
sizes. Paths are opened by their format's record (formats.py); arrays pass through."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.arrays import as_array
from ..errors import ImageFileError
from ..options import user_path
from .formats import FORMATS, format_of, formats_taking, input_format_of, listed, suffixes
from .output_paths import check_input_path
from .physical_sizes import check_sizes


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


def read_image(
    path, lazy: bool = False, series: int | None = None, level: int | None = None
) -> ImageData:
    """Read an image file with its axes and physical pixel sizes.

    ``lazy`` returns an array backed by the file instead of reading it whole; ``series``
    picks one image of a file that holds several (OME-TIFF positions), ``level`` one
    resolution of an OME-Zarr pyramid (0, the full one, by default). NIfTI volumes come
    as "ZYX" (4D "TZYX", 5D "CTZYX") with their header in ``meta``. Stores (``.zarr``,
    ``.ome.zarr``: folders) are read chunk by chunk. docs/formats.md lists the formats."""
    fmt = input_format_of(path)
    folder = fmt is not None and fmt.folder
    path = check_input_path(path, ImageFileError, "image file", folder_ok=folder)
    if fmt is None or fmt.read is None:
        raise ImageFileError(
            f"{str(path)!r} is not a TIFF file or another image napari-pix2pix reads "
            f"({listed(suffixes())} expected; docs/formats.md)."
        )
    params = {k: v for k, v in (("series", series), ("level", level)) if v is not None}
    for name in params.keys() - set(fmt.params):
        raise ImageFileError(
            f"{str(path)!r} is {fmt.name}; {name}= is for {formats_taking(name)} files."
        )
    fmt.check_installed(path)
    array, axes, scale, unit, meta = fmt.read(path, lazy, **params)
    return ImageData(array, axes, scale, unit, source=path, meta=meta)


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
    fmt = format_of(path)
    if fmt is None or fmt.write is None:
        writers = " or ".join(f.name for f in FORMATS if f.write is not None)
        raise ImageFileError(
            f"write_image writes {writers} ({', '.join(suffixes('write'))}), not "
            f"{str(path)!r}; give a name ending in one of these."
        )
    scale, unit = check_sizes(scale, unit)
    return fmt.write(path, array, axes, scale, unit, overwrite, meta)


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
