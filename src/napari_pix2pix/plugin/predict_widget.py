"""The Predict dock widget: a model file, an Image layer, the prediction options and run
controls. It runs the core ``predict`` in a worker thread with progress and Cancel and
adds the result as a new layer with the input's scale, translate and axis labels."""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import Container, Label, LineEdit, PushButton
from napari.qt.threading import FunctionWorker, create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QApplication, QFileDialog, QWidget

from ..engine.inference import AUTO_BATCH
from ..errors import Pix2PixError
from ..io.model_file import load_model
from ..options import user_path
from ..run_options import PredictOptions
from ..workflows.error_map import UNCALIBRATED
from ..workflows.evaluation import Evaluation, check_target, evaluate, score
from ..workflows.prediction import predict
from . import PLUGIN, PREDICT
from .docking import join_later
from .evaluate_section import EvaluateSection
from .layer_picker import LayerPicker, Message
from .layers import (
    contrast_limits,
    current_plane,
    layer_array,
    layer_axes,
    layer_image,
    result_layer_kwargs,
)
from .made_layers import Made, MadeLayers, same_options
from .options_form import OptionsForm
from .run_controls import REFRESH_MS, RunControls
from .run_warnings import RunWarnings, Sink, warnings_to
from .scrolling import fit_width, scrolling_layout, wrap
from .settings import WidgetSettings

SLICE_TIP = "only the plane the viewer shows: a quick look before a whole stack"
SLICE_3D_TIP = "a 3D model predicts whole volumes: use Predict"


def lazy_output_path(name: str) -> Path:
    """Where predictions of lazy layers are streamed to (kept: they are the result)."""
    folder = Path.home() / "napari-pix2pix" / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return folder / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}.zarr"


class PredictionCancelled(Pix2PixError):
    """Raised inside the worker when the user pressed Cancel."""


class PredictionWorker(FunctionWorker):
    """napari quits every worker when its window closes; a function worker would go on
    to the end, so quitting sets the Cancel flag (the last argument), which the
    prediction checks after every batch of tiles."""

    def __init__(self, func, *args, **kwargs) -> None:
        super().__init__(func, *args, **kwargs)
        self.cancel_event: threading.Event = args[-1]
        self.sink: Sink | None = None

    def quit(self) -> None:
        self.cancel_event.set()

    def work(self):
        with warnings_to(self.sink):  # the run's warnings, to the widget
            return super().work()


class ModelChooser(Container):
    """A model path with a browse button, what the loaded model is, and its export."""

    def __init__(self) -> None:
        self.path = LineEdit(tooltip="model.safetensors or model folder")
        self.path.native.setPlaceholderText("model.safetensors or model folder")
        self.browse = PushButton(text="…")
        self.browse.native.setMaximumWidth(30)
        row = Container(
            widgets=[self.path, self.browse], layout="horizontal", labels=False, label="Model"
        )
        row.margins = (0, 0, 0, 0)
        self.info = Label(value="No model loaded.")
        wrap(self.info.native)
        self.export = PushButton(
            text="Export to bioimage.io…",
            tooltip=(
                "Write the loaded model as a bioimage.io model zip "
                '(needs pip install "napari-pix2pix[bioimageio]")'
            ),
        )
        super().__init__(widgets=[row, self.info, self.export])
        self.margins = (0, 0, 0, 0)


def error_map_name(model) -> str:
    """What the confidence layer is called: the expected absolute error in the target's
    units where the model has an error calibration, else the raw spread of the 8
    flips/rotations (workflows/error_map.py; predict warns that it is uncalibrated)."""
    return "expected error" if model is not None and model.error_calibration else "spread"


