"""napari reader and writer: every format of io/formats.py in (TIFF / OME-TIFF, NIfTI,
MHA/NRRD with ITK, zarr and OME-Zarr, ...) with physical scale (a volume's voxel
spacing, ZYX, in mm), axis labels and channels split into layers (large files and
stores stay on disk, read lazily); Image layers out as OME-TIFF with their scale."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..engine.axes import guess_axes
from ..io.formats import TIFF, format_of
from ..io.images import read_image, write_image
from ..io.physical_sizes import micrometres, normalize_unit

LAZY_BYTES = 512 * 2**20  # files larger than this open lazily


def _is_ours(path) -> bool:
    """A file (or a store's folder) of a format napari-pix2pix reads."""
    if not isinstance(path, (str, os.PathLike)):
        return False
    fmt = format_of(path)
    if fmt is None or fmt.read is None:
        return False
    return Path(path).is_dir() if fmt.folder else Path(path).is_file()


def napari_get_reader(path):
    """npe2 reader hook: a callable for paths (or lists of them) of the formats in
    io/formats.py, else None. A format whose library is missing is still claimed: its
    reader says what to install."""
    paths = path if isinstance(path, list) else [path]
    if not paths or not all(_is_ours(p) for p in paths):
        return None
    return read_image_layers


def read_image_layers(path) -> list[tuple]:
    paths = path if isinstance(path, list) else [path]
    layers = []
    for p in paths:
        lazy = Path(p).is_dir() or Path(p).stat().st_size > LAZY_BYTES  # a store: always
        image = read_image(p, lazy=lazy)
        data = image.array
        if lazy:
            import dask.array as da

            # a zarr array (a store's, a TIFF's), or an uncompressed NIfTI's memory map
            data = da.from_zarr(data) if hasattr(data, "store") else da.from_array(data)
        axes = image.axes or guess_axes(data.ndim)
        meta: dict = {
            "name": Path(p).name.split(".")[0],
            "metadata": {"napari_pix2pix": {"axes": axes, "unit": image.unit, "path": str(p)}},
        }
        spatial = [a for a in axes if a != "C"]
        if axes and len(axes) == data.ndim:
            meta["scale"] = [float(image.scale.get(a, 1.0)) for a in spatial]
            meta["axis_labels"] = list(spatial)
            if image.unit:
                meta["units"] = [image.unit if a in image.scale else "pixel" for a in spatial]
            if "C" in axes:
                meta["channel_axis"] = axes.index("C")
            translation = (image.meta or {}).get("translation")
            if isinstance(translation, dict) and translation:  # an OME-Zarr image's origin
                meta["translate"] = [float(translation.get(a, 0.0)) for a in spatial]
        layers.append((data, meta, "image"))
    return layers


def napari_write_image(path: str, data, meta: dict) -> list[str]:
    """Write one Image layer as OME-TIFF (BigTIFF when large) keeping its scale."""
    data = np.asarray(data)
    if meta.get("rgb"):
        axes = "YXC" if data.ndim == 3 else "TYXC"[-data.ndim :]
    else:
        axes = _axes_from_labels(meta.get("axis_labels"), data.ndim)
    spatial = [a for a in axes if a != "C"]
    scale = {  # a flipped axis (negative scale) has no physical size
        a: float(s)
        for a, s in zip(spatial, meta.get("scale", [1.0] * len(spatial)))
        if a in "ZYX" and s > 0
    }
    units = meta.get("units")
    unit = normalize_unit(units[-1]) if units and micrometres(units[-1]) else None
    if not path.lower().endswith(TIFF.suffixes):
        path = path + ".ome.tif"
    write_image(
        path, data, axes, scale if unit or any(v != 1.0 for v in scale.values()) else {}, unit
    )
    return [path]


def _axes_from_labels(labels, ndim: int) -> str:
    """napari axis labels -> axes letters; unknown labels become the usual order."""
    if labels and len(labels) == ndim:
        letters = "".join(str(lbl).upper()[:1] for lbl in labels)
        if set(letters) <= set("TZCYX") and len(set(letters)) == ndim and letters[-2:] == "YX":
            return letters
    return guess_axes(ndim)
