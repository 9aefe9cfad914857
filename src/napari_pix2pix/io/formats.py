"""Every image format napari-pix2pix reads or writes, one record each: the endings of
its files, how it is read, opened for training, written and predicted into, and how a
file of ours is told from a user's. Reading (images.py), training data (datasets.py),
predictions (outputs.py), the napari reader, its manifest (napari.yaml, compared with
this table by a test) and its reader offer all ask this table, so a new format is its
reader module, a record here and its patterns in napari.yaml."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePath

from ..engine.axes import AxesLayout
from ..errors import ImageFileError
from .bioio_formats import INSTALL as BIOIO_INSTALL
from .bioio_formats import read_bioio
from .medical import NiftiOutput, nifti_is_ours, read_itk, read_nifti, write_nifti
from .ome_zarr import INSTALL as OME_ZARR_INSTALL
from .ome_zarr import OmeZarrOutput
from .tiff import open_tiff_per_read, read_tiff, tiff_is_ours, write_tiff
from .tiff_output import TiffOutput
from .zarr_input import read_zarr
from .zarr_output import ZarrOutput, store_is_ours


@dataclass(frozen=True)
class Format:
    """One format. The callables take a checked path:

    - ``read(path, lazy, **params)`` -> (array, axes, scale, unit, meta); ``params`` are
      the read parameters it takes (``series``: one image of several; ``level``: one
      resolution of a pyramid);
    - ``open_lazy(path)`` -> the same, for training crops (default: ``read`` lazily);
    - ``write(path, array, axes, scale, unit, overwrite, meta)`` -> path (write_image);
    - ``output(path, in_layout, out_layout, scale, unit, if_exists, identity, meta,
      model_sha256)`` -> a prediction output (engine.inference's output protocol);
    - ``is_ours(path)``: napari-pix2pix predicted this file (only those are replaced)."""

    name: str
    suffixes: tuple[str, ...]  # lower-case endings, the usual one first
    read: Callable | None = None
    params: tuple[str, ...] = ()
    open_lazy: Callable | None = None
    write: Callable | None = None
    output: Callable | None = None
    is_ours: Callable | None = None
    folder: bool = False  # a store (a folder), not a file
    resumable: bool = False  # a prediction into it can resume
    in_memory: bool = False  # a prediction into it is held whole until written
    module: str = ""  # the library its reader needs, when that is not installed with us
    install: str = ""  # how to install it
    note: str = ""  # one line for the docs

    @property
    def patterns(self) -> tuple[str, ...]:
        """napari's filename patterns: each ending in lower and upper case (napari
        matches case-sensitively on Linux and macOS), '*.ome.tif' left to '*.tif'."""
        own = [s for s in self.suffixes if not any(s != o and s.endswith(o) for o in self.suffixes)]
        return tuple(f"*{s}" for s in own) + tuple(f"*{s.upper()}" for s in own)

    @property
    def installed(self) -> bool:
        """The library its reader needs (if any) can be imported."""
        if not self.module:
            return True
        try:
            importlib.import_module(self.module)
        except ImportError:
            return False
        return True

    def check_installed(self, path) -> None:
        """Refuse before reading when the library the reader needs is missing."""
        if not self.installed:
            raise ImageFileError(
                f"reading {Path(path).name!r} ({self.name}) needs {self.module}, which is "
                f"not installed: {self.install}."
            )


def _read_tiff(path: Path, lazy: bool, series: int | None = None):
    return (*read_tiff(path, lazy, series), None)


def _open_tiff(path: Path):
    return (*open_tiff_per_read(path), None)


def _write_tiff(path, array, axes, scale, unit, overwrite, meta):
    return write_tiff(path, array, axes, scale, unit, overwrite)


def _write_nifti(path, array, axes, scale, unit, overwrite, meta):
    return write_nifti(path, array, axes, scale, unit, meta, overwrite)


def _tiff_output(
    path,
    in_layout: AxesLayout,
    out_layout: AxesLayout,
    scale,
    unit,
    if_exists,
    identity,
    meta,
    model_sha256,
):
    return TiffOutput(
        path,
        in_layout,
        out_layout.channels,
        "C" in out_layout.axes,
        scale or {},
        unit,
        replace=if_exists == "overwrite",
        model_sha256=model_sha256,
    )


def _nifti_output(
    path, in_layout, out_layout, scale, unit, if_exists, identity, meta, model_sha256
):
    return NiftiOutput(path, out_layout, scale, unit, meta, if_exists == "overwrite", model_sha256)


def _store_output(kind: type[ZarrOutput]) -> Callable:
    def output(path, in_layout, out_layout, scale, unit, if_exists, identity, meta, model_sha256):
        return kind(path, out_layout, scale or {}, unit, if_exists, identity, model_sha256, meta)

    return output


TIFF = Format(
    "TIFF / OME-TIFF",
    (".tif", ".tiff", ".ome.tif", ".ome.tiff"),
    read=_read_tiff,
    params=("series",),
    open_lazy=_open_tiff,
    write=_write_tiff,
    output=_tiff_output,
    is_ours=tiff_is_ours,
    note="sizes from OME-XML, ImageJ or the resolution tags; predictions streamed",
)

NIFTI = Format(
    "NIfTI",
    (".nii", ".nii.gz"),
    read=read_nifti,
    write=_write_nifti,
    output=_nifti_output,
    is_ours=nifti_is_ours,
    in_memory=True,
    note="affine and header kept exactly; .nii mapped from disk, .nii.gz read whole",
)

ITK = Format(
    "MetaImage / NRRD",
    (".mha", ".mhd", ".nrrd", ".nhdr"),
    read=read_itk,
    module="itk",
    install="pip install itk",
    note="read through ITK, voxel spacing in mm",
)

OME_ZARR = Format(
    "OME-Zarr (NGFF 0.4, 0.5)",
    (".ome.zarr",),
    read=read_zarr,
    params=("level",),
    output=_store_output(OmeZarrOutput),
    is_ours=store_is_ours,
    folder=True,
    resumable=True,
    module="yaozarrs",
    install=OME_ZARR_INSTALL,
    note="read lazily at level 0 (or level=N); predictions as NGFF 0.5 with a pyramid",
)

ZARR = Format(
    "zarr",
    (".zarr",),
    read=read_zarr,
    params=("level",),
    output=_store_output(ZarrOutput),
    is_ours=store_is_ours,
    folder=True,
    resumable=True,
    note="an array, or a group with its image in '0' (OME-Zarr read as OME-Zarr)",
)


def _vendor(name: str, suffix: str, plugin: str, note: str) -> Format:
    """A microscope vendor's format, read through bioio and its reader plugin."""
    return Format(
        name,
        (suffix,),
        read=partial(read_bioio, plugin=plugin),
        params=("series",),
        module=plugin,
        install=BIOIO_INSTALL,
        note=note,
    )


