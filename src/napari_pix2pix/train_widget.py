"""The Train dock widget: pick a source and a target Image layer, set the options and
run the core ``train_iter`` in napari's worker thread, with a progress bar, a live
loss/metrics plot and a preview layer. No ML logic lives here."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from napari.layers import Image
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QSettings
from qtpy.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout,
                            QLabel, QLineEdit, QProgressBar, QPushButton, QSpinBox, QVBoxLayout,
                            QWidget)
from superqt import QCollapsible

from .checkpoint import checkpoint_path
from .config import AMP_MODES, GAN_MODES, NORMS, Pix2PixConfig
from .data import check_axes, check_pair
from .device import DEVICES
from .errors import Pix2PixError
from .loss_plot import LossPlot
from .napari_layers import layer_array, layer_axes
from .training import FinishedEvent, StepEvent, ValidationEvent, WarningEvent, train_iter

PREVIEW_LAYER = "pix2pix preview"


def settings() -> QSettings:
    return QSettings("napari-pix2pix", "napari-pix2pix")


def default_run_folder() -> Path:
    return Path.home() / "napari-pix2pix" / time.strftime("run-%Y%m%d-%H%M%S")


class WorkerFailed(Exception):
    """Carries an error out of the training worker. superqt's GeneratorWorker takes any
    RuntimeError raised by the generator (our TrainingError and DeviceError, CUDA errors)
    for a deleted worker and drops it without a signal, which would leave the widget
    "running" forever; wrapped, it reaches ``errored``."""


def training_events(source, target, options: dict, stop: threading.Event):
    """The worker's generator: the core loop, closed cleanly (checkpoint written) when
    ``stop`` is set; the Stop button therefore acts within one training step."""
    events = train_iter(source, target, **options)
    try:
        for event in events:
            yield event
            if stop.is_set():
                break
    except RuntimeError as exc:
        raise WorkerFailed(str(exc)) from exc
    finally:
        events.close()


class TrainingWorker(GeneratorWorker):
    """napari cancels every worker when its window closes (``quit``). Abandoning the
    training generator there would skip its clean-up; setting its stop flag (the last
    argument of ``training_events``) lets it finish the step and write its checkpoint."""

    def __init__(self, func, *args, **kwargs) -> None:
        super().__init__(func, *args, **kwargs)
        self.stop_event: threading.Event = args[-1]

    def quit(self) -> None:
        self.stop_event.set()


class TrainWidget(QWidget):
    """Train a pix2pix model on two paired Image layers."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.model = None
        self.worker = None
        self.stop_requested = threading.Event()
        self.run_folder: Path | None = None
        self._progress = None
        defaults = Pix2PixConfig()
        layout = QVBoxLayout(self)

        data = QFormLayout()
        self.source_layer, self.source_axes = QComboBox(), QLineEdit()
        self.target_layer, self.target_axes = QComboBox(), QLineEdit()
        for name, combo, axes in (("source", self.source_layer, self.source_axes),
                                  ("target", self.target_layer, self.target_axes)):
            combo.setToolTip(f"the {name} Image layer")
            axes.setToolTip("axes letters: T, Z, C, Y, X (e.g. YX, CYX, ZYX)")
            row = QHBoxLayout()
            row.addWidget(combo, 3)
            row.addWidget(axes, 1)
            data.addRow(f"{name.capitalize()} / axes", row)
        self.pair_message = QLabel()
        self.pair_message.setWordWrap(True)
        data.addRow(self.pair_message)
        layout.addLayout(data)

        form = QFormLayout()
        self.steps = _spin(1, 10_000_000, defaults.steps)
        self.patch_size = _spin(8, 4096, defaults.patch_size[0])
        self.batch_size = _spin(1, 1024, defaults.batch_size)
        self.lambda_l1 = _dspin(0.0, 1e5, defaults.lambda_l1, 1)
        self.gan_mode = _combo(GAN_MODES, defaults.gan_mode)
        self.depth = _spin(1, 12, defaults.depth)
        self.base_channels = _spin(1, 1024, defaults.base_channels)
        self.val_fraction = _dspin(0.0, 0.9, defaults.val_fraction, 2, 0.05)
        self.device = _combo(DEVICES, "auto")
        for label, w in (("Steps", self.steps), ("Patch size", self.patch_size),
                         ("Batch size", self.batch_size), ("λ L1", self.lambda_l1),
                         ("GAN loss", self.gan_mode), ("U-Net depth", self.depth),
                         ("Base channels", self.base_channels),
                         ("Validation fraction", self.val_fraction), ("Device", self.device)):
            form.addRow(label, w)
        layout.addLayout(form)

        self.advanced = QCollapsible("Advanced")
        adv = QWidget()
        adv_form = QFormLayout(adv)
        self.spatial_dims = _combo(("2", "3"), "2")
        self.disc_layers = _spin(1, 8, defaults.disc_layers)
        self.disc_channels = _spin(1, 1024, defaults.disc_channels)
        self.norm = _combo(NORMS, defaults.norm)
        self.lr = _dspin(1e-7, 1.0, defaults.lr, 6, 1e-5)
        self.amp = _combo(AMP_MODES, defaults.amp)
        self.seed = _spin(0, 2**31 - 1, defaults.seed)
        self.gan_warmup = _dspin(0.0, 1.0, defaults.gan_warmup, 2, 0.05)
        self.gan_warmup.setToolTip("share of the steps trained with L1 only before the "
                                   "adversarial term ramps in")
        self.foreground_crops = _dspin(0.0, 1.0, defaults.foreground_crops, 2, 0.1)
        self.foreground_crops.setToolTip("share of training crops centred on bright target "
                                         "pixels (helps sparse targets such as nuclei)")
        self.checkpoint_every = _spin(0, 10_000_000, 200)
        self.autosave = QLineEdit()
        self.autosave.setPlaceholderText(str(Path.home() / "napari-pix2pix" / "run-<time>"))
        for label, w in (("Spatial dims", self.spatial_dims), ("Discriminator layers", self.disc_layers),
                         ("Discriminator channels", self.disc_channels), ("Normalization", self.norm),
                         ("Learning rate", self.lr), ("Adversarial warm-up", self.gan_warmup),
                         ("Foreground crops", self.foreground_crops), ("Mixed precision", self.amp),
                         ("Seed", self.seed), ("Checkpoint every (0: off)", self.checkpoint_every),
                         ("Auto-save folder", self.autosave)):
            adv_form.addRow(label, w)
        self.advanced.addWidget(adv)
        layout.addWidget(self.advanced)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.save_button = QPushButton("Save model…")
        for b in (self.start_button, self.stop_button, self.resume_button, self.save_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.status = QLabel("Choose a source and a target layer.")
        self.status.setWordWrap(True)
        self.plot = LossPlot()
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addWidget(self.plot)
        layout.addStretch()

        self.start_button.clicked.connect(lambda: self.start())
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.stop_button.clicked.connect(self.stop)
        self.save_button.clicked.connect(self._save_dialog)
        for combo, axes in ((self.source_layer, self.source_axes),
                            (self.target_layer, self.target_axes)):
            combo.currentTextChanged.connect(lambda _, c=combo, a=axes: self._layer_chosen(c, a))
            axes.editingFinished.connect(self.check_pair)
        layers = self.viewer.layers.events
        for event in (layers.inserted, layers.removed, layers.reordered):
            event.connect(self.refresh_layers)
        self._value_widgets = {
            "steps": self.steps, "patch_size": self.patch_size, "batch_size": self.batch_size,
            "lambda_l1": self.lambda_l1, "gan_mode": self.gan_mode, "depth": self.depth,
            "base_channels": self.base_channels, "val_fraction": self.val_fraction,
            "device": self.device, "spatial_dims": self.spatial_dims,
            "disc_layers": self.disc_layers, "disc_channels": self.disc_channels,
            "norm": self.norm, "lr": self.lr, "amp": self.amp, "seed": self.seed,
            "gan_warmup": self.gan_warmup, "foreground_crops": self.foreground_crops,
            "checkpoint_every": self.checkpoint_every, "autosave": self.autosave}
        self.load_settings()
        self.refresh_layers()
        self._set_running(False)

    # ------------------------------------------------------------------ layers
    def image_layers(self) -> list[Image]:
        return [layer for layer in self.viewer.layers
                if isinstance(layer, Image) and layer.name != PREVIEW_LAYER]

    def refresh_layers(self, *_) -> None:
        names = [layer.name for layer in self.image_layers()]
        for i, combo in enumerate((self.source_layer, self.target_layer)):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            if current in names:
                combo.setCurrentText(current)
            elif len(names) > i:
                combo.setCurrentIndex(i)
            combo.blockSignals(False)
        self._layer_chosen(self.source_layer, self.source_axes)
        self._layer_chosen(self.target_layer, self.target_axes)

    def _layer(self, combo: QComboBox) -> Image | None:
        name = combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _layer_chosen(self, combo: QComboBox, axes: QLineEdit) -> None:
        layer = self._layer(combo)
        axes.setText(layer_axes(layer) if layer is not None else "")
        self.check_pair()

    def check_pair(self) -> bool:
        """Show in the widget why the chosen pair cannot be trained on, if it cannot."""
        src, tgt = self._layer(self.source_layer), self._layer(self.target_layer)
        message = ""
        if src is None or tgt is None:
            message = "Add or open two Image layers: a source and its aligned target."
        elif src is tgt:
            message = "Source and target are the same layer: choose the target image."
        else:
            try:
                dims = int(self.spatial_dims.currentText())
                s_shape, t_shape = layer_array(src).shape, layer_array(tgt).shape
                s_axes = check_axes(self.source_axes.text(), len(s_shape), dims, "source")
                t_axes = check_axes(self.target_axes.text(), len(t_shape), dims, "target")
                check_pair(s_shape, s_axes, t_shape, t_axes, dims)
            except Pix2PixError as exc:
                message = str(exc)
        self.pair_message.setText(message)
        self.pair_message.setStyleSheet("color: #e05050;" if message else "")
        ok = not message
        if self.worker is None:
            self.start_button.setEnabled(ok)
        return ok

    # ------------------------------------------------------------------ options
    def options(self) -> dict:
        """The train_iter keyword arguments the widget's fields describe."""
        every = self.checkpoint_every.value()
        return dict(
            axes=self.source_axes.text().upper(), target_axes=self.target_axes.text().upper(),
            steps=self.steps.value(), patch_size=self.patch_size.value(),
            batch_size=self.batch_size.value(), lambda_l1=self.lambda_l1.value(),
            gan_mode=self.gan_mode.currentText(), depth=self.depth.value(),
            base_channels=self.base_channels.value(), val_fraction=self.val_fraction.value(),
            device=self.device.currentText(), spatial_dims=int(self.spatial_dims.currentText()),
            disc_layers=self.disc_layers.value(), disc_channels=self.disc_channels.value(),
            norm=self.norm.currentText(), lr=self.lr.value(), amp=self.amp.currentText(),
            seed=self.seed.value(), gan_warmup=self.gan_warmup.value(),
            foreground_crops=self.foreground_crops.value(), checkpoint_every=every or None)

    def load_settings(self) -> None:
        store = settings()
        for key, widget in self._value_widgets.items():
            value = store.value(f"train/{key}")
            if value is None:
                continue
            try:
                _set_value(widget, value)
            except (TypeError, ValueError):
                pass

    def save_settings(self) -> None:
        store = settings()
        for key, widget in self._value_widgets.items():
            store.setValue(f"train/{key}", _get_value(widget))

    # ------------------------------------------------------------------ running
    def start(self, resume: bool = False) -> None:
        if self.worker is not None or not self.check_pair():
            return
        options = self.options()
        if resume:
            last = settings().value("train/last_run")
            if not last or not checkpoint_path(last).is_file():
                show_warning("No checkpoint to resume from yet: start a training first.")
                return
            self.run_folder = Path(last)
            options["resume"] = self.run_folder
        else:
            self.run_folder = Path(self.autosave.text()) if self.autosave.text() else default_run_folder()
            self.plot.clear()
        try:
            self.run_folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            show_error(f"Cannot create the auto-save folder {self.run_folder}: {exc}")
            return
        options["checkpoint_dir"] = self.run_folder
        self.save_settings()
        settings().setValue("train/last_run", str(self.run_folder))
        source = layer_array(self._layer(self.source_layer))
        target = layer_array(self._layer(self.target_layer))
        self.stop_requested.clear()
        self.worker = create_worker(training_events, source, target, options, self.stop_requested,
                                    _start_thread=False, _ignore_errors=True,
                                    _worker_class=TrainingWorker)
        self.worker.yielded.connect(self._on_event)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self._progress = progress(total=options["steps"], desc="pix2pix training")
        self.status.setText("Preparing data…")
        self._set_running(True)
        self.worker.start()

    def stop(self) -> None:
        """Ask the worker to stop after the current step (a checkpoint is kept)."""
        if self.worker is not None:
            self.stop_requested.set()
            self.status.setText("Stopping after this step…")

    def _on_event(self, event) -> None:
        self.model = event.model
        if isinstance(event, StepEvent):
            self.progress_bar.setMaximum(event.total)
            self.progress_bar.setValue(event.step)
            if self._progress is not None:
                self._progress.total = event.total
                self._progress.n = event.step
                self._progress.refresh()
            self.plot.add_losses(event.step, event.losses)
            self.status.setText(f"step {event.step}/{event.total}  L1 {event.losses['g_l1']:.4f}")
        elif isinstance(event, ValidationEvent):
            self.plot.add_metrics(event.step, event.metrics)
            self._show_preview(event)
        elif isinstance(event, WarningEvent):
            show_warning(event.message)
        elif isinstance(event, FinishedEvent):
            self.status.setText(f"Finished {event.total} steps.")

    def _show_preview(self, event: ValidationEvent) -> None:
        data = event.preview
        limits = (float(np.min(event.preview_target)), float(np.max(event.preview_target)))
        if limits[1] <= limits[0]:
            limits = (limits[0], limits[0] + 1)
        if PREVIEW_LAYER in self.viewer.layers:
            layer = self.viewer.layers[PREVIEW_LAYER]
            layer.data = data
            layer.contrast_limits = limits
        else:
            self.viewer.add_image(data, name=PREVIEW_LAYER, contrast_limits=limits)

    def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, WorkerFailed) and exc.__cause__ is not None:
            exc = exc.__cause__
        hint = ""
        if "diverged" in str(exc):
            hint = " Try a lower learning rate (Advanced) and check the inputs."
        if isinstance(exc, Pix2PixError):
            show_error(f"Training stopped: {exc}{hint}")
        else:
            show_error(f"Training failed ({type(exc).__name__}: {exc}).{hint}")
        self.status.setText(f"Error: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self._set_running(False)
        if self.model is not None and self.model.history.get("steps_done"):
            path = self.run_folder / "model.safetensors"
            try:
                self.model.save(path)
                done = self.model.history["steps_done"]
                self.status.setText(f"{self.status.text()} Model ({done} steps) auto-saved to {path}.")
            except OSError as exc:
                show_error(f"Could not auto-save the model to {path}: {exc}")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.save_button.setEnabled(not running and self.model is not None)
        if not running:
            self.check_pair()

    # ------------------------------------------------------------------ saving
    def save_model(self, path) -> Path:
        if self.model is None:
            raise RuntimeError("no model trained yet")
        return self.model.save(path)

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save pix2pix model", "model.safetensors",
                                              "pix2pix model (*.safetensors)")
        if path:
            try:
                show_info(f"Model saved to {self.save_model(path)}")
            except (OSError, Pix2PixError) as exc:
                show_error(f"Could not save the model: {exc}")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop a running training and wait for its worker (viewer closing)."""
        if self.worker is not None:
            self.stop_requested.set()
            self.worker.await_workers(msecs=60_000)


def _spin(low: int, high: int, value: int) -> QSpinBox:
    w = QSpinBox()
    w.setRange(low, high)
    w.setValue(value)
    return w


def _dspin(low: float, high: float, value: float, decimals: int, step: float = 1.0) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setDecimals(decimals)
    w.setRange(low, high)
    w.setSingleStep(step)
    w.setValue(value)
    return w


def _combo(items, value: str) -> QComboBox:
    w = QComboBox()
    w.addItems(list(items))
    w.setCurrentText(value)
    return w


def _get_value(widget):
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.value()
    if isinstance(widget, QComboBox):
        return widget.currentText()
    return widget.text()


def _set_value(widget, value) -> None:
    if isinstance(widget, QSpinBox):
        widget.setValue(int(value))
    elif isinstance(widget, QDoubleSpinBox):
        widget.setValue(float(value))
    elif isinstance(widget, QComboBox):
        if widget.findText(str(value)) >= 0:
            widget.setCurrentText(str(value))
    else:
        widget.setText(str(value))
