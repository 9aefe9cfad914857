"""Images as the library meets them: an array, or a file, with axes and physical pixel
sizes. Paths are opened by format (TIFF today); arrays pass through."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.arrays import as_array
from ..errors import ImageFileError
from .tiff import TIFF_SUFFIXES, read_tiff, write_tiff


@dataclass
class ImageData:
    """An image with its axes ('' when unknown) and physical pixel size per spatial axis
    (e.g. {'X': 0.65}) in ``unit``."""

    array: object
    axes: str = ""
    scale: dict[str, float] = field(default_factory=dict)
    unit: str | None = None


def read_image(path, lazy: bool = False) -> ImageData:
    """Read an image file with its axes and physical pixel sizes.

    ``lazy`` returns an array backed by the file instead of reading it whole."""
    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"image file {str(path)!r} does not exist.")
    if path.is_dir():
        raise ImageFileError(f"{str(path)!r} is a directory, not an image file.")
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise ImageFileError(f"{str(path)!r} is not a TIFF file (.tif/.tiff expected).")
    return ImageData(*read_tiff(path, lazy))


def write_image(
    path,
    array: np.ndarray,
    axes: str,
    scale: dict[str, float] | None = None,
    unit: str | None = None,
) -> Path:
    """Write an OME-TIFF (BigTIFF when large) carrying axes and physical pixel sizes.
    Written to a temporary name and renamed, so an interrupted write never leaves a
    file that looks complete."""
    return write_tiff(path, array, axes, scale, unit)


def as_image(image, what: str, lazy: bool = False) -> ImageData:
    """A user's image (array, ImageData or path) as ImageData with a numpy-like array."""
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image, lazy=lazy)
    if not isinstance(image, ImageData):
        image = ImageData(image)
    return ImageData(as_array(image.array, what), image.axes, image.scale, image.unit)
