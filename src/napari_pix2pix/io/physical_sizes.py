"""The one rule for physical pixel sizes, which every reader and writer goes through:
a size is a positive finite number in a known length unit, or it is absent. It is never
taken from another axis: an axis whose size is zero, negative, NaN, infinite, or in a
unit we do not know has no size (a file's says so in a warning that names the file and
the axis), and a user's is refused (InputError naming the axis and value), so that no
invalid OME-XML or NIfTI header is ever written and no size can divide by zero later.

An image's sizes are ``scale`` ({'X': 0.65, ...}) in one ``unit``: a length symbol
('µm'), or None for sizes in pixels (a file that gives numbers but no unit); an axis in
pixels beside axes in a length unit is not a physical size and is left out.

One exception to "no unit, no length": a NIfTI header whose unit code is 'unknown' (0)
is read as millimetres, by the NIfTI convention that every reader follows (so an image
written without a unit reads back in mm, its numbers unchanged); see medical.py.

Sizes in different length units are compared in micrometres (metadata.scale_mismatch);
sizes in pixels are never compared with lengths."""

from __future__ import annotations

import math
import numbers
import warnings

from ..errors import InputError

# length units by their spellings (OME, ImageJ, napari/pint): (symbol, micrometres)
UNITS = {
    **dict.fromkeys(("km", "kilometer", "kilometre"), ("km", 1e9)),
    **dict.fromkeys(("m", "meter", "metre"), ("m", 1e6)),
    **dict.fromkeys(("dm", "decimeter", "decimetre"), ("dm", 1e5)),
    **dict.fromkeys(("cm", "centimeter", "centimetre"), ("cm", 1e4)),
    **dict.fromkeys(("mm", "millimeter", "millimetre"), ("mm", 1e3)),
    **dict.fromkeys(
        ("µm", "um", "micron", "microns", "micrometer", "micrometre", "micrometers", "micrometres"),
        ("µm", 1.0),
    ),
    **dict.fromkeys(("nm", "nanometer", "nanometre"), ("nm", 1e-3)),
    **dict.fromkeys(("å", "angstrom"), ("Å", 1e-4)),
    **dict.fromkeys(("pm", "picometer", "picometre"), ("pm", 1e-6)),
    **dict.fromkeys(("fm", "femtometer", "femtometre"), ("fm", 1e-9)),
    **dict.fromkeys(("inch", "inches", "in"), ("inch", 25400.0)),
    **dict.fromkeys(("thou", "mil"), ("thou", 25.4)),
    **dict.fromkeys(("ft", "foot", "feet"), ("ft", 304800.0)),
    **dict.fromkeys(("yd", "yard"), ("yd", 914400.0)),
    **dict.fromkeys(("mi", "mile"), ("mi", 1609344e3)),
    **dict.fromkeys(("pt", "point"), ("pt", 25400.0 / 72)),
}
NO_UNIT = ("pixel", "pixels", "px")
OME_SYMBOLS = {"inch": "in"}  # where OME's UnitsLength spells a symbol differently


def _key(unit) -> str:
    return str(unit).strip().replace("\\u00B5", "µ").replace("μ", "µ").lower()


def normalize_unit(unit) -> str | None:
    """The symbol of a length unit ('micron', 'um', 'micrometer' -> 'µm'); None for no
    unit or 'pixel'; other names unchanged (so that a caller can name them)."""
    if not unit or _key(unit) in NO_UNIT:
        return None
    return UNITS.get(_key(unit), (str(unit).strip(), None))[0]


def micrometres(unit) -> float | None:
    """Micrometres per ``unit``; None for no unit, 'pixel' or a unit we do not know."""
    return UNITS[_key(unit)][1] if unit and _key(unit) in UNITS else None


