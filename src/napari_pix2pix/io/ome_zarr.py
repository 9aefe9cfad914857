"""OME-Zarr (OME-NGFF 0.4 and 0.5) images in, and predictions out as OME-Zarr 0.5.

yaozarrs validates and writes the NGFF metadata: pydantic models of the spec and
nothing else (ome-zarr-py, ngff-zarr and iohub bring scikit-image, ITK-wasm or pin old
zarr/tifffile), so zarr-python, a dependency already, reads and writes the arrays. A
prediction is the resumable ZarrOutput with NGFF metadata: level 0 is written chunk by
chunk as tiles finish, and the pyramid's lower levels are made from it, chunk by chunk,
when it is complete (before the store is marked complete).

Axes, scale and units travel as every reader's do (ImageData.scale/unit, in a length
unit; a translation in ``meta``), so a prediction carries its input's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.axes import AxesLayout
from ..errors import ImageFileError
from .physical_sizes import check_sizes, in_unit, micrometres, read_sizes
from .provenance import ZARR_ATTR
from .zarr_output import ZarrOutput, chunk_shape, not_ours

INSTALL = 'pip install "napari-pix2pix[ome-zarr]"'
NGFF_ORDER = "TCZYX"  # the axes order NGFF requires: time, channel, space
PYRAMID_MIN_SIDE = 32  # no level whose smaller Y/X side is under this
PYRAMID_LEVELS = 6  # at most (level 0 included): 1/32 of the full resolution
# our unit symbols -> NGFF's (UDUNITS-2 names); sizes in other units are written in µm
NGFF_UNITS = {
    "km": "kilometer",
    "m": "meter",
    "dm": "decimeter",
    "cm": "centimeter",
    "mm": "millimeter",
    "µm": "micrometer",
    "nm": "nanometer",
    "Å": "angstrom",
    "pm": "picometer",
    "fm": "femtometer",
    "inch": "inch",
    "ft": "foot",
    "yd": "yard",
    "mi": "mile",
}


NGFF_KEYS = ("ome", "multiscales", "plate", "well", "bioformats2raw.layout")


def is_ome_group(attrs) -> bool:
    """Whether a zarr group's attributes hold NGFF metadata (0.5 under "ome", 0.4 and
    earlier at the top: an image, a plate, a well or a bioformats2raw collection)."""
    return any(key in attrs for key in NGFF_KEYS)


def ome_level(group, path: Path, level: int | None = None):
    """(zarr array, axes, scale, unit, meta) of one resolution level of an OME-Zarr image
    (level 0, the full resolution, by default), read lazily."""
    multiscale = _multiscale(group, path)
    count = len(multiscale.datasets)
    level = 0 if level is None else level
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < count:
        raise ImageFileError(
            f"{str(path)!r} has {count} resolution level(s), 0 (full resolution) to "
            f"{count - 1}; level={level!r} does not exist."
        )
    dataset = multiscale.datasets[level]
    try:
        array = group[dataset.path]
    except KeyError:
        raise ImageFileError(
            f"{str(path)!r} names the array {dataset.path!r} for level {level}, but it is "
            "missing; copy the store again."
        ) from None
    names = [axis.name for axis in multiscale.axes]
    axes = "".join(_letter(axis) for axis in multiscale.axes)
    if len(set(axes)) != len(axes) or "?" in axes or len(axes) != array.ndim:
        axes = ""  # axes we cannot name: guessed from the shape, like a plain array's
    scale = _transform(multiscale, dataset, "scale", len(names), 1.0)
    shift = _transform(multiscale, dataset, "translation", len(names), 0.0)
    sizes = {
        letter: (s, axis.unit)
        for letter, s, axis in zip(axes, scale, multiscale.axes)
        if letter in "ZYX" and (axis.unit or s != 1.0)  # no unit and 1: no size given
    }
    scale_read, unit = read_sizes(sizes, path, into=None)
    translation = {
        a: t * _factor(axis.unit, unit)
        for a, t, axis in zip(axes, shift, multiscale.axes)
        if a in scale_read and t
    }
    meta = {"translation": translation} if translation else None
    return array, axes, scale_read, unit, meta


def _multiscale(group, path: Path):
    try:
        import yaozarrs
    except ImportError:
        raise ImageFileError(
            f"{str(path)!r} is an OME-Zarr image; reading it needs the OME-Zarr extra: {INSTALL}."
        ) from None
    try:
        model = yaozarrs.validate_ome_object(dict(group.attrs))
    except Exception as exc:  # pydantic's ValidationError, or a ValueError: not NGFF
        raise ImageFileError(
            f"{str(path)!r} has OME-Zarr metadata that is not valid NGFF ({_problem(exc)}); "
            "write it again with the tool that made it, or fix that entry of its .zattrs "
            "(zarr.json for NGFF 0.5)."
        ) from exc
    image = getattr(model, "ome", model)  # 0.5 keeps it under "ome"
    multiscales = getattr(image, "multiscales", None)
    if not multiscales:
        raise ImageFileError(
            f"{str(path)!r} is an OME-Zarr {type(image).__name__.lower()}, a collection, "
            f"not one image: give the path of one image inside it ({str(path)}/...)."
        )
    return multiscales[0]


def _problem(exc: Exception) -> str:
    """The first problem of a pydantic ValidationError as a person reads it:
    'multiscales[0].datasets[0].coordinateTransformations[0].scale: List should have at
    least 2 items', not pydantic's dump of every branch of yaozarrs' union of models."""
    errors = exc.errors() if callable(getattr(exc, "errors", None)) else []
    if not errors:
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    # an image's own problem first (the union also tries plates, wells, labels ...)
    first = next((e for e in errors if "multiscales" in e["loc"]), errors[0])
    loc = list(first["loc"])
    loc = loc[loc.index("multiscales") :] if "multiscales" in loc else loc
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
        elif not (part[:1].isupper() or "[" in part):  # a model's name, not a key
            where += f".{part}" if where else part
    more = f"; {len(errors) - 1} more" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"


