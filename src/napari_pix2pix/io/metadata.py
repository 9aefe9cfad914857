"""Physical pixel sizes in TIFF files, read and written in one place: OME-XML first, else
the resolution tags in the unit their ResolutionUnit tag names (ImageJ puts its unit and
Z spacing in its own metadata). Known length units are converted to micrometres."""

from __future__ import annotations

import xml.etree.ElementTree as ET

# length units by their spellings (OME, ImageJ, napari/pint): (symbol, micrometres)
UNITS = {
    **dict.fromkeys(("m", "meter", "metre"), ("m", 1e6)),
    **dict.fromkeys(("cm", "centimeter", "centimetre"), ("cm", 1e4)),
    **dict.fromkeys(("mm", "millimeter", "millimetre"), ("mm", 1e3)),
    **dict.fromkeys(("µm", "um", "micron", "micrometer", "micrometre"), ("µm", 1.0)),
    **dict.fromkeys(("nm", "nanometer", "nanometre"), ("nm", 1e-3)),
    **dict.fromkeys(("å", "angstrom"), ("Å", 1e-4)),
    **dict.fromkeys(("pm", "picometer", "picometre"), ("pm", 1e-6)),
    **dict.fromkeys(("inch", "in"), ("inch", 25400.0)),
}
# TIFF ResolutionUnit: 1 none (ImageJ's unit applies), 2 inch (the default), 3 cm
RESOLUTION_UNITS = {2: "inch", 3: "cm", 4: "mm", 5: "µm"}


def _key(unit) -> str:
    return str(unit).strip().replace("\\u00B5", "µ").replace("μ", "µ").lower()


def normalize_unit(unit) -> str | None:
    """The symbol of a length unit ('micron', 'um', 'micrometer' -> 'µm'); None for no
    unit or 'pixel'; other names unchanged."""
    if not unit or _key(unit) in ("pixel", "pixels", "px"):
        return None
    return UNITS.get(_key(unit), (str(unit).strip(), None))[0]


def to_micrometres(
    scale: dict[str, float], units: dict[str, str | None]
) -> tuple[dict, str | None]:
    """Sizes with known length units in µm; if any unit is unknown, the sizes as given
    with the unit of X (or of whichever axis has one)."""
    if scale and all(units.get(a) and _key(units[a]) in UNITS for a in scale):
        return {a: s * UNITS[_key(units[a])][1] for a, s in scale.items()}, "µm"
    names = [normalize_unit(units.get(a)) for a in ("X", *units)]
    return dict(scale), next((u for u in names if u), None)


def read_scale(tif, series: int = 0) -> tuple[dict[str, float], str | None]:
    """Pixel sizes ({'X': 0.65, ...}) and their unit of one series (position) of an open
    tifffile.TiffFile."""
    if tif.is_ome and tif.ome_metadata:
        try:
            pixels = _ome_pixels(ET.fromstring(tif.ome_metadata), tif, series)
            if pixels is None:
                return {}, None
            scale = {
                a: float(pixels.get(f"PhysicalSize{a}"))
                for a in "XYZ"
                if pixels.get(f"PhysicalSize{a}") is not None
            }
            units = {a: pixels.get(f"PhysicalSize{a}Unit", "µm") for a in scale}
            return to_micrometres(scale, units)
        except (ET.ParseError, IndexError, ValueError):
            pass
    page = tif.series[series].keyframe
    imagej = tif.imagej_metadata if tif.is_imagej and tif.imagej_metadata else {}
    imagej_unit = imagej.get("unit")
    tag = page.tags.get("ResolutionUnit")
    resolution_unit = RESOLUTION_UNITS.get(tag.value if tag is not None else 2)
    scale, units = {}, {}
    for axis, name in (("X", "XResolution"), ("Y", "YResolution")):
        value = page.tags.get(name)
        if value is None:
            continue
        num, den = value.value
        if num and den and (num, den) != (1, 1):
            scale[axis] = den / num
            units[axis] = resolution_unit or imagej_unit
    if "spacing" in imagej:
        scale["Z"] = float(imagej["spacing"])
        units["Z"] = imagej_unit
    if not scale:
        return {}, normalize_unit(imagej_unit)
    return to_micrometres(scale, units)


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
    """tifffile's OME ``metadata`` argument: axes and the physical sizes of X, Y, Z."""
    metadata: dict = {"axes": axes}
    for a, s in (scale or {}).items():
        if a in axes and a in "XYZ":
            metadata[f"PhysicalSize{a}"] = float(s)
            # OME's default unit is µm: a size without a known unit must say so
            metadata[f"PhysicalSize{a}Unit"] = unit or "pixel"
    return metadata


def pixel_size(scale: dict[str, float] | None, unit: str | None) -> dict | None:
    """What a model records of the physical pixel size it was trained at, e.g.
    {"Y": 0.65, "X": 0.65, "unit": "µm"}; None when the image has none."""
    sizes = {a: float(scale[a]) for a in "ZYX" if scale and a in scale}
    if not sizes or not normalize_unit(unit):
        return None
    return {**sizes, "unit": normalize_unit(unit)}


def pixel_size_text(record: dict) -> str:
    """'0.65 x 0.65 µm (Y x X)'."""
    axes = [a for a in "ZYX" if a in record]
    values = " x ".join(f"{record[a]:.4g}" for a in axes)
    return f"{values} {record.get('unit', '')} ({' x '.join(axes)})"


def scale_mismatch(trained: list[dict] | None, given: dict | None, tolerance: float = 0.2) -> str:
    """A warning when an image's pixel size differs from every one the model was trained
    at by more than ``tolerance`` ('' when they agree or either is unknown): a model sees
    structures at the size it learned them."""
    if not trained or not given:
        return ""
    for record in trained:
        same_unit = record.get("unit") == given.get("unit")
        shared = [a for a in "YX" if a in record and a in given]
        if not same_unit or not shared:
            return ""
        if all(abs(given[a] / record[a] - 1) <= tolerance for a in shared):
            return ""
    return (
        f"the image's pixel size ({pixel_size_text(given)}) differs from the one the model "
        f"was trained at ({'; '.join(map(pixel_size_text, trained))}): objects will look "
        "larger or smaller to it than in training. Resample the image to the training "
        "pixel size for reliable results."
    )