def is_size(value) -> bool:
    """A positive finite real number (not a bool, not a string)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and (_finite_positive(value))
    )


def _finite_positive(value) -> bool:
    try:
        return math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        return False


def in_unit(scale: dict[str, float], unit: str, into: str) -> dict[str, float]:
    """Sizes in the known length ``unit`` expressed in ``into`` (also known)."""
    return {a: v * micrometres(unit) / micrometres(into) for a, v in scale.items()}


def read_sizes(
    sizes: dict[str, tuple[object, object]],
    source,
    into: str | None = "µm",
    unreadable: dict[str, str] | None = None,
) -> tuple[dict[str, float], str | None]:
    """(scale, unit) from what a file says of each axis, {'X': (value, unit), ...}: only
    the axes that pass the rule, each in its own unit, converted to ``into`` (None:
    kept when all share one unit, else µm). ``unreadable``: axes the file names but
    from which no size can be derived, each with why ({'X': 'its XResolution tag is
    0'}). Every axis dropped is named in one warning (with ``source``, the file), so
    that a wrong size is never silent."""
    problems, valid = list((unreadable or {}).values()), {}
    for axis, (value, unit) in sizes.items():
        if not _finite_positive(value):
            problems.append(f"the size of {axis} is {value}, not a positive number")
        elif unit and _key(unit) not in NO_UNIT and micrometres(unit) is None:
            problems.append(f"the size of {axis} is in {str(unit)!r}, not a length unit we know")
        else:
            valid[axis] = (float(value), normalize_unit(unit))
    physical = {a: v for a, v in valid.items() if v[1]}
    if physical:
        for axis in valid.keys() - physical.keys():
            problems.append(f"the size of {axis} has no unit while other axes have one")
        symbols = {u for _, u in physical.values()}
        target = into or (symbols.pop() if len(symbols) == 1 else "µm")
        scale = {
            a: v * micrometres(u) / micrometres(target) if u != target else v
            for a, (v, u) in physical.items()
        }
    else:
        scale, target = {a: v for a, (v, _) in valid.items()}, None
    if problems:
        dropped = sorted((sizes.keys() | (unreadable or {}).keys()) - scale.keys())
        warnings.warn(
            f"{str(source)!r}: {'; '.join(problems)}. {', '.join(dropped)} "
            f"{'is' if len(dropped) == 1 else 'are'} read without a physical size (in "
            "pixels); correct the file's metadata (in Fiji: Image > Properties) if "
            f"{'it has' if len(dropped) == 1 else 'they have'} one.",
            stacklevel=3,
        )
    return scale, target if scale else None


def check_sizes(scale: dict | None, unit) -> tuple[dict[str, float], str | None]:
    """A user's sizes of Z, Y and X, as (scale, unit symbol): refused (InputError) when
    one is not a positive finite number or the unit is not a length unit we know, so
    that nothing invalid is written or recorded; other axes' entries are ignored."""
    scale = {a: v for a, v in (scale or {}).items() if a in ("Z", "Y", "X")}
    for axis, value in scale.items():
        if not is_size(value):
            raise InputError(
                f"the physical size of axis {axis} is {value!r}; a size must be a positive "
                f"finite number (leave {axis} out of scale= when its size is unknown)."
            )
    if scale and unit and _key(unit) not in NO_UNIT and micrometres(unit) is None:
        known = ", ".join(sorted({s for s, _ in UNITS.values()}))
        raise InputError(
            f"unit {str(unit)!r} is not a length unit napari-pix2pix knows ({known}); give "
            "one of these, or unit=None for sizes in pixels."
        )
    return {a: float(v) for a, v in scale.items()}, normalize_unit(unit) if scale else None


def valid_record(record) -> bool:
    """Whether a recorded training pixel size ({'Y': 0.65, 'X': 0.65, 'unit': 'µm'})
    can be compared with: every size positive and finite, in a known unit."""
    return (
        isinstance(record, dict)
        and micrometres(record.get("unit")) is not None
        and any(a in record for a in "ZYX")
        and all(is_size(record[a]) for a in "ZYX" if a in record)
    )
