"""The live view: while a run trains, the part of the first training source the user
looks at is predicted by the model as it stands (after each validation, and when the
view moves) and shown over it, so progress is judged where it matters, not only on the
validation strip."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field

import numpy as np
from qtpy.QtCore import QTimer

from ..errors import Pix2PixError
from ..workflows.prediction import predict
from .layers import (
    contrast_limits,
    layer_array,
    layer_axes,
    result_layer_kwargs,
    show_in_layer,
    view_region,
)

VIEW_LAYER = "pix2pix live view"
VIEW_SIDE = 512  # the live view predicts at most this many pixels a side
VIEW_EVERY_S = 5.0  # a view that changed is predicted again at most this often
FOLLOW_DELAY_MS = 200


@dataclass
class View:
    """The part of an image the user is looking at: ``data[index]``, which starts at
    ``offsets`` (axis -> index)."""

    data: object
    axes: str
    index: tuple
    offsets: dict[str, int] = field(default_factory=dict)


@dataclass
class ViewPreview:
    """The model's prediction of ``view`` after ``step``, for the live-view layer."""

    view: View
    prediction: np.ndarray
    axes: str
    step: int


class ViewWatch:
    """The view the widget last saw (set in the GUI thread, read by the worker)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._view: View | None = None
        self.version = 0

    def set(self, view: View | None) -> None:
        with self._lock:
            self._view, self.version = view, self.version + 1

    def get(self) -> tuple[View | None, int]:
        with self._lock:
            return self._view, self.version


def predict_view(model, view: View, step: int) -> ViewPreview | None:
    """The model, as it stands, applied to the view, on the device it trains on (the
    generator goes back to training mode afterwards); None if it cannot be (a preview
    never stops a run: the images were checked when the run started)."""
    device = str(next(model.generator.parameters()).device)
    try:
        prediction, axes = predict(
            model, np.asarray(view.data[view.index]), view.axes, device=device, return_axes=True
        )
    except (Pix2PixError, RuntimeError, ValueError):
        return None
    return ViewPreview(view, prediction, axes, step)


class LiveView:
    """Follows the viewer's camera and slider between ``start`` and ``stop``;
    ``viewed()`` gives (layer, axes) of the image to follow, or None."""

    def __init__(self, viewer, viewed, parent) -> None:
        self.viewer, self.viewed = viewer, viewed
        self.watch = ViewWatch()
        # napari updates what a layer shows (corner_pixels) when the canvas next draws,
        # after the camera's events: the view is read a moment later
        self.timer = QTimer(parent)  # ends with the widget
        self.timer.setSingleShot(True)
        self.timer.setInterval(FOLLOW_DELAY_MS)
        self.timer.timeout.connect(self.follow)
        scene = getattr(viewer, "scene", viewer)  # napari 0.9 moved the camera there
        camera, dims = scene.camera.events, viewer.dims.events
        self.events = (camera.center, camera.zoom, dims.current_step)
        self.following = False

    def start(self) -> None:
        """Follow the view (while a run trains)."""
        if not self.following:
            for event in self.events:
                event.connect(self._moved)
        self.following = True
        self.follow()

    def stop(self) -> None:
        if self.following:
            for event in self.events:
                event.disconnect(self._moved)
        self.following = False
        with contextlib.suppress(RuntimeError):  # the widget (and timer) already gone
            self.timer.stop()

    def _moved(self, *_) -> None:
        try:
            self.timer.start()
        except RuntimeError:  # the window closed while a run trained: follow no more
            self.stop()

    def follow(self, *_) -> None:
        """Tell the worker which part of the image is in view."""
        try:
            viewed = self.viewed()
        except RuntimeError:  # the widget is gone
            self.stop()
            return
        if viewed is None or viewed[0] not in self.viewer.layers:
            self.watch.set(None)
            return
        layer, axes = viewed[0], viewed[1] or layer_axes(viewed[0])
        try:
            index, offsets = view_region(layer, axes, self.viewer.dims.point, VIEW_SIDE)
        except (ValueError, IndexError):  # axes that do not fit the layer: no live view
            self.watch.set(None)
            return
        self.watch.set(View(layer_array(layer), axes, index, offsets))

    def show(self, preview: ViewPreview, layer) -> None:
        """The live-view layer: the view's prediction (first channel), placed on
        ``layer`` where the view lies."""
        view, data, axes = preview.view, preview.prediction, preview.axes
        if "C" in axes:
            data, axes = np.take(data, 0, axis=axes.index("C")), axes.replace("C", "")
        if layer is None:
            return
        kwargs = result_layer_kwargs(layer, view.axes, axes, view.offsets)
        show_in_layer(
            self.viewer,
            VIEW_LAYER,
            data,
            contrast_limits(data),
            kwargs,
            colormap="magenta",
            blending="additive",
        )
