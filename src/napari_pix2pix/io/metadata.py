"""Physical pixel sizes in TIFF files, read and written in one place: OME-XML first, else
the resolution tags in the unit their ResolutionUnit tag names (ImageJ puts its unit and
Z spacing in its own metadata). Every size passes physical_sizes' rule (known length
units converted to micrometres); this module only finds what the file says."""

from __future__ import annotations

import struct
import warnings
import xml.etree.ElementTree as ET

from ..engine.display_text import pixel_size_text
from .physical_sizes import (
    OME_SYMBOLS,
    check_sizes,
    micrometres,
    normalize_unit,
    read_sizes,
    valid_record,
)

# TIFF ResolutionUnit: 1 none (ImageJ's unit applies), 2 inch (the default), 3 cm
RESOLUTION_UNITS = {2: "inch", 3: "cm", 4: "mm", 5: "µm"}


def read_scale(tif, series: int = 0) -> tuple[dict[str, float], str | None]:
    """Pixel sizes ({'X': 0.65, ...}) and their unit of one series (position) of an open
    tifffile.TiffFile; an axis whose size is not valid is left out, with a warning. An
    OME-XML or ImageJ description that cannot be read (cut off, not valid XML) says so
    in a warning too: the file's sizes and axes are then unknown, not absent."""
    source = tif.filehandle.path
    lost = unreadable_description(tif)
    if tif.is_ome and tif.ome_metadata and not lost:
        try:
            pixels = _ome_pixels(ET.fromstring(tif.ome_metadata), tif, series)
        except ET.ParseError as exc:
            lost = f"its OME-XML description is not valid XML ({exc})"
        except IndexError:
            pass  # the tags may still say something
        else:
            if pixels is None:
                return {}, None
            sizes = {
                a: (pixels.get(f"PhysicalSize{a}"), pixels.get(f"PhysicalSize{a}Unit", "µm"))
                for a in "XYZ"
                if pixels.get(f"PhysicalSize{a}") is not None
            }
            return read_sizes(sizes, source)
    scale, unit = _tag_sizes(tif, series, source)
    if lost:
        warnings.warn(
            f"{str(source)!r}: {lost}, so its physical pixel sizes and axes could not be "
            "read: the image is read with axes guessed from its shape ("
            + ("without physical sizes" if not scale else "sizes from its resolution tags")
            + "). Copy or save the file again, or check its axes and set its pixel sizes "
            "yourself.",
            stacklevel=3,
        )
    return scale, unit


def _tag_sizes(tif, series: int, source) -> tuple[dict[str, float], str | None]:
    """Sizes from the resolution tags, in ResolutionUnit's unit or ImageJ's."""
    page = tif.series[series].keyframe
    imagej = tif.imagej_metadata if tif.is_imagej and tif.imagej_metadata else {}
    imagej_unit = imagej.get("unit")
    tag = page.tags.get("ResolutionUnit")
    resolution_unit = RESOLUTION_UNITS.get(tag.value if tag is not None else 2)
    sizes, unreadable = {}, {}
    for axis, name in (("X", "XResolution"), ("Y", "YResolution")):
        value = page.tags.get(name)
        if value is None:
            continue
        num, den = value.value
        unit = resolution_unit or imagej_unit
        # 1/1 is tifffile's (and others') "no resolution", unless ImageJ gives it a
        # unit: 1 mm per pixel is the usual MR voxel exported from Fiji
        if (num, den) == (1, 1) and (resolution_unit or not normalize_unit(imagej_unit)):
            continue
        if not num:  # 0 pixels per unit: not an infinite size, no size at all
            per = normalize_unit(unit) or "unit"
            unreadable[axis] = f"its {name} tag is 0 pixels per {per}: no size can be derived"
            continue
        sizes[axis] = (den / num, unit)
    if "spacing" in imagej:
        sizes["Z"] = (imagej["spacing"], imagej_unit)
    return read_sizes(sizes, source, unreadable=unreadable)


def unreadable_description(tif) -> str | None:
    """Why the first page's description, where OME-TIFF and ImageJ files keep their axes
    and pixel sizes, cannot be read (tifffile reads such a file as a plain stack, its
    sizes absent, and only logs it); None when it can, or when there is none."""
    page = tif.pages.first
    if "ImageDescription" not in page.tags:
        return _lost_description_tag(tif, page.offset)
    text = page.description or ""
    if not tif.is_ome and "<OME" in text[:4096]:
        return "its OME-XML description is incomplete (it does not end with </OME>)"
    if tif.is_imagej and not tif.imagej_metadata:
        return "its ImageJ description cannot be parsed"
    return None