def _letter(axis) -> str:
    kind, name = (axis.type or "").lower(), axis.name.lower()
    if kind == "time" or name == "t":
        return "T"
    if kind == "channel" or name == "c":
        return "C"
    return name.upper() if name in ("z", "y", "x") else "?"


def _transform(multiscale, dataset, kind: str, n: int, neutral: float) -> list[float]:
    """A dataset's scale (or translation) per axis, composed with the multiscale's own."""
    values = [neutral] * n
    for owner in (dataset, multiscale):
        for t in getattr(owner, "coordinateTransformations", None) or ():
            given = getattr(t, kind, None)
            if getattr(t, "type", "") == kind and given is not None and len(given) == n:
                values = (
                    [v * g for v, g in zip(values, given)]
                    if kind == "scale"
                    else [v + g for v, g in zip(values, given)]
                )
    return values


def _factor(unit_from, unit_to) -> float:
    """The translation in the unit the sizes were read in."""
    a, b = micrometres(unit_from), micrometres(unit_to)
    return a / b if a and b else 1.0


def ngff_axes(axes: str) -> str:
    """Our axes in NGFF's order (time, channel, then space)."""
    return "".join(a for a in NGFF_ORDER if a in axes)


def pyramid_shapes(axes: str, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Level 0, then Y and X halved while the smaller side stays PYRAMID_MIN_SIDE."""
    shapes = [tuple(shape)]
    while len(shapes) < PYRAMID_LEVELS:
        half = tuple(s // 2 if a in "YX" else s for a, s in zip(axes, shapes[-1]))
        if min(half[axes.index(a)] for a in "YX") < PYRAMID_MIN_SIDE:
            break
        shapes.append(half)
    return shapes


def ngff_image(axes: str, levels: int, scale: dict, unit: str | None, meta: dict):
    """The NGFF 0.5 metadata of a prediction: its axes, each level's scale (Y and X
    doubling per level) and translation (level 0's, moved to the centre of each larger
    pixel), in the input's unit where NGFF names it (else in µm)."""
    from yaozarrs import v05

    scale, unit = check_sizes(scale, unit)
    translation = dict((meta or {}).get("translation") or {})
    if unit is not None and unit not in NGFF_UNITS:
        translation = in_unit(translation, unit, "µm")
        scale, unit = in_unit(scale, unit, "µm"), "µm"
    models = []
    for a in axes:
        if a == "T":
            models.append(v05.TimeAxis(name="t", type="time"))
        elif a == "C":
            models.append(v05.ChannelAxis(name="c", type="channel"))
        else:
            own = NGFF_UNITS.get(unit) if a in scale else None
            models.append(v05.SpaceAxis(name=a.lower(), type="space", unit=own))
    datasets = []
    for k in range(levels):
        factor = {a: 2**k if a in "YX" else 1 for a in axes}
        transforms = [
            v05.ScaleTransformation(scale=[float(scale.get(a, 1.0)) * factor[a] for a in axes])
        ]
        if translation:
            shifted = [
                translation.get(a, 0.0) + (factor[a] - 1) * scale.get(a, 1.0) / 2 for a in axes
            ]
            transforms.append(v05.TranslationTransformation(translation=shifted))
        datasets.append(v05.Dataset(path=str(k), coordinateTransformations=transforms))
    return v05.Image(multiscales=[v05.Multiscale(axes=models, datasets=datasets)])


