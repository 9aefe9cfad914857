"""Microscope vendors' formats (Zeiss CZI, Nikon ND2, Leica LIF) read through bioio and
its reader plugins (the ``[bioio]`` extra): bioio already knows each vendor's layout and
metadata, so this module only maps its answer onto ours. A file's image comes as
bioio's TCZYX with the axes of size 1 (but Y and X) left out, its physical pixel sizes
(bioio gives micrometres) through physical_sizes' rule; several scenes (positions)
need ``series``, like a TIFF of several series."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from ..engine.memory import refuse_beyond_memory
from ..errors import ImageFileError
from .physical_sizes import read_sizes

INSTALL = 'pip install "napari-pix2pix[bioio]"'


def read_bioio(path: Path, lazy: bool = False, series: int | None = None, plugin: str = ""):
    """(array, axes, scale, unit, None) of one scene of a file read by the bioio reader
    plugin ``plugin`` (e.g. "bioio_czi"): a dask array when ``lazy``, else numpy (refused
    beyond the available memory)."""
    try:
        from bioio import BioImage
    except ImportError:
        raise ImageFileError(
            f"reading {path.name!r} needs bioio, which is not installed: {INSTALL}."
        ) from None
    try:
        image = BioImage(path, reader=importlib.import_module(plugin).Reader)
        scenes = image.scenes
        if series is None and len(scenes) > 1:
            raise ImageFileError(
                f"{str(path)!r} holds {len(scenes)} images (scenes, e.g. stage positions); "
                "choose one with series=N: napari_pix2pix.read_image(path, series=N), or "
                "--series N on the command line."
            )
        if series is not None and not 0 <= series < len(scenes):
            raise ImageFileError(
                f"{str(path)!r} has {len(scenes)} scene(s); series={series} does not exist."
            )
        image.set_scene(series or 0)
        data, order = image.dask_data, image.dims.order
        sizes = image.physical_pixel_sizes
    except ImageFileError:
        raise
    except Exception as exc:  # each vendor library raises its own errors
        raise ImageFileError(f"cannot read {str(path)!r} ({type(exc).__name__}: {exc}).") from exc
    if "S" in order:  # RGB samples: the channels, where the file has no other channels
        rgb = data.shape[order.index("S")] > 1
        if rgb and data.shape[order.index("C")] > 1:
            raise ImageFileError(f"{str(path)!r} has both channels and RGB samples.")
        drop = order.index("C" if rgb else "S")
        data = data[tuple(0 if i == drop else slice(None) for i in range(len(order)))]
        order = (order[:drop] + order[drop + 1 :]).replace("S", "C")
    keep = [i for i, a in enumerate(order) if a in "YX" or data.shape[i] != 1]
    data = data[tuple(slice(None) if i in keep else 0 for i in range(len(order)))]
    axes = "".join(order[i] for i in keep)
    found = {"Z": sizes.Z, "Y": sizes.Y, "X": sizes.X}
    scale, unit = read_sizes(
        {a: (v, "µm") for a, v in found.items() if a in axes and v is not None}, path
    )
    if not lazy:
        nbytes = int(np.prod(data.shape)) * np.dtype(data.dtype).itemsize
        refuse_beyond_memory(
            nbytes,
            f"{str(path)!r} decodes to",
            "read it lazily (lazy=True), or predict from the path.",
            ImageFileError,
        )
        data = np.asarray(data)
    return data, axes, scale, unit, None
