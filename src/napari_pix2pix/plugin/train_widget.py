"""The Train dock widget: a source and a target layer, the options form, run controls
and a live plot. It maps the layers and the form to ``train_iter`` keyword arguments and
runs the core loop in a worker thread; no machine-learning logic lives here."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from ..config import Pix2PixConfig
from ..engine.axes import check_axes
from ..engine.events import FinishedEvent, StepEvent, ValidationEvent, WarningEvent
from ..engine.pairs import check_pair
from ..errors import Pix2PixError
from ..io.checkpoint import checkpoint_path
from ..io.model_file import save_or_rescue
from ..options import user_path
from ..run_options import TrainingRun
from .layer_picker import PairPicker
from .layers import layer_array
from .loss_plot import LossPlot
from .options_form import OptionsForm
from .run_controls import RunControls
from .settings import WidgetSettings
from .training_worker import WorkerFailed, start_training

PREVIEW_LAYER = "pix2pix preview"


def default_run_folder() -> Path:
    return Path.home() / "napari-pix2pix" / time.strftime("run-%Y%m%d-%H%M%S")


class TrainWidget(QWidget):
    """Train a pix2pix model on a source and a target Image layer."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.model = None
        self.worker = None
        self.stop_requested = threading.Event()
        self.run_folder: Path | None = None
        self.settings = WidgetSettings("train")
        self._init_ui()
        self.form.set_values(self.settings.load())
        self.reset_choices()
        self._set_running(False)

    # ------------------------------------------------------------------ parts
    def _init_ui(self) -> None:
        self._init_pair()
        self._init_form()
        self._init_controls()
        self.plot = LossPlot()
        layout = QVBoxLayout(self)
        for part in (self.pair.native, self.form, self.controls, self.plot):
            layout.addWidget(part)
        layout.addStretch()

    def _init_pair(self) -> None:
        self.pair = PairPicker(self.viewer, exclude=(PREVIEW_LAYER,))
        self.pair.source.changed.connect(self.check_pair)
        self.pair.target.changed.connect(self.check_pair)
        self.pair.source.axes.changed.connect(self.check_pair)
        self.pair.target.axes.changed.connect(self.check_pair)
        layers = self.viewer.layers.events
        for event in (layers.inserted, layers.removed, layers.reordered, layers.renamed):
            event.connect(self.reset_choices)

    def _init_form(self) -> None:
        self.form = OptionsForm(Pix2PixConfig, TrainingRun)
        self.form["checkpoint_dir"].editor.native.setPlaceholderText(
            str(Path.home() / "napari-pix2pix" / "run-<time>")
        )
        self.form["checkpoint_dir"].widget.tooltip += "; the trained model is auto-saved there too"
        self.form.connect(self.check_pair)

    def _init_controls(self) -> None:
        self.controls = RunControls("Start", "Stop", "Resume", "Save model…")
        self.controls["Start"].clicked.connect(lambda: self.start())
        self.controls["Resume"].clicked.connect(lambda: self.start(resume=True))
        self.controls["Stop"].clicked.connect(self.stop)
        self.controls["Save model…"].clicked.connect(self._save_dialog)
        self.controls.say("Choose a source and a target layer.")

    # ------------------------------------------------------------------ layers
    def reset_choices(self, *_) -> None:
        self.pair.reset_choices()
        self.check_pair()

    def check_pair(self, *_) -> bool:
        """Show in the widget why the chosen pair cannot be trained on, if it cannot."""
        src, tgt = self.pair.source.value, self.pair.target.value
        message = ""
        if src is None or tgt is None:
            message = "Add or open two Image layers: a source and its aligned target."
        elif src == tgt:
            message = "Source and target are the same layer: choose the target image."
        else:
            try:
                dims = self.form["spatial_dims"].value
                s_shape, t_shape = layer_array(src).shape, layer_array(tgt).shape
                s_axes = check_axes(self.pair.source.axes_text(), len(s_shape), dims, "source")
                t_axes = check_axes(self.pair.target.axes_text(), len(t_shape), dims, "target")
                check_pair(s_shape, s_axes, t_shape, t_axes, dims)
            except Pix2PixError as exc:
                message = str(exc)
        self.pair.message.say(message)
        if self.worker is None:
            self.controls["Start"].setEnabled(not message)
        return not message

    # ------------------------------------------------------------------ options
    def options(self) -> dict:
        """The train_iter keyword arguments the widget's fields describe."""
        return {
            **self.form.values(),
            "axes": self.pair.source.axes_text(),
            "target_axes": self.pair.target.axes_text(),
        }

    def save_settings(self) -> None:
        self.settings.save(self.form.values())

    # ------------------------------------------------------------------ running
    def start(self, resume: bool = False) -> None:
        if self.worker is not None or not self.check_pair():
            return
        options = self.options()
        if resume:
            last = self.settings.get("last_run")
            if not last or not checkpoint_path(last).is_file():
                show_warning("No checkpoint to resume from yet: start a training first.")
                return
            self.run_folder = Path(last)
            options["resume"] = self.run_folder
        else:
            folder = options["checkpoint_dir"]
            self.run_folder = user_path(folder) if folder else default_run_folder()
            self.plot.clear()
        try:
            self.run_folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            show_error(f"Cannot create the run folder {self.run_folder}: {exc}")
            return
        options["checkpoint_dir"] = self.run_folder
        self.save_settings()
        self.settings.save({"last_run": str(self.run_folder)})
        self.stop_requested.clear()
        source, target = layer_array(self.pair.source.value), layer_array(self.pair.target.value)
        self.worker = start_training(source, target, options, self.stop_requested)
        self.worker.yielded.connect(self._on_event)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self.controls.progress(0, options["steps"])
        self.controls.say("Preparing data…")
        self._set_running(True)
        self.worker.start()

    def stop(self) -> None:
        """Ask the worker to stop after the current step (a checkpoint is kept)."""
        if self.worker is not None:
            self.stop_requested.set()
            self.controls.say("Stopping after this step…")

    def _on_event(self, event) -> None:
        self.model = event.model
        if isinstance(event, StepEvent):
            self.controls.progress(event.step, event.total)
            self.plot.add_losses(event.step, event.losses)
            self.controls.say(f"step {event.step}/{event.total}  L1 {event.losses['g_l1']:.4f}")
        elif isinstance(event, ValidationEvent):
            self.plot.add_metrics(event.step, event.metrics)
            self._show_preview(event)
        elif isinstance(event, WarningEvent):
            show_warning(event.message)
        elif isinstance(event, FinishedEvent):
            self.controls.say(f"Finished {event.total} steps.")

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
        hint = (
            " Try a lower learning rate (Advanced) and check the inputs."
            if "diverged" in str(exc)
            else ""
        )
        if isinstance(exc, Pix2PixError):
            show_error(f"Training stopped: {exc}{hint}")
        else:
            show_error(f"Training failed ({type(exc).__name__}: {exc}).{hint}")
        self.controls.say(f"Error: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        self._set_running(False)
        if self.model is not None and self.model.history.get("steps_done"):
            try:  # the run folder's own model, replaced as the run goes on
                path, note = save_or_rescue(self.model, self.run_folder / "model.safetensors", True)
            except (OSError, Pix2PixError) as exc:
                show_error(f"Could not save the model anywhere: {exc}")
                return
            if note:
                show_warning(note)
            done = self.model.history["steps_done"]
            self.controls.say(
                f"{self.controls.status.text()} Model ({done} steps) auto-saved to {path}."
            )

    def _set_running(self, running: bool) -> None:
        self.controls["Start"].setEnabled(not running)
        self.controls["Resume"].setEnabled(not running)
        self.controls["Stop"].setEnabled(running)
        self.controls["Save model…"].setEnabled(not running and self.model is not None)
        if not running:
            self.check_pair()

    # ------------------------------------------------------------------ saving
    def save_model(self, path, overwrite: bool = False) -> Path:
        if self.model is None:
            raise RuntimeError("no model trained yet")
        return self.model.save(path, overwrite=overwrite)

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save pix2pix model", "model.safetensors", "pix2pix model (*.safetensors)"
        )
        if path:
            try:
                # the dialog has asked before choosing an existing file
                show_info(f"Model saved to {self.save_model(path, overwrite=True)}")
            except (OSError, Pix2PixError) as exc:
                show_error(f"Could not save the model: {exc}")

    def closeEvent(self, event) -> None:  # Qt's name
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop a running training and wait for its worker (viewer closing)."""
        if self.worker is not None:
            self.stop_requested.set()
            self.worker.await_workers(msecs=60_000)
