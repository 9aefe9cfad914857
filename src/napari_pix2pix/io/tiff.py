"""TIFF and OME-TIFF files: read with their axes and physical pixel sizes (whole, or
lazily through tifffile's zarr store, or opened anew for each box a training crop
reads: FileArray), refused up front when truncated, and written as OME-TIFF (BigTIFF
when large)."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..engine.axes import AXES_LETTERS
from ..engine.memory import refuse_beyond_memory
from ..errors import ImageFileError
from .metadata import ome_metadata, read_scale
from .output_paths import AtomicFile, check_output_path
from .provenance import NOT_A_PREDICTION, is_prediction_software


def read_tiff(path: Path, lazy: bool = False, series: int | None = None):
    """(array, axes, scale, unit) of one series (position) of a TIFF: the only one, or
    ``series``. ``lazy`` gives a zarr array backed by the file instead of reading it
    whole; a whole read is refused when it would not fit in the available memory."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            _check_page_list(tif, path)
            index = _series_index(tif, series, path)
            s = tif.series[index]
            if 0 in s.shape:
                raise ImageFileError(
                    f"{str(path)!r} holds an image with an empty axis (shape "
                    f"{tuple(s.shape)}): there is nothing to read."
                )
            _check_complete(tif, s, path)
            axes = _tifffile_axes(s.axes)
            scale, unit = read_scale(tif, index)
            if not lazy:
                _check_fits(s, path)
            array = None if lazy else s.asarray()
        if lazy:
            import zarr

            # the store owns its own file handle, so the array stays readable
            array = zarr.open(tifffile.imread(path, aszarr=True, series=index), mode="r")
            if not hasattr(array, "shape"):  # a pyramid: take full resolution
                array = array["0"]
    except (tifffile.TiffFileError, ValueError, IndexError, EOFError, struct.error) as exc:
        raise ImageFileError(f"cannot read {str(path)!r} as a TIFF image ({exc}).") from exc
    except RuntimeError as exc:  # a codec's (imagecodecs.DeflateError, ...): damaged data
        raise damaged(path, exc) from exc
    except MemoryError as exc:
        raise ImageFileError(f"{str(path)!r} does not fit in memory.") from exc
    except OSError as exc:
        if isinstance(exc, ImageFileError):
            raise
        raise ImageFileError(f"reading {str(path)!r} failed ({exc.strerror or exc}).") from exc
    return array, axes, {a: v for a, v in scale.items() if a in axes}, unit