class OmeZarrOutput(ZarrOutput):
    """A prediction as an OME-Zarr 0.5 image: the resumable zarr store (ZarrOutput) with
    its axes in NGFF's order, a scale (and translation) per level, units and a pyramid.
    Our record lives in the group's attributes beside "ome"."""

    def __init__(self, path: Path, layout: AxesLayout, *args, **kwargs) -> None:
        # (yaozarrs' presence is checked with the output's path: outputs.check_output)
        # the predictor numbers samples in the input's order; the store keeps NGFF's
        self.given = layout
        super().__init__(
            path, layout.with_channels(ngff_axes(layout.axes), layout.channels), *args, **kwargs
        )

    def _create(self, path: Path, layout: AxesLayout, scale, unit, meta: dict, info: dict):
        from yaozarrs.write.v05 import prepare_image

        shapes = pyramid_shapes(layout.axes, layout.shape)
        image = ngff_image(layout.axes, len(shapes), scale, unit, meta)
        _, arrays = prepare_image(
            path,
            image,
            [(s, np.float32) for s in shapes],
            extra_attributes={ZARR_ATTR: info},
            chunks=chunk_shape(layout),
            writer=_create_array,
        )
        return arrays["0"], _open_group(path, "r+").attrs

    def _reopen(self, path: Path, layout: AxesLayout):
        try:
            group = _open_group(path, "r+")
            return group["0"], group.attrs, dict(group.attrs.get(ZARR_ATTR, {}))
        except Exception as exc:  # not a zarr group of ours
            raise not_ours(path) from exc

    def write(self, n: int, rows: slice, block: np.ndarray) -> None:
        super().write(self._sample(n), rows, block)

    def _sample(self, n: int) -> int:
        """The input's sample ``n`` (T/Z in its order) as numbered in NGFF's order."""
        given, kept = self.given, self.layout
        if given.sample_axes == kept.sample_axes:
            return n
        where = dict(zip(given.sample_axes, np.unravel_index(n, given.sample_shape)))
        return int(np.ravel_multi_index([where[a] for a in kept.sample_axes], kept.sample_shape))

    def finish(self) -> None:
        self._fill_pyramid()
        super().finish()

    def _fill_pyramid(self) -> None:
        """Each level the 2 x 2 mean of the one above, read and written chunk by chunk."""
        import dask.array as da

        group = _open_group(self.path, "r+")
        halve = {i: 2 for i, a in enumerate(self.layout.axes) if a in "YX"}
        above = da.from_zarr(group["0"])
        for k in range(1, PYRAMID_LEVELS):
            if str(k) not in group:
                break
            level = group[str(k)]
            smaller = da.coarsen(np.mean, above, halve, trim_excess=True).astype(np.float32)
            da.store(smaller.rechunk(level.chunks), level, lock=False)
            above = da.from_zarr(level)


def _open_group(path: Path, mode: str):
    import zarr

    return zarr.open_group(str(path), mode=mode)


def _create_array(path, shape, dtype, chunks, *, shards, overwrite, compression, dimension_names):
    """yaozarrs' array maker for zarr-python, with NaN where nothing was written yet (an
    unfinished level reads as missing, not as zeros): our own for that one setting."""
    import zarr

    return zarr.create_array(
        str(path),
        shape=shape,
        chunks=chunks,
        shards=shards,
        dtype=dtype,
        fill_value=np.nan,
        dimension_names=dimension_names,
        zarr_format=3,
        overwrite=overwrite,
    )