def _lost_description_tag(tif, offset: int) -> str | None:
    """Why a description tag that the page's directory lists at ``offset`` was not read
    (its text lies past the end of the file); None when there is no such tag."""
    fmt, fh, size = tif.tiff, tif.filehandle, tif.filehandle.size
    try:
        fh.seek(offset)
        (count,) = struct.unpack(fmt.tagnoformat, fh.read(fmt.tagnosize))
        entries = fh.read(count * fmt.tagsize)
        for i in range(len(entries) // fmt.tagsize):
            entry = entries[i * fmt.tagsize : (i + 1) * fmt.tagsize]
            if struct.unpack(tif.byteorder + "H", entry[:2])[0] != 270:
                continue
            length, start = struct.unpack(
                tif.byteorder + 2 * fmt.offsetformat[-1],
                entry[4 : 4 + 2 * fmt.offsetsize],
            )
            fh.seek(start)
            head = fh.read(min(length, 4096)) if start < size else b""
            kind = (
                "OME-XML description"
                if b"<OME" in head or head.lstrip().startswith(b"<?xml")
                else "ImageJ description"
                if head.startswith(b"ImageJ=")
                else "description"
            )
            if start + length > size:
                return (
                    f"its {kind} runs past the end of the file (cut short, e.g. by an "
                    "interrupted copy or download)"
                )
            return f"its {kind} cannot be read"
    except (struct.error, OSError, ValueError):
        return "its list of tags cannot be read"
    return None


def _ome_pixels(root, tif, series: int):
    """The OME Pixels element of a series: one Image per series in tifffile's order,
    unless tifffile left one out (its planes in a missing file): then by its name."""
    images = [el for el in root if el.tag.endswith("Image")]
    if len(images) != len(tif.series):
        name = tif.series[series].name
        images = [el for el in images if el.get("Name") == name] if name else []
        series = 0
    pixels = [p for image in images[series : series + 1] for p in image if p.tag.endswith("Pixels")]
    return pixels[0] if pixels else None


def ome_metadata(axes: str, scale: dict[str, float] | None, unit: str | None) -> dict:
    """tifffile's OME ``metadata`` argument: axes and the physical sizes of X, Y, Z,
    refused (InputError) when one is not valid, so that invalid OME is never written."""
    scale, unit = check_sizes(scale, unit)
    metadata: dict = {"axes": axes}
    for a, s in scale.items():
        if a in axes:
            metadata[f"PhysicalSize{a}"] = s
            # OME's default unit is µm: a size without a known unit must say so
            metadata[f"PhysicalSize{a}Unit"] = OME_SYMBOLS.get(unit, unit) if unit else "pixel"
    return metadata


def pixel_size(scale: dict[str, float] | None, unit: str | None) -> dict | None:
    """What a model records of the physical pixel size it was trained at, e.g.
    {"Y": 0.65, "X": 0.65, "unit": "µm"}; None when the image has no valid one."""
    record = {a: float(scale[a]) for a in "ZYX" if scale and a in scale}
    record["unit"] = normalize_unit(unit)
    return record if valid_record(record) else None


def scale_mismatch(trained: list[dict] | None, given: dict | None, tolerance: float = 0.2) -> str:
    """A warning when an image's pixel size differs from every one the model was trained
    at by more than ``tolerance`` ('' when they agree or either is unknown): a model sees
    structures at the size it learned them. Sizes in different length units are compared
    in micrometres (650 nm is 0.65 µm; 0.5 inch is not 0.5 µm). An image in pixels (no
    unit) has no pixel_size record, so it is never compared with a length: nothing is
    said, as a pixel count says nothing of the structures' physical size."""
    trained = [r for r in trained or () if valid_record(r)]  # a bad one says nothing
    if not trained or not valid_record(given):
        return ""
    given_um = micrometres(given["unit"])
    for record in trained:
        shared = [a for a in "YX" if a in record and a in given]
        if not shared:
            return ""
        factor = given_um / micrometres(record["unit"])  # given's unit in record's
        if all(abs(given[a] * factor / record[a] - 1) <= tolerance for a in shared):
            return ""
    return (
        f"the image's pixel size ({pixel_size_text(given)}) differs from the one the model "
        f"was trained at ({'; '.join(map(pixel_size_text, trained))}): objects will look "
        "larger or smaller to it than in training. Resample the image to the training "
        "pixel size for reliable results."
    )
