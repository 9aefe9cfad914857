"""The Predict dock widget: choose a model file and an Image layer, run the core
``predict`` in a worker thread with progress and Cancel, and add the result as a new
layer with the input's scale, translate and axis labels."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import napari
import numpy as np
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (QApplication, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                            QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QSpinBox,
                            QVBoxLayout, QWidget)

from .device import DEVICES
from .errors import Pix2PixError
from .model import load_model
from .napari_layers import contrast_limits, layer_array, layer_axes, result_layer_kwargs
from .prediction import predict


def lazy_output_path(name: str) -> Path:
    """Where predictions of lazy layers are streamed to (kept: they are the result)."""
    folder = Path.home() / "napari-pix2pix" / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return folder / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}.zarr"


class PredictionCancelled(Pix2PixError):
    """Raised inside the worker when the user pressed Cancel."""


class PredictWidget(QWidget):
    """Apply a trained pix2pix model to an Image layer, tile by tile."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.model = None
        self.worker = None
        self.cancel_requested = threading.Event()
        self.state = {"done": 0, "total": 0}
        self._progress = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText("model.safetensors or model folder")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        row = QHBoxLayout()
        row.addWidget(self.model_path)
        row.addWidget(browse)
        form.addRow("Model", row)
        self.model_info = QLabel("No model loaded.")
        self.model_info.setWordWrap(True)
        form.addRow(self.model_info)
        self.export_button = QPushButton("Export to bioimage.io…")
        self.export_button.setToolTip("Write the loaded model as a bioimage.io model zip "
                                      '(needs pip install "napari-pix2pix[bioimageio]")')
        form.addRow(self.export_button)
        self.image_layer = QComboBox()
        self.axes = QLineEdit()
        row = QHBoxLayout()
        row.addWidget(self.image_layer, 3)
        row.addWidget(self.axes, 1)
        form.addRow("Image / axes", row)
        self.tile_size = QSpinBox()
        self.tile_size.setRange(8, 8192)
        self.tile_size.setValue(256)
        self.overlap = QDoubleSpinBox()
        self.overlap.setRange(0.0, 0.9)
        self.overlap.setSingleStep(0.05)
        self.overlap.setValue(0.25)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 1024)
        self.batch_size.setValue(4)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        for label, w in (("Tile size", self.tile_size), ("Overlap", self.overlap),
                         ("Batch size", self.batch_size), ("Device", self.device)):
            form.addRow(label, w)
        self.confidence = QCheckBox("Confidence map (8x slower)")
        self.confidence.setToolTip("also add the per-pixel spread of the predictions of the 8 "
                                   "flipped/rotated copies of the image (target units)")
        form.addRow(self.confidence)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Predict")
        self.cancel_button = QPushButton("Cancel")
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addStretch()
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._show_progress)

        browse.clicked.connect(self._browse)
        self.export_button.clicked.connect(self._export_dialog)
        self.model_path.editingFinished.connect(lambda: self.load(self.model_path.text()))
        self.image_layer.currentTextChanged.connect(self._layer_chosen)
        self.run_button.clicked.connect(lambda: self.run())
        self.cancel_button.clicked.connect(self.cancel)
        layers = self.viewer.layers.events
        for event in (layers.inserted, layers.removed, layers.reordered):
            event.connect(self.refresh_layers)
        self.refresh_layers()
        self._set_running(False)

    # ------------------------------------------------------------------ choices
    def refresh_layers(self, *_) -> None:
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        current = self.image_layer.currentText()
        self.image_layer.blockSignals(True)
        self.image_layer.clear()
        self.image_layer.addItems(names)
        if current in names:
            self.image_layer.setCurrentText(current)
        self.image_layer.blockSignals(False)
        self._layer_chosen()

    def select_layer(self, name: str) -> None:
        self.image_layer.setCurrentText(name)

    def _layer(self):
        name = self.image_layer.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _layer_chosen(self, *_) -> None:
        layer = self._layer()
        self.axes.setText(layer_axes(layer) if layer is not None else "")

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open pix2pix model", "",
                                              "pix2pix model (*.safetensors);;All files (*)")
        if path:
            self.model_path.setText(path)
            self.load(path)

    def load(self, path) -> None:
        """Load a model file and show what it is; its patch size becomes the tile size."""
        if not str(path):
            return
        try:
            self.model = load_model(path)
        except Pix2PixError as exc:
            self.model = None
            self.model_info.setText(f"<span style='color:#e05050'>{exc}</span>")
            self._set_running(False)
            return
        self.model_path.setText(str(path))
        summary = self.model.summary()
        metrics = summary.pop("final validation") or {}
        lines = [f"{k}: {v}" for k, v in summary.items()]
        if metrics:
            lines.append("validation: " + json.dumps({k: round(v, 3) for k, v in metrics.items()}))
        self.model_info.setText("\n".join(lines))
        self.tile_size.setValue(int(self.model.config.patch_size[-1]))
        self._set_running(False)

    # ------------------------------------------------------------------ export
    def _export_dialog(self) -> None:
        if self.model is None:
            return
        stem = Path(self.model_path.text()).stem or "model"
        path, _ = QFileDialog.getSaveFileName(self, "Export to bioimage.io",
                                              f"{stem}.bioimageio.zip", "bioimage.io model (*.zip)")
        if path:
            self.export_model(path if path.lower().endswith(".zip") else f"{path}.zip")

    def export_model(self, path) -> Path | None:
        """Export the loaded model as a bioimage.io zip; report success or failure."""
        if self.model is None:
            show_error("Load a model first.")
            return None
        self.status.setText(f"Exporting to {path}…")
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            result = self.model.export_bioimageio(path)
        except Pix2PixError as exc:
            show_error(f"Export failed: {exc}")
            self.status.setText(f"Error: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - shown to the user, not swallowed silently
            show_error(f"Export failed ({type(exc).__name__}: {exc}).")
            self.status.setText(f"Error: {exc}")
            return None
        finally:
            QApplication.restoreOverrideCursor()
        show_info(f"Exported the model to {result} (bioimage.io).")
        self.status.setText(f"Exported {result}.")
        return result

    # ------------------------------------------------------------------ running
    def run(self) -> None:
        layer = self._layer()
        if self.worker is not None or self.model is None or layer is None:
            if self.model is None:
                show_error("Load a model first.")
            return
        axes = self.axes.text().upper() or None
        data = layer_array(layer)
        self.cancel_requested.clear()
        self.state.update(done=0, total=0)
        options = dict(axes=axes, tile_size=self.tile_size.value(), overlap=self.overlap.value(),
                       batch_size=self.batch_size.value(), device=self.device.currentText())
        uncertainty = self.confidence.isChecked()
        if not isinstance(data, np.ndarray):
            if uncertainty:
                show_error(f"{layer.name} is a lazy (on-disk) layer; the confidence map is "
                           "computed in memory. Untick Confidence map to stream the prediction.")
                return
            # a lazy (dask/zarr) layer may not fit in memory: stream into a zarr store
            # and show it lazily
            options["out"] = lazy_output_path(layer.name)

        def job():
            def report(done: int, total: int) -> None:
                self.state.update(done=done, total=total)
                if self.cancel_requested.is_set():
                    raise PredictionCancelled("prediction cancelled")

            *arrays, axes = predict(self.model, data, progress=report, return_axes=True,
                                    uncertainty=uncertainty, **options)
            return arrays[0], axes, (arrays[1] if uncertainty else None)

        self.worker = create_worker(job, _start_thread=False, _ignore_errors=True)
        self.worker.returned.connect(lambda result, lyr=layer: self._add_result(lyr, *result))
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self._progress = progress(total=0, desc=f"pix2pix on {layer.name}")
        self.status.setText(f"Predicting {layer.name}…")
        self._set_running(True)
        self.timer.start()
        self.worker.start()

    def cancel(self) -> None:
        self.cancel_requested.set()

    def _show_progress(self) -> None:
        done, total = self.state["done"], self.state["total"]
        if total:
            self.progress_bar.setMaximum(total)
            self.progress_bar.setValue(done)
            if self._progress is not None:
                self._progress.total = total
                self._progress.n = done
                self._progress.refresh()

    def _add_result(self, layer, result, out_axes: str, spread=None) -> None:
        if isinstance(result, Path):
            import dask.array as da

            result = da.from_zarr(str(result))
        kwargs = result_layer_kwargs(layer, self.axes.text().upper() or layer_axes(layer), out_axes)
        name = f"{layer.name} [pix2pix]"
        self._add_layer(result, name, kwargs)
        if spread is not None:
            self._add_layer(spread, f"{layer.name} [pix2pix spread]", kwargs, colormap="magma")
        self.status.setText(f"Added {name} {tuple(result.shape)}"
                            + (" and its spread." if spread is not None else "."))

    def _add_layer(self, data, name: str, kwargs: dict, **extra) -> None:
        kwargs = {**kwargs, **extra}
        if "channel_axis" in kwargs:
            kwargs["name"] = [f"{name} c{i}" for i in range(data.shape[kwargs["channel_axis"]])]
        else:
            kwargs["name"] = name
            kwargs["contrast_limits"] = contrast_limits(data)
        self.viewer.add_image(data, **kwargs)

    def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, PredictionCancelled):
            show_info("Prediction cancelled; no layer was added.")
            self.status.setText("Cancelled.")
        elif isinstance(exc, Pix2PixError):
            show_error(f"Prediction failed: {exc}")
            self.status.setText(f"Error: {exc}")
        else:
            show_error(f"Prediction failed ({type(exc).__name__}: {exc}).")
            self.status.setText(f"Error: {exc}")

    def _on_finished(self) -> None:
        self.timer.stop()
        self._show_progress()
        self.worker = None
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running and self.model is not None)
        self.cancel_button.setEnabled(running)
        self.export_button.setEnabled(not running and self.model is not None)


def predict_selected_layer(viewer: napari.viewer.Viewer) -> None:
    """Layers > Filter command: open the Predict widget on the selected layer (napari
    0.9 does not open the layer list's context menu to plugins). napari injects the
    viewer from the type annotation."""
    layer = viewer.layers.selection.active
    _, widget = viewer.window.add_plugin_dock_widget("napari-pix2pix", "Predict")
    if layer is not None:
        widget.select_layer(layer.name)
