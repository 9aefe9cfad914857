"""Mapping napari layers to the core's (array, axes) and results back to layers with
the input's scale, translate and axis labels. Shared by the two dock widgets."""

from __future__ import annotations

import contextlib
from functools import partial

import numpy as np
from qtpy.QtCore import QTimer

from ..engine.axes import AXES_LETTERS, guess_axes
from ..io.images import ImageData
from ..io.physical_sizes import micrometres, normalize_unit


def layer_array(layer):
    """The layer's full-resolution data, left lazy when it is a dask/zarr array."""
    data = layer.data
    return data[0] if getattr(layer, "multiscale", False) else data


def layer_image(layer, axes: str, data=None) -> ImageData:
    """The layer as the core takes an image: its data (or ``data``, a part of it), axes
    and physical pixel size, so that a model records the scale it was trained at and
    Predict can say when an image's differs."""
    shown = [a for a in axes if not (getattr(layer, "rgb", False) and a == "C")]
    units = [str(u) for u in getattr(layer, "units", ())]
    spatial = [i for i, a in enumerate(shown) if a in "ZYX" and i < len(units)]
    unit = next((units[i] for i in spatial if shown[i] in "YX"), None)
    # a flipped axis (negative scale) or a unit that is no length carries no size
    scale = {shown[i]: float(layer.scale[i]) for i in spatial if units[i] == unit}
    scale = {a: s for a, s in scale.items() if s > 0} if micrometres(unit) else {}
    data = layer_array(layer) if data is None else data
    return ImageData(data, axes, scale, normalize_unit(unit) if scale else None)


def layer_axes(layer) -> str:
    """Axes letters for a layer: its axis labels when they are letters we know (our
    reader sets them), else the usual order for its dimensionality; RGB(A) adds C."""
    ndim = layer.ndim
    labels = [str(lbl).upper() for lbl in getattr(layer, "axis_labels", ())]
    if (
        len(labels) == ndim
        and all(len(lbl) == 1 and lbl in AXES_LETTERS for lbl in labels)
        and len(set(labels)) == ndim
    ):
        axes = "".join(labels)
    else:
        axes = guess_axes(ndim)
    if getattr(layer, "rgb", False):
        axes += "C"
    return axes


def result_layer_kwargs(layer, in_axes: str, out_axes: str, offsets=None) -> dict:
    """scale/translate/axis_labels (and channel_axis) for a prediction of ``layer``, or
    of the part of it that starts at ``offsets`` (axis -> index)."""
    dims = [a for a in in_axes if not (getattr(layer, "rgb", False) and a == "C")]
    geometry = {a: (float(layer.scale[i]), float(layer.translate[i])) for i, a in enumerate(dims)}
    spatial = [a for a in out_axes if a != "C"]
    kwargs = {
        "scale": [geometry.get(a, (1.0, 0.0))[0] for a in spatial],
        "translate": [geometry.get(a, (1.0, 0.0))[1] for a in spatial],
        "axis_labels": spatial,
    }
    units = getattr(layer, "units", None)
    if units is not None and len(units) == len(dims):
        kwargs["units"] = [str(units[dims.index(a)]) if a in dims else "pixel" for a in spatial]
    if "C" in out_axes:
        kwargs["channel_axis"] = out_axes.index("C")
    for a, i in (offsets or {}).items():
        if a in spatial:
            kwargs["translate"][spatial.index(a)] += i * kwargs["scale"][spatial.index(a)]
    return kwargs


