"""The training preview layer: after each validation, the model's prediction of a crop of
the held-out part, laid over the source image it was cut from, with that image's pixel
size, units and position, so that it lines up with the data instead of sitting at one
pixel per unit in a corner of the canvas."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QTimer

from .layers import layer_array, layer_axes, result_layer_kwargs, show_in_layer
from .pair_list import LAYERS

PREVIEW_LAYER = "pix2pix preview"


def crop_origin(crop: np.ndarray, image: np.ndarray) -> tuple[int, ...] | None:
    """Where the 2D ``crop`` lies in ``image`` (Y, X last, any axes before them): the
    index of its first pixel, or None unless it lies there exactly once.

    The core sends the crop's source pixels with the preview, not where it cut them
    (that depends on how the validation part was split off: a strip of X, slices of a
    stack, another pair); finding them in the image keeps that knowledge in the core.
    A flat crop, found in many places, is not placed."""
    image = np.asarray(image).astype(np.float32, copy=False)  # as the core sends it
    h, w = crop.shape
    if image.ndim < 2 or image.shape[-2] < h or image.shape[-1] < w:
        return None
    starts = image[..., : image.shape[-2] - h + 1, : image.shape[-1] - w + 1]
    found = np.argwhere(starts == crop[0, 0])
    for dy, dx in ((h - 1, w - 1), (h // 2, w // 2), (0, w - 1), (h - 1, 0)):
        at = (*found.T[:-2], found[:, -2] + dy, found[:, -1] + dx)
        found = found[image[at] == crop[dy, dx]]  # cheap pixels first: few full checks
    exact = [
        tuple(int(i) for i in f)
        for f in found
        if np.array_equal(image[(*f[:-2], slice(f[-2], f[-2] + h), slice(f[-1], f[-1] + w))], crop)
    ]
    return exact[0] if len(exact) == 1 else None


def preview_placement(crop_source: np.ndarray, sources) -> tuple[dict, int]:
    """Layer keyword arguments (scale, translate, units, axis labels) that put a preview
    of ``crop_source`` where it lies in one of ``sources`` ((layer, axes) pairs; lazy
    layers are not searched), and the number of axes the preview needs for them. Not
    found: at the first source's origin (its pixel size all the same); no source (the
    pairs are folders): ({}, 2)."""
    placed = []
    for layer, axes in sources:
        dims = axes.replace("C", "")
        if not dims.endswith("YX"):
            continue
        data = layer_array(layer)
        if "C" in axes and isinstance(data, np.ndarray):  # the core sends channel 0
            data = np.take(data, 0, axis=axes.index("C"))
        origin = crop_origin(crop_source, data) if isinstance(data, np.ndarray) else None
        placed.append((layer, axes, dims, dict(zip(dims, origin or ()))))
        if origin is not None:
            placed.insert(0, placed.pop())
            break
    if not placed:
        return {}, 2
    layer, axes, dims, offsets = placed[0]
    return result_layer_kwargs(layer, axes, dims, offsets), len(dims)


def preview_sources(training, validation) -> list:
    """(layer, axes) of the source layers a validation preview is cut from: the
    validation pairs' (a ``PairsChoice``) when chosen as layers, else the training
    pairs'."""
    chosen = validation if validation.mode.value == LAYERS else training
    pickers = [p.source for p in chosen.pairs] if chosen.mode.value == LAYERS else []
    return [(p.value, p.axes_text() or layer_axes(p.value)) for p in pickers if p.value]


def show_preview(viewer, event, sources=()) -> None:
    """The preview layer shows the validation ``event``'s preview, with the contrast of
    its target, placed on ``sources`` (``preview_placement``); made or updated in place,
    so the user's view of it stays."""
    target = event.preview_target
    limits = (float(np.min(target)), float(np.max(target)))
    if limits[1] <= limits[0]:
        limits = (limits[0], limits[0] + 1)
    kwargs, ndim = preview_placement(event.preview_source, sources)
    data = event.preview.reshape((1,) * (ndim - 2) + event.preview.shape)
    show_in_layer(viewer, PREVIEW_LAYER, data, limits, kwargs)


class HeldPreview:
    """A validation's preview waits up to WAIT_MS for the live view's prediction that
    follows it (plugin/live_view.py), so that both reach napari's canvas in one repaint:
    each repaint of the window costs 10-60 ms of the GUI thread without a GPU, and a run
    repaints twice per validation otherwise. ``sources()``: preview_sources' layers."""

    WAIT_MS = 300

    def __init__(self, viewer, sources, parent) -> None:
        self.viewer, self.sources = viewer, sources
        self.event = None
        self.timer = QTimer(parent)
        self.timer.setSingleShot(True)
        self.timer.setInterval(self.WAIT_MS)
        self.timer.timeout.connect(self.show)

    def hold(self, event) -> None:
        self.show()  # one still held (no live view came): shown first
        self.event = event
        self.timer.start()

    def show(self) -> None:
        """The held preview, if any, now."""
        self.timer.stop()
        event, self.event = self.event, None
        if event is not None:
            show_preview(self.viewer, event, self.sources())