class PredictWidget(QWidget):
    """Apply a trained pix2pix model to an Image layer, tile by tile."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.model = None
        self.worker = None
        self.cancel_requested = threading.Event()
        self.state = {"done": 0, "total": 0}
        self.settings = WidgetSettings("predict")
        self.made = MadeLayers(self.viewer)  # what this widget predicted, per source layer
        self._init_ui()
        self.form.set_values(self.settings.load())
        self.image.reset_choices()
        self._set_running(False)
        join_later(self)  # a tab beside Train, if it is docked already

    # ------------------------------------------------------------------ parts
    def _init_ui(self) -> None:
        self.chooser = ModelChooser()
        self.chooser.browse.changed.connect(self._browse)
        self.chooser.export.changed.connect(self._export_dialog)
        self.chooser.path.native.editingFinished.connect(lambda: self.load(self.chooser.path.value))
        self.image = LayerPicker(self.viewer, "Image / axes")
        layers = self.viewer.layers.events
        for event in (layers.inserted, layers.removed, layers.reordered, layers.renamed):
            event.connect(self.image.reset_choices)
        self.form = OptionsForm(PredictOptions)
        self.form["batch_size"].suggest(AUTO_BATCH)  # what auto means on a CPU
        self.controls = RunControls("Predict", "Predict this slice", "Cancel")
        self.controls["Predict"].clicked.connect(lambda: self.run())
        self.controls["Predict this slice"].clicked.connect(lambda: self.run(this_slice=True))
        self.controls["Predict this slice"].setToolTip(SLICE_TIP)
        self.controls["Cancel"].clicked.connect(self.cancel)
        self.warning = Message()  # the run's warnings, whole (a notification cuts them)
        self.run_warnings = RunWarnings(self.warning, self)
        self.target_note: str | None = None  # what Evaluate said of its target
        self._auto_target = None  # the target layer _default_target chose, if any
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS // 2)
        self.timer.timeout.connect(
            lambda: self.controls.progress(self.state["done"], self.state["total"])
        )
        self.evaluation = EvaluateSection(self.viewer)
        self.evaluation.button.changed.connect(lambda *_: self.evaluate())
        for event in (layers.inserted, layers.removed, layers.reordered, layers.renamed):
            event.connect(self.evaluation.target.reset_choices)
            event.connect(self._default_target)
        self.image.layer.changed.connect(self._default_target)
        layout = scrolling_layout(self)
        image_row = Container(widgets=[self.image])  # shows the picker's label
        image_row.margins = (0, 0, 0, 0)
        parts = (self.chooser.native, image_row.native, self.form, self.controls)
        parts = (*parts, self.warning.native)
        for part in (*parts, self.evaluation.native):
            layout.addWidget(part)
        layout.addStretch()
        fit_width(self)

    def reset_choices(self, *_) -> None:
        self.image.reset_choices()

    def _default_target(self, *_) -> None:
        """The target is never the image itself by default: while it is (the picker's
        first layer), or while it is this method's own pick, take another layer, one
        named like a target first, none made here. A target the user chose stays."""
        image, picker = self.image.value, self.evaluation.target
        if image is None or picker.value not in (image, self._auto_target):
            return
        others = [
            layer
            for layer in picker.choices()
            if layer is not image and "[pix2pix" not in layer.name and "pix2pix " not in layer.name
        ]
        named = [x for x in others if any(w in x.name.lower() for w in ("target", "truth", "gt"))]
        if named or others:
            self._auto_target = picker.value = (named or others)[0]

    def select_layer(self, name: str) -> None:
        self.image.value = name

    # ------------------------------------------------------------------ model
    def _browse(self, *_) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open pix2pix model", "", "pix2pix model (*.safetensors);;All files (*)"
        )
        if path:
            self.chooser.path.value = path
            self.load(path)

    def load(self, path) -> None:
        """Load a model file and show what it is."""
        if not str(path):
            return
        try:
            self.model = load_model(user_path(str(path)))
        except Pix2PixError as exc:
            self.model = None
            self.chooser.info.value = f"<span style='color:#e05050'>{exc}</span>"
            self._set_running(False)
            return
        self.chooser.path.value = str(path)
        self.chooser.info.value = "\n".join(self.model.card())
        self.form["tile_size"].suggest(int(self.model.config.patch_size[-1]))
        self._set_running(False)

    def _export_dialog(self, *_) -> None:
        if self.model is None:
            return
        stem = Path(self.chooser.path.value).stem or "model"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export to bioimage.io", f"{stem}.bioimageio.zip", "bioimage.io model (*.zip)"
        )
        if path:
            self.export_model(path if path.lower().endswith(".zip") else f"{path}.zip")

    def export_model(self, path) -> Path | None:
        """Export the loaded model as a bioimage.io zip; report success or failure."""
        if self.model is None:
            show_error("Load a model first.")
            return None
        self.controls.say(f"Exporting to {path}…")
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            result = self.model.export_bioimageio(path)
        except Exception as exc:  # shown to the user, not swallowed silently
            kind = "" if isinstance(exc, Pix2PixError) else f" ({type(exc).__name__})"
            show_error(f"Export failed{kind}: {exc}")
            self.controls.say(f"Error: {exc}")
            return None
        finally:
            QApplication.restoreOverrideCursor()
        show_info(f"Exported the model to {result} (bioimage.io).")
        self.controls.say(f"Exported {result}.")
        return result

    # ------------------------------------------------------------------ running
    def run(self, this_slice: bool = False) -> None:
        """Predict the chosen layer, or (``this_slice``) only the plane the viewer
        shows, in seconds, placed where it belongs."""
        layer = self.image.value
        if self.worker is not None or self.model is None or layer is None:
            if self.model is None:
                show_error("Load a model first.")
            return
        self.settings.save(self.form.values())
        axes = self.image.axes_text() or layer_axes(layer)
        options = {**self.form.values(), "axes": axes}
        data, offsets = layer_array(layer), None
        if this_slice:
            if self.model.config.spatial_dims == 3:
                show_error("This model is 3D: it predicts volumes, not a slice.")
                return
            index, offsets = current_plane(layer, axes, self.viewer.dims.point)
            data = np.asarray(data[index])
        if not isinstance(data, np.ndarray):
            if options["uncertainty"]:
                show_error(
                    f"{layer.name} is a lazy (on-disk) layer; the confidence map is "
                    "computed in memory. Untick Confidence map to stream the prediction."
                )
                return
            # a lazy (dask/zarr) layer may not fit in memory: stream into a zarr store
            # and show it lazily
            options["out"] = lazy_output_path(layer.name)
        image = layer_image(layer, axes, data)  # with its pixel size, checked against the model's
        made = Made(layer, layer_array(layer), self.model, same_options(options), "")
        if offsets is None and self._already_shown(made, options["uncertainty"]):
            return
        self._start(
            partial(self._predict, image, options),
            lambda result, lyr=layer: self._add_result(lyr, *result, offsets=offsets, made=made),
            f"Predicting {layer.name}…",
        )

    def _already_shown(self, made: Made, spread: bool) -> bool:
        """The viewer already shows this prediction (same data, model and options, the
        confidence map too if asked): it is selected, not added again as a "[1]" copy."""
        old = self.made.of(made.source)
        if old is None or not old.same_as(made, self.viewer):
            return False
        if spread and old.alive(self.viewer, "spread") is None:
            return False
        shown = old.layers["prediction"][0][0]
        self.viewer.layers.selection.active = shown
        self.controls.say(
            f"{shown.name} already shows this prediction (same image, model and options); "
            "delete it to predict again."
        )
        return True

    def _start(self, job, on_result, message: str) -> None:
        """Run ``job(progress=...)`` in a worker, with progress, Cancel and errors shown."""
        self.cancel_requested.clear()
        self.state.update(done=0, total=0)
        self.worker = create_worker(
            self._job,
            job,
            self.cancel_requested,
            _start_thread=False,
            _ignore_errors=True,
            _worker_class=PredictionWorker,
        )
        self.worker.returned.connect(on_result)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self.worker.sink = self._hear
        self.run_warnings.clear()
        self.controls.progress(0, 1)
        self.controls.say(message)
        self._set_running(True)
        self.timer.start()
        self.worker.start()

    def _hear(self, text: str) -> None:
        """A warning of the run, shown; not predict's note that the model has no error
        calibration: its layer is named "spread", not "expected error", and its card says
        so, where a warning line would repeat it at every prediction and evaluation."""
        if text != UNCALIBRATED:
            self.run_warnings.hear(text)

    def evaluate(self) -> None:
        """Score the prediction of the image against the held-out target layer: the
        target is checked first, then the prediction this widget already made of the
        image (same data, model and options) is scored, else the image is predicted.
        Shows the prediction, its difference to the target and the confidence layer."""
        layer, target = self.image.value, self.evaluation.target.value
        if self.worker is not None:
            return
        self.evaluation.clear()
        if self.model is None or layer is None or target is None:
            show_error("Load a model and choose an image and its held-out target.")
            return
        options = same_options(self.form.values())
        axes = self.image.axes_text() or layer_axes(layer)
        truth = np.asarray(layer_array(target))
        # with its pixel size: a model trained at another one is said to be
        source = layer_image(layer, axes, np.asarray(layer_array(layer)))
        try:  # before any prediction: the target's shape and channels, against the source's
            note = check_target(self.model, source, truth, axes, self.evaluation.target.axes_text())
        except Pix2PixError as exc:
            show_error(f"Cannot evaluate: {exc}")
            self.controls.say(f"Error: {exc}")
            return
        # the target holding the image's own data is warned about by check_target
        if self.made.made_by_us(target):
            note = (
                f"the target {target.name} is a layer made by pix2pix, not a ground truth: "
                "choose the held-out target that belongs to this image."
            )
        made = Made(layer, layer_array(layer), self.model, {**options, "axes": axes}, "")
        old = self.made.of(layer)
        reused = old is not None and old.same_as(made, self.viewer)
        if reused:
            channel_axis = old.axes.index("C") if "C" in old.axes else None
            pred = old.array(self.viewer, "prediction", channel_axis)
            spread = old.array(self.viewer, "spread", channel_axis)
            self._start(
                partial(self._score, pred, truth, old.axes, spread),
                lambda result, lyr=layer: self._show_evaluation(lyr, result, old, reused=True),
                f"Scoring {old.layers['prediction'][0][0].name} on {target.name}…",
            )
            for said in old.warnings:  # what its prediction said still holds
                self.run_warnings.show(said)
        else:
            self._start(
                partial(evaluate, self.model, source, truth, axes=axes, **options),
                lambda result, lyr=layer: self._show_evaluation(lyr, result, made),
                f"Evaluating on {target.name}…",
            )
        self.target_note = note
        if note:  # after the start, which clears the last run's warnings
            self.run_warnings.show(note)

    def _show_evaluation(self, layer, result: Evaluation, made: Made, reused=False) -> None:
        kwargs = result_layer_kwargs(
            layer, self.image.axes_text() or layer_axes(layer), result.axes
        )
        old = self.made.of(layer)
        made.axes = result.axes
        if old is not None and old is not made:
            made.layers = dict(old.layers)  # a new prediction goes into the old layers
        if not reused:
            made.layers["prediction"] = self._put(
                made, "prediction", result.prediction, f"{layer.name} [pix2pix]", kwargs
            )
        if result.spread is not None:
            made.layers["spread"] = self._put(
                made,
                "spread",
                result.spread,
                f"{layer.name} [pix2pix {error_map_name(self.model)}]",
                kwargs,
                colormap="magma",
            )
        worst = float(np.max(np.abs(result.difference))) or 1.0
        made.layers["difference"] = self._put(
            made,
            "difference",
            result.difference,
            f"{layer.name} [pix2pix - target]",
            kwargs,
            colormap="PiYG",
            contrast_limits=(-worst, worst),
        )
        self.made.keep(made, [w for w in self.run_warnings.seen if w != self.target_note])
        self.evaluation.show(result.metrics)
        said = "Scored the existing prediction: " if reused else "Evaluated: "
        self.controls.say(said + self.evaluation.scores.value)

    def _job(self, job, cancel: threading.Event):
        """In the worker thread: ``job`` with a progress callback that also cancels."""

        def report(done: int, total: int) -> None:
            self.state.update(done=done, total=total)
            if cancel.is_set():
                raise PredictionCancelled("prediction cancelled")

        return job(progress=report)

    def _score(self, pred, truth, axes: str, spread, progress):
        """An existing prediction scored (one step of progress: it takes a moment)."""
        progress(0, 1)
        result = score(self.model, pred, truth, axes, spread)
        progress(1, 1)
        return result

    def _predict(self, data, options: dict, progress):
        """(prediction, output axes, spread or None, input check or None)."""
        *arrays, axes, check = predict(
            self.model,
            data,
            progress=progress,
            return_axes=True,
            return_input_check=True,
            **options,
        )
        return arrays[0], axes, (arrays[1] if options["uncertainty"] else None), check

    def cancel(self) -> None:
        self.cancel_requested.set()

    def _add_result(
        self, layer, result, out_axes: str, spread=None, check=None, offsets=None, *, made: Made
    ) -> None:
        if isinstance(result, Path):
            import dask.array as da

            result = da.from_zarr(str(result))
        axes = self.image.axes_text() or layer_axes(layer)
        kwargs = result_layer_kwargs(layer, axes, out_axes, offsets)
        name = f"{layer.name} [pix2pix]"
        if offsets is not None:  # one plane: placed at its position, replaced next time
            name = f"{layer.name} [pix2pix slice]"
            for stale in [x for x in self.viewer.layers if x.name.startswith(name)]:
                self.viewer.layers.remove(stale)
        old = self.made.of(layer)
        if old is not None and offsets is None and old.same_as(made, self.viewer):
            made.layers = dict(old.layers)  # the same prediction, now with its spread
            added = self._put(made, "prediction", result, name, kwargs)
        else:
            added = self._add_layer(result, name, kwargs)
        spread_added = None
        if spread is not None:
            spread_name = f"{layer.name} [pix2pix {error_map_name(self.model)}]"
            spread_added = self._put(made, "spread", spread, spread_name, kwargs, colormap="magma")
        if offsets is None and isinstance(result, np.ndarray):
            # a whole layer's prediction in memory: Evaluate scores it, not predicts again
            made.axes = out_axes
            made.layers = {"prediction": added}
            if spread_added is not None:
                made.layers["spread"] = spread_added
            self.made.keep(made, [w for w in self.run_warnings.seen if w != self.target_note])
        self.controls.say(
            f"Added {name} {tuple(result.shape)}"
            + (f" and its {error_map_name(self.model)}" if spread is not None else "")
            + input_check_text(check)
        )

    def _add_layer(self, data, name: str, kwargs: dict, **extra) -> list:
        """New layers (one per channel with a channel axis): [(layer, its data)]."""
        kwargs = {**kwargs, **extra}
        if "channel_axis" in kwargs:
            kwargs["name"] = [f"{name} c{i}" for i in range(data.shape[kwargs["channel_axis"]])]
        else:
            kwargs["name"] = name
            kwargs.setdefault("contrast_limits", contrast_limits(data))
        added = self.viewer.add_image(data, **kwargs)
        return [(lyr, lyr.data) for lyr in (added if isinstance(added, list) else [added])]

    def _put(self, made: Made, role: str, data, name: str, kwargs: dict, **extra) -> list:
        """``data`` into the layers ``made`` has for ``role`` (their data, contrast,
        scale and translate replaced; names, order and colormaps kept), or into new
        layers where it has none, they left the viewer or no longer fit."""
        old = made.alive(self.viewer, role)
        axis = kwargs.get("channel_axis")
        parts = [data] if axis is None else list(np.moveaxis(data, axis, 0))
        fits = old is not None and len(old) == len(parts)
        if not fits or any(x.ndim != p.ndim for x, p in zip(old, parts)):
            for lyr in old or ():
                self.viewer.layers.remove(lyr)
            return self._add_layer(data, name, kwargs, **extra)
        for lyr, part in zip(old, parts):
            lyr.data = part
            lyr.scale, lyr.translate = kwargs["scale"], kwargs["translate"]
            lyr.contrast_limits = extra.get("contrast_limits") or contrast_limits(part)
        return [(lyr, lyr.data) for lyr in old]

    def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, PredictionCancelled):
            show_info("Prediction cancelled; no layer was added.")
            self.controls.say("Cancelled.")
        else:
            kind = "" if isinstance(exc, Pix2PixError) else f" ({type(exc).__name__})"
            show_error(f"Prediction failed{kind}: {exc}")
            self.controls.say(f"Error: {exc}")

    def _on_finished(self) -> None:
        self.timer.stop()
        self.controls.progress(self.state["done"], self.state["total"])
        self.worker = None
        self._set_running(False)

    def closeEvent(self, event) -> None:  # Qt's name
        self.cancel_requested.set()
        super().closeEvent(event)

    def _set_running(self, running: bool) -> None:
        self.controls["Predict"].setEnabled(not running and self.model is not None)
        volumes = self.model is not None and self.model.config.spatial_dims == 3
        plane = self.controls["Predict this slice"]
        plane.setEnabled(not running and self.model is not None and not volumes)
        plane.setToolTip(SLICE_3D_TIP if volumes else SLICE_TIP)
        self.controls["Cancel"].setEnabled(running)
        self.chooser.export.enabled = not running and self.model is not None


def input_check_text(check) -> str:
    """The status line's end: the input's score against the model's training inputs
    (its warning, above the threshold, is in the warning line). Nothing for a model
    without an input profile: its card says so, once."""
    if check is None:
        return "."
    where = f" (highest: {check.where()})" if check.where() else ""
    if check.above:
        return (
            f". Input score {check.score:.1f}{where}, above {check.threshold:g}: "
            "the image differs from the training data (see the warning)."
        )
    return (
        f". Input score {check.score:.1f}{where}: like the training data (a warning comes "
        f"above {check.threshold:g})."
    )


def predict_selected_layer(viewer: napari.viewer.Viewer) -> None:
    """Layers > Filter command: open the Predict widget on the selected layer (napari
    0.9 does not open the layer list's context menu to plugins). napari injects the
    viewer from the type annotation."""
    layer = viewer.layers.selection.active
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, PREDICT)
    if layer is not None:
        widget.select_layer(layer.name)