def contrast_limits(data) -> tuple[float, float]:
    """0.5-99.5 % percentiles of (a subsample of) the data, never a zero range. Lazy
    data is sampled at a few planes only, so it is not read whole."""
    if not isinstance(data, np.ndarray) and data.ndim > 2:
        data = data[tuple(slice(None, None, max(1, n // 8)) for n in data.shape[:-2])]
    sample = np.asarray(data).ravel()
    sample = sample[:: max(1, sample.size // 2_000_000)]
    lo, hi = (float(v) for v in np.percentile(sample, [0.5, 99.5]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def current_plane(layer, axes: str, world_point) -> tuple[tuple, dict[str, int]]:
    """Where the viewer stands in ``layer``: an index that keeps its Y, X (and C) axes
    whole and every other axis at the viewer's position as a length-1 slice, and those
    positions (axis -> index) to place a prediction of that plane."""
    shown = [a for a in axes if not (getattr(layer, "rgb", False) and a == "C")]
    point = layer.world_to_data(tuple(world_point)[-len(shown) :])
    data_shape = layer_array(layer).shape
    index, offsets = [], {}
    for a, n in zip(axes, data_shape):
        if a in "YXC":
            index.append(slice(None))
        else:
            i = int(min(max(round(float(point[shown.index(a)])), 0), n - 1))
            index.append(slice(i, i + 1))
            offsets[a] = i
    return tuple(index), offsets


def view_region(layer, axes: str, world_point, side: int, least: int = 64):
    """Like ``current_plane``, with Y and X cut to what the canvas shows of the layer
    (napari's ``corner_pixels``; all of it before the first draw): at most ``side`` and
    at least ``least`` pixels a side, around the centre of the view."""
    index, offsets = current_plane(layer, axes, world_point)
    index = list(index)
    shown = [a for a in axes if not (getattr(layer, "rgb", False) and a == "C")]
    corners = np.asarray(layer.corner_pixels)
    shape = layer_array(layer).shape
    for a in "YX":
        n, k = shape[axes.index(a)], shown.index(a)
        lo, hi = (int(corners[0, k]), int(corners[1, k]) + 1) if corners.size else (0, n)
        if hi - lo <= 1:  # not drawn yet
            lo, hi = 0, n
        width = min(n, max(least, min(side, hi - lo)))
        start = min(max(0, (lo + hi - width) // 2), n - width)
        index[axes.index(a)] = slice(start, start + width)
        offsets[a] = start
    return tuple(index), offsets


def show_in_layer(viewer, name: str, data: np.ndarray, limits, placement: dict, **new) -> None:
    """Show ``data`` in the layer ``name``, made with ``placement`` (result_layer_kwargs)
    and ``new`` (colormap…) the first time, else updated in place.

    Why in place: a run refreshes its preview and live-view layers after every
    validation, and napari's ``layer.data = …`` and each ``scale``/``translate`` set
    re-lay out the viewer's dims and re-slice every layer (50-300 ms of the event loop
    each on a CPU: gaps a user feels, and CPU taken from training). Same-shaped data is
    copied into the layer's own array with one refresh; what did not change is not set."""
    layer = viewer.layers[name] if name in viewer.layers else None
    if layer is not None and layer.ndim != data.ndim:  # another source's since
        viewer.layers.remove(layer)
        layer = None
    if layer is None:  # a copy: the layer's array is written into later
        layer = viewer.add_image(
            np.array(data), name=name, contrast_limits=limits, visible=False, **placement, **new
        )
        # drawn from the next round of the event loop: making a layer (its controls) and
        # drawing it first (its texture and shaders) are each 100-200 ms without a GPU,
        # and back to back they froze the viewer for 300-500 ms
        QTimer.singleShot(0, partial(_show, layer))
        return
    for key in ("scale", "translate", "units", "axis_labels"):
        if key in placement and not _same(getattr(layer, key), placement[key]):
            setattr(layer, key, placement[key])
    if not np.allclose(layer.contrast_limits, limits):
        layer.contrast_limits = limits
    own = layer.data
    if isinstance(own, np.ndarray) and own.shape == data.shape and own.dtype == data.dtype:
        own[...] = data
        layer.refresh(extent=False, highlight=False)
    else:
        layer.data = np.array(data)


def _show(layer) -> None:
    with contextlib.suppress(RuntimeError):  # the viewer closed meanwhile
        layer.visible = True


def _same(current, wanted) -> bool:
    current, wanted = list(current), list(wanted)
    if len(current) != len(wanted):
        return False
    if all(isinstance(v, str) for v in wanted):
        return [str(c) for c in current] == wanted
    return np.allclose(np.asarray(current, float), np.asarray(wanted, float))
