"""A ``.zarr`` path as an input image: an array store, an OME-Zarr image (NGFF 0.4 or
0.5, whatever its name: ome_zarr.py) or a group whose full resolution is its array "0",
read lazily chunk by chunk. A prediction store of napari-pix2pix brings its axes and
pixel sizes; an unfinished one is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.memory import refuse_beyond_memory
from ..errors import ImageFileError
from .ome_zarr import is_ome_group, ome_level
from .provenance import ZARR_ATTR
from .zarr_output import refuse_unfinished


def read_zarr(path: Path, lazy: bool = False, level: int | None = None):
    """(array, axes, scale, unit, meta) of a zarr store; ``lazy`` keeps the zarr array
    (read box by box), else it is read whole, refused beyond the available memory.
    ``level``: an OME-Zarr image's resolution level (0, the full one, by default)."""
    import zarr

    meta, ome, ours = None, False, False
    try:
        node = zarr.open(str(path), mode="r")
        if hasattr(node, "shape"):
            axes, scale, unit, info = "", {}, None, dict(node.attrs.get(ZARR_ATTR) or {})
        elif is_ome_group(node.attrs):
            ome = True
            info = dict(node.attrs.get(ZARR_ATTR) or {})
            refuse_unfinished(info, path)  # before its metadata: NaN levels are not an image
            ours = bool(info)  # and finished: every chunk written
            node, axes, scale, unit, meta = ome_level(node, path, level)
            info = {}
        else:  # a plain group: full resolution in "0"
            if "0" not in node or not hasattr(node["0"], "shape"):
                raise ImageFileError(
                    f"{str(path)!r} is a zarr group without an image array '0'; give the "
                    f"array itself ({str(path)}/<name>)."
                )
            node = node["0"]
            axes, scale, unit, info = "", {}, None, dict(node.attrs.get(ZARR_ATTR) or {})
        if level not in (None, 0) and not ome:
            raise ImageFileError(
                f"{str(path)!r} is a zarr store of one resolution; level= is for OME-Zarr "
                "images (their pyramid's levels)."
            )
    except ImageFileError:
        raise
    except Exception as exc:  # zarr's own errors for a folder that is not a store
        raise ImageFileError(f"cannot read {str(path)!r} as a zarr array ({exc}).") from exc
    if 0 in node.shape:
        raise ImageFileError(f"{str(path)!r} holds an empty array (shape {tuple(node.shape)}).")
    refuse_unfinished(info, path)
    if not (ours or info):  # a finished store of ours has every chunk
        _refuse_missing_chunks(node, path)
    if info:  # a plain store of ours: its record says what it is
        axes = info.get("axes", "") if len(info.get("axes", "")) == node.ndim else ""
        scale = {a: float(v) for a, v in (info.get("scale") or {}).items() if a in axes}
        unit = info.get("unit")
    if lazy:
        return node, axes, scale, unit, meta
    nbytes = int(np.prod(node.shape)) * np.dtype(node.dtype).itemsize
    refuse_beyond_memory(
        nbytes,
        f"{str(path)!r} holds",
        "read it lazily (lazy=True), or predict from the path.",
        ImageFileError,
    )
    return np.asarray(node[...]), axes, scale, unit, meta


# the most chunks whose keys are listed to find unwritten ones (~0.2 ms each on a disk)
MAX_LISTED = 10_000


def _refuse_missing_chunks(node, path: Path) -> None:
    """Chunks never written read as the fill value; where that is NaN, the image would
    be refused later for its NaN values, which hides the cause: an unfinished copy or
    write, or a damaged store (zarr does not write a chunk that is all fill value, so an
    image with whole chunks of NaN looks the same, and is refused all the same)."""
    fill = getattr(node, "fill_value", None)
    if not (isinstance(fill, float | np.floating) and np.isnan(fill)):
        return
    if node.nchunks > MAX_LISTED:  # listing its keys would cost seconds (more over S3)
        return
    try:
        written, total = node.nchunks_initialized, node.nchunks
    except Exception:  # a store that cannot list its keys (e.g. over HTTP): not checked
        return
    if written < total:
        raise ImageFileError(
            f"{str(path)!r}: {total - written:,} of its {total:,} chunks hold no data and "
            "read as NaN (its fill value): the store is unfinished (a copy or a write "
            "that did not end) or damaged, or those parts of the image are all NaN. "
            "Write or copy it again."
        )
