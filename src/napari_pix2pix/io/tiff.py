"""TIFF and OME-TIFF files: read with their axes and physical pixel sizes (whole, or
lazily through tifffile's zarr store), refused up front when truncated, and written as
OME-TIFF (BigTIFF when large)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..engine.axes import AXES_LETTERS
from ..errors import ImageFileError
from .metadata import ome_metadata, read_scale
from .output_paths import AtomicFile, check_output_path

TIFF_SUFFIXES = (".tif", ".tiff")


def read_tiff(path: Path, lazy: bool = False):
    """(array, axes, scale, unit) of the first series; ``lazy`` gives a zarr array backed
    by the file instead of reading it whole."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            _check_complete(tif, series, path)
            axes = _tifffile_axes(series.axes)
            scale, unit = read_scale(tif)
            array = None if lazy else series.asarray()
        if lazy:
            import zarr

            # the store owns its own file handle, so the array stays readable
            array = zarr.open(tifffile.imread(path, aszarr=True, series=0), mode="r")
            if not hasattr(array, "shape"):  # a pyramid: take full resolution
                array = array["0"]
    except (tifffile.TiffFileError, ValueError, IndexError, EOFError, struct.error) as exc:
        raise ImageFileError(f"cannot read {str(path)!r} as a TIFF image ({exc}).") from exc
    return array, axes, {a: s for a, s in scale.items() if a in axes}, unit


def write_tiff(
    path,
    array: np.ndarray,
    axes: str,
    scale: dict[str, float] | None = None,
    unit: str | None = None,
) -> Path:
    """Write an OME-TIFF carrying axes and physical pixel sizes, atomically."""
    import tifffile

    path = Path(path)
    check_output_path(path)
    with AtomicFile(path) as f:
        tifffile.imwrite(
            f.temp,
            array,
            ome=True,
            bigtiff=array.nbytes > 2**31,
            metadata=ome_metadata(axes, scale, unit),
            photometric="minisblack",
        )
    return path


def _tifffile_axes(axes: str) -> str:
    """tifffile's series axes -> ours ('S' samples -> C, 'I'/'Q' unknown -> Z)."""
    mapping = {"S": "C", "I": "Z", "Q": "Z"}
    out = "".join(mapping.get(a, a) for a in axes)
    if len(set(out)) != len(out) or set(out) - set(AXES_LETTERS):
        return ""
    return out


def _check_complete(tif, series, path: Path) -> None:
    """Refuse a truncated file (an interrupted copy or download) up front, instead of
    failing on its missing planes part-way through a long prediction."""
    if series.dataoffset is not None:
        end = series.dataoffset + series.nbytes
    else:
        end = max(
            (
                o + c
                for page in series.pages
                if page is not None
                for o, c in zip(page.dataoffsets, page.databytecounts)
            ),
            default=0,
        )
    size = tif.filehandle.size
    if end > size:
        raise ImageFileError(
            f"{str(path)!r} is truncated: its image data needs {end} bytes but "
            f"the file has only {size}; copy or save it again."
        )