CZI = _vendor("Zeiss CZI", ".czi", "bioio_czi", "through bioio-czi; scenes as series=")
ND2 = _vendor("Nikon ND2", ".nd2", "bioio_nd2", "through bioio-nd2; positions as series=")
LIF = _vendor("Leica LIF", ".lif", "bioio_lif", "through bioio-lif; images as series=")

FORMATS = (TIFF, NIFTI, ITK, OME_ZARR, ZARR, CZI, ND2, LIF)


def format_of(path) -> Format | None:
    """The format a path's name says (the longest ending that fits), or None."""
    name = str(path).lower().rstrip("/")
    fits = [(len(s), f) for f in FORMATS for s in f.suffixes if name.endswith(s) and name != s]
    return max(fits, key=lambda fit: fit[0])[1] if fits else None


def input_format_of(path) -> Format | None:
    """The format of an image to read: as format_of, and a path inside a store
    ('collection.ome.zarr/0', one image of a collection) is the store's (for reading
    only: nothing is ever written inside another store)."""
    fmt = format_of(path)
    if fmt is not None:
        return fmt
    stores = (format_of(p.name) for p in PurePath(str(path)).parents)
    return next((f for f in stores if f is not None and f.folder), None)


def suffixes(what: str = "read") -> tuple[str, ...]:
    """The endings of the formats that can ``what`` ("read", "write", "output")."""
    return tuple(s for f in FORMATS if getattr(f, what) is not None for s in f.suffixes)


def image_stem(name: str) -> str | None:
    """A file name without its image ending ('a.ome.tif' -> 'a'); None without one."""
    lower = name.lower()
    for suffix in sorted(suffixes(), key=len, reverse=True):
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def napari_patterns(installed: bool = False) -> tuple[str, ...]:
    """What the napari reader opens (napari.yaml's filename_patterns): every readable
    format's patterns, none covered by another's; ``installed``: only those of formats
    whose reader's library is installed (what the reader offer claims, so that it never
    takes a format from another plugin that can open it)."""
    every = [
        p
        for f in FORMATS
        if f.read is not None and (f.installed or not installed)
        for p in f.patterns
    ]
    return tuple(p for p in every if not any(p != o and p.endswith(o[1:]) for o in every))


def formats_taking(param: str) -> str:
    """'TIFF / OME-TIFF' for 'series': the formats a read parameter is for."""
    return " and ".join(f.name for f in FORMATS if param in f.params)


def listed(endings) -> str:
    """'.tif, .tiff or .zarr'."""
    endings = list(endings)
    return ", ".join(endings[:-1]) + (" or " if len(endings) > 1 else "") + endings[-1]
