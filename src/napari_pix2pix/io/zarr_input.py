"""A ``.zarr`` path as an input image: an array store, or a group whose full resolution
is its array "0" (OME-Zarr), read lazily chunk by chunk. A prediction store of
napari-pix2pix brings its axes and pixel sizes; an unfinished one is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.memory import gib
from ..errors import ImageFileError
from .medical import short_of_memory

ZARR_ATTR = "napari_pix2pix"  # the attributes of our prediction stores (outputs.py)


def is_zarr(path) -> bool:
    return str(path).lower().rstrip("/").endswith(".zarr")


def read_zarr(path: Path, lazy: bool = False):
    """(array, axes, scale, unit) of a zarr store; ``lazy`` keeps the zarr array (read
    box by box), else it is read whole, refused beyond the available memory."""
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
        if not hasattr(node, "shape"):  # a group: OME-Zarr keeps full resolution in "0"
            if "0" not in node or not hasattr(node["0"], "shape"):
                raise ImageFileError(
                    f"{str(path)!r} is a zarr group without an image array '0'; give the "
                    f"array itself ({str(path)}/<name>)."
                )
            node = node["0"]
        info = dict(node.attrs.get(ZARR_ATTR) or {})
    except ImageFileError:
        raise
    except Exception as exc:  # zarr's own errors for a folder that is not a store
        raise ImageFileError(f"cannot read {str(path)!r} as a zarr array ({exc}).") from exc
    if 0 in node.shape:
        raise ImageFileError(f"{str(path)!r} holds an empty array (shape {tuple(node.shape)}).")
    if info and not info.get("complete", True):
        raise ImageFileError(
            f"{str(path)!r} is an unfinished prediction (its missing slices are NaN); "
            "resume it first (if_exists='resume', CLI --resume)."
        )
    axes = info.get("axes", "") if len(info.get("axes", "")) == node.ndim else ""
    scale = {a: float(v) for a, v in (info.get("scale") or {}).items() if a in axes}
    unit = info.get("unit")
    if lazy:
        return node, axes, scale, unit
    nbytes = int(np.prod(node.shape)) * np.dtype(node.dtype).itemsize
    free = short_of_memory(nbytes)
    if free is not None:
        raise ImageFileError(
            f"{str(path)!r} holds {gib(nbytes)}, more than the {gib(free)} of memory "
            "available; read it lazily (lazy=True), or predict from the path."
        )
    return np.asarray(node[...]), axes, scale, unit