def tiff_is_ours(path: Path) -> bool:
    """Whether this TIFF is a prediction of napari-pix2pix (its Software tag says so):
    only those may be replaced (see provenance.py)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return is_prediction_software(tif.pages.first.software)
    except Exception:  # unreadable, or not a TIFF: not ours
        return False


def write_tiff(
    path,
    array: np.ndarray,
    axes: str,
    scale: dict[str, float] | None = None,
    unit: str | None = None,
    overwrite: bool = False,
    inputs=(),
    software: str | None = None,
) -> Path:
    """Write an OME-TIFF carrying axes and physical pixel sizes, atomically; an existing
    file only with ``overwrite`` and only if it is a prediction of napari-pix2pix.
    ``software``: the Software tag, provenance.prediction_software for a prediction;
    None (an image of the user's) leaves tifffile's own, which marks nothing."""
    import tifffile

    path = check_output_path(
        path,
        inputs=inputs,
        ours=tiff_is_ours,
        if_exists="overwrite" if overwrite else "error",
        overwrite_hint="overwrite=True",
        not_ours=NOT_A_PREDICTION,
    )
    with AtomicFile(path, replace=overwrite) as f:
        tifffile.imwrite(
            f.temp,
            array,
            ome=True,
            bigtiff=array.nbytes > 2**31,
            metadata=ome_metadata(axes, scale, unit),
            photometric="minisblack",
            software=software,
        )
    return path


def _series_index(tif, series: int | None, path: Path) -> int:
    """One series: several (an OME-TIFF of several positions) need ``series``."""
    count = len(tif.series)
    if series is None:
        if count > 1:
            raise ImageFileError(
                f"{str(path)!r} holds {count} images (series, e.g. stage positions) of shapes "
                f"{[tuple(s.shape) for s in tif.series[:4]]}; choose one with series=N: "
                "napari_pix2pix.read_image(path, series=N), or --series N on the command line."
            )
        return 0
    if not 0 <= series < count:
        raise ImageFileError(f"{str(path)!r} has {count} series; series={series} does not exist.")
    return series


def _check_fits(series, path: Path) -> None:
    """A compressed file can decode to far more than its size: refuse a whole read
    that the machine's memory cannot hold, before it starts."""
    refuse_beyond_memory(
        series.nbytes,
        f"{str(path)!r} ({tuple(series.shape)} {series.dtype}) decodes to",
        "crop it, or predict from the path (read lazily, band by band).",
        ImageFileError,
    )


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
    if any(page is not None and not page.dataoffsets for page in series.pages):
        raise ImageFileError(  # the tag of where its data lies was cut off: zeros
            f"{str(path)!r} is truncated or damaged: a plane's data cannot be located; "
            "copy or save it again."
        )
    if any(
        page is not None and (0 in page.dataoffsets or 0 in page.databytecounts)
        for page in series.pages
    ):  # a strip or tile with no data: tifffile reads it as zeros, silently
        raise ImageFileError(
            f"{str(path)!r} is damaged: a strip or tile of its image data has no offset or "
            "no length (the file was written incompletely); copy or save it again."
        )
    missing = sum(page is None for page in series.pages)
    if missing:  # tifffile would read them as zeros
        raise ImageFileError(
            f"{str(path)!r} declares {len(series.pages)} planes but {missing} of them are "
            "not there (a companion file of a multi-file OME-TIFF missing, or metadata that "
            "claims more planes than the file holds); copy the whole dataset."
        )
    if series.kind == "ome":
        _check_ome_plane_count(tif, path)
    elif tif.is_ome:  # tifffile found no plane of the OME-XML's images: a plain stack
        _check_planes_without_tiffdata(tif, path)
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


def _check_ome_plane_count(tif, path: Path) -> None:
    """Refuse an OME-TIFF that stores more planes than its OME-XML declares (SizeZ x
    SizeC x SizeT per image): tifffile reads the declared ones and drops the rest
    without a word. Reduced-resolution pages (thumbnails, pyramid levels) are no planes."""
    used = {
        page.index
        for s in tif.series
        for page in s.pages
        if page is not None and page.parent is tif  # not the pages of companion files
    }
    extra = [i for i in range(len(tif.pages)) if i not in used]
    planes = [i for i in extra if not _reduced_resolution(tif, i)]
    if planes:
        raise ImageFileError(
            f"{str(path)!r} stores {len(used) + len(planes)} planes but its OME-XML declares "
            f"{len(used)} (SizeZ x SizeC x SizeT), so {len(planes)} would be left out: the "
            "metadata was not updated when planes were added; save the file again from the "
            "program that made it (Fiji, bfconvert)."
        )


def _check_planes_without_tiffdata(tif, path: Path) -> None:
    """Refuse an OME-TIFF whose OME-XML names no TiffData (which page is which plane) and
    declares another plane count (SizeZ x SizeC x SizeT per image) than the file stores:
    tifffile then reads every page as one stack, so the image's shape is a guess. A
    count that matches is the file's own pages in order (Bio-Formats reads it so)."""
    try:
        root = ET.fromstring(tif.ome_metadata)
    except ET.ParseError:
        return  # read_scale says that the OME-XML cannot be read
    all_pixels = [
        p
        for image in root
        if image.tag.endswith("Image")
        for p in image
        if p.tag.endswith("Pixels")
    ]
    if not all_pixels or any(el.tag.endswith("TiffData") for p in all_pixels for el in p):
        return  # no image (BinaryOnly: OME-XML elsewhere), or tifffile's own reason
    try:
        declared = sum(_declared_planes(p) for p in all_pixels)
    except ValueError:
        return  # not numbers: tifffile's generic reading is all there is
    stored = sum(not _reduced_resolution(tif, i) for i in range(len(tif.pages)))
    if declared != stored:
        raise ImageFileError(
            f"{str(path)!r} stores {stored} planes but its OME-XML declares {declared} "
            "(SizeZ x SizeC x SizeT) and does not say which plane is which (no TiffData), "
            "so its shape cannot be known: the metadata does not belong to these planes; "
            "save the file again from the program that made it (Fiji, bfconvert)."
        )


def _declared_planes(pixels) -> int:
    """Planes (pages) of an OME Pixels element: SizeZ x SizeC x SizeT, the samples of
    one pixel (RGB: SamplesPerPixel 3) sharing a page."""
    sizes = [int(pixels.get(f"Size{a}", 1)) for a in "ZCT"]
    channel = next((el for el in pixels if el.tag.endswith("Channel")), None)
    samples = int(channel.get("SamplesPerPixel", 1)) if channel is not None else 1
    return sizes[0] * max(sizes[1] // max(samples, 1), 1) * sizes[2]


def _reduced_resolution(tif, index: int) -> bool:
    """Whether a page is a thumbnail or pyramid level (NewSubfileType bit 1)."""
    import tifffile

    tif.filehandle.seek(tif.pages[index].offset)
    return bool(tifffile.TiffPage(tif, index=index).subfiletype & 1)


def _check_page_list(tif, path: Path) -> None:
    """tifffile stops at a page it cannot reach and shows what came before it: a stack
    cut short would be read as its first planes, or as a single image."""
    pages = len(tif.pages)
    if pages == 0:
        raise ImageFileError(
            f"{str(path)!r} holds no readable image: it is truncated, or not a whole TIFF; "
            "copy or save it again."
        )
    if _chain_cut(tif, tif.pages[pages - 1].offset):
        raise ImageFileError(
            f"{str(path)!r} is truncated: its list of planes goes on past the end of the "
            f"file, after the {pages} that can be read; copy or save it again."
        )


def _chain_cut(tif, offset: int) -> bool:
    """Whether the chain of page directories from the one at ``offset`` runs past the
    end of the file (tifffile stops there without saying so); a chain ending in 0 is
    whole."""
    fmt, fh, size = tif.tiff, tif.filehandle, tif.filehandle.size
    for _ in range(1 << 20):  # a chain that loops back is not followed for ever
        if offset == 0:
            return False
        if offset + fmt.tagnosize > size:
            return True
        fh.seek(offset)
        (count,) = struct.unpack(fmt.tagnoformat, fh.read(fmt.tagnosize))
        pointer = offset + fmt.tagnosize + count * fmt.tagsize  # where the next is named
        if pointer + fmt.offsetsize > size:
            return True
        fh.seek(pointer)
        (offset,) = struct.unpack(fmt.offsetformat, fh.read(fmt.offsetsize))
    return False


def damaged(path, exc: Exception) -> ImageFileError:
    """A file whose image data cannot be decoded (a codec's error, a bad keyframe)."""
    return ImageFileError(
        f"{str(path)!r} is damaged: its image data cannot be read ({exc}); copy or save it again."
    )


def open_tiff_per_read(path: Path):
    """(FileArray, axes, scale, unit) of a TIFF: its shape and metadata read now, its
    pixels box by box later, the file opened for each read (so that thousands of
    training files hold no file handles)."""
    array, axes, scale, unit = read_tiff(path, lazy=True)
    opened = FileArray(path, array.shape, array.dtype)
    close = getattr(getattr(array, "store", None), "close", None)
    if close is not None:
        close()
    return opened, axes, scale, unit


class FileArray:
    """A TIFF file as a numpy-like array (shape, dtype, ``array[index]``) that opens the
    file for each read and reads only the region asked for (tifffile's zarr store)."""

    def __init__(self, path: Path, shape, dtype) -> None:
        self.path, self.shape, self.dtype = path, tuple(int(n) for n in shape), np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __getitem__(self, index) -> np.ndarray:
        import tifffile
        import zarr

        try:
            store = tifffile.imread(self.path, aszarr=True)
        except (OSError, ValueError, tifffile.TiffFileError) as exc:
            raise ImageFileError(f"reading {str(self.path)!r} failed ({exc}).") from exc
        try:
            array = zarr.open(store, mode="r")
            if not hasattr(array, "shape"):  # a pyramid: full resolution
                array = array["0"]
            if (tuple(array.shape), np.dtype(array.dtype)) != (self.shape, self.dtype):
                raise ImageFileError(
                    f"{str(self.path)!r} changed while training read it: it held "
                    f"{self.shape} {self.dtype} and now holds {tuple(array.shape)} "
                    f"{np.dtype(array.dtype)}. Training reads its files crop by crop until "
                    "it ends: leave them unchanged meanwhile, then train again."
                )
            return np.asarray(array[index])
        except RuntimeError as exc:  # a codec's (imagecodecs.DeflateError, ...)
            raise damaged(self.path, exc) from exc
        except (ValueError, IndexError, KeyError, EOFError, OSError) as exc:
            if isinstance(exc, ImageFileError):
                raise
            raise ImageFileError(f"reading {str(self.path)!r} failed ({exc}).") from exc
        finally:
            store.close()

    def __repr__(self) -> str:
        return f"FileArray({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"
