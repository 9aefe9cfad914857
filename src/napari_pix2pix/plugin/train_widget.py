"""The Train dock widget: the training pairs (pair_list.py: layer pairs or folders, and
an optional validation pair), a model to start from, the options form, run controls and
a live plot. It maps them to ``train_iter`` keyword arguments and runs the core loop in a
worker thread; no machine-learning logic lives here."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from magicgui.widgets import Container, FileEdit, Label
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QFileDialog, QWidget

from ..config import Pix2PixConfig
from ..engine.events import FinishedEvent, StepEvent, ValidationEvent, WarningEvent
from ..engine.recipes import RECIPE_FIELDS
from ..errors import Pix2PixError
from ..io.checkpoint import checkpoint_path
from ..options import user_path
from ..run_options import TrainingRun
from ..workflows.run_report import report_of_run
from ..workflows.run_setup import check_run_options
from . import PLUGIN, PREDICT
from .docking import bring_forward, join_later, join_sibling
from .layer_picker import Message, PairPicker
from .live_view import VIEW_LAYER, LiveView, ViewPreview
from .loss_plot import LossPlot
from .options_form import OptionsForm
from .pair_list import FOLDERS, FRACTION, LAYERS, PairsChoice, Selection, describe, shared
from .preview_layer import PREVIEW_LAYER, HeldPreview, preview_sources
from .reader_offer import ReaderOffer
from .run_config_buttons import RunConfigButtons
from .run_controls import RunControls
from .run_planner import RunPlanner
from .run_warnings import RunWarnings
from .scrolling import fit_width, scroll_to, scrolling_layout
from .settings import WidgetSettings
from .step_display import StepDisplay
from .training_worker import Saved, WorkerFailed, best_note, start_training


def default_run_folder() -> Path:
    return Path.home() / "napari-pix2pix" / time.strftime("run-%Y%m%d-%H%M%S")


class TrainWidget(QWidget):
    """Train a pix2pix model on pairs of Image layers (or folders of files)."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.model = None
        self.worker = None
        self.stop_requested = threading.Event()
        self.run_folder: Path | None = None
        self.started = 0.0  # time.time() at the last Start or Resume
        self._saved_text = ""
        self.saved: Path | None = None  # where the last run's model was auto-saved
        self.selection = (Selection(), Selection())  # training, validation
        self.settings = WidgetSettings("train")
        self._init_ui()
        self.form.set_values(self.settings.load())
        self.reset_choices()
        self._set_running(False)
        join_later(self)  # a tab beside Predict, if it is docked already

    # ------------------------------------------------------------------ parts
    def _init_ui(self) -> None:
        self._init_pairs()
        self._init_form()
        self._init_controls()
        self.plot = LossPlot()
        self.steps = StepDisplay(self.controls, self.plot, self)
        # the run's buttons and status pinned below the scrolling form: Start and the
        # status in view at any height (at 1280x800 they were below the fold)
        layout = scrolling_layout(self, footer=self.controls)
        self.planner = RunPlanner(self._plan_inputs)
        self.reader_offer = ReaderOffer(self.settings)
        parts = (self.reader_offer, self.pairs, self.validation, self.init_model_row, self.summary)
        parts = (*parts, self.planner.label)
        ends = (self.form, self.options_message.native, self.warning.native)
        ends = (*ends, self.plot)
        for part in (*(p.native for p in parts), *ends):
            layout.addWidget(part)
        layout.addStretch()
        fit_width(self)

    def _init_pairs(self) -> None:
        exclude = (PREVIEW_LAYER, VIEW_LAYER)
        self.pairs = PairsChoice(self.viewer, "Train on", (LAYERS, FOLDERS), True, exclude)
        self.validation = PairsChoice(
            self.viewer, "Validate on", (FRACTION, LAYERS, FOLDERS), False, exclude
        )
        self.init_model = FileEdit(
            mode="r",
            filter="pix2pix model (*.safetensors)",
            label="Start from model…",
            tooltip="optional: fine-tune a saved model (its weights) instead of starting "
            "from random weights",
        )
        self.init_model_row = Container(widgets=[self.init_model])  # with its label
        self.init_model_row.margins = (0, 0, 0, 0)
        self.summary = Label(value="")
        for part in (self.pairs, self.validation):
            part.connect(self.check_pair)
        self.init_model.changed.connect(self.check_pair)
        layers = self.viewer.layers.events
        for event in (layers.inserted, layers.removed, layers.reordered, layers.renamed):
            event.connect(self.reset_choices)
        self.live_view = LiveView(self.viewer, self._viewed_layer, self)
        self.preview = HeldPreview(
            self.viewer, lambda: preview_sources(self.pairs, self.validation), self
        )

    @property
    def pair(self) -> PairPicker:
        """The first training pair (the only one, unless rows were added)."""
        return self.pairs.pairs[0]

    def _init_form(self) -> None:
        # init_model is the file chooser above, should the option be declared for the GUI
        # left "auto", the recipe sizes the network and a time budget alone ends the run
        self.form = OptionsForm(
            Pix2PixConfig, TrainingRun, exclude=("init_model",), auto=(*RECIPE_FIELDS, "steps")
        )
        self.form["checkpoint_dir"].editor.native.setPlaceholderText(
            str(Path.home() / "napari-pix2pix" / "run-<time>")
        )
        self.form["checkpoint_dir"].widget.tooltip += "; the trained model is auto-saved there too"
        self.form.connect(self.check_pair)
        self.config_files = RunConfigButtons(
            self,
            self.form,
            "train",
            extra={"init_model": (self._init_model_path, self._set_init_model)},
            say=lambda text: self.controls.say(text),
        )
        self.options_message = Message()  # options that clash, said as they are chosen
        self.warning = Message()  # the run's warnings, whole (a notification cuts them)
        self.run_warnings = RunWarnings(self.warning, self)

    def _init_controls(self) -> None:
        self.controls = RunControls("Start", "Stop", "Resume", "Save model…", "Use in Predict")
        self.controls["Start"].clicked.connect(lambda: self.start())
        self.controls["Resume"].clicked.connect(lambda: self.start(resume=True))
        self.controls["Stop"].clicked.connect(self.stop)
        self.controls["Save model…"].clicked.connect(self._save_dialog)
        self.controls["Use in Predict"].clicked.connect(lambda: self.use_in_predict())
        self.controls["Use in Predict"].setToolTip("open the model just trained in Predict")
        self.controls.say("Choose the training pairs, then press Start.")

    # ------------------------------------------------------------------ layers
    def reset_choices(self, *_) -> None:
        self.pairs.reset_choices()
        self.validation.reset_choices()
        self.check_pair()

    def check_pair(self, *_, replan: bool = True) -> bool:
        """Say what will be trained on (pairs, pixels, validation), or show in the
        widget why the chosen pairs cannot be trained on; Start only when they can.
        ``replan``: time the recipe again (not when a run has just ended: its recipe
        line stays until the user changes something)."""
        if not hasattr(self, "controls"):
            return False  # still being built
        dims = self.form["spatial_dims"].value
        train, val = self.pairs.selection(dims), self.validation.selection(dims)
        problem = train.problem or val.problem
        if not problem and val.pairs:
            axes = (train.axes, train.target_axes), (val.axes, val.target_axes)
            if shared(train, val):
                problem = (
                    "The validation images are also training images: choose ones that "
                    "training does not see, or validate on the validation fraction."
                )
            elif None not in (train.axes, val.axes) and axes[0] != axes[1]:  # not files
                problem = (
                    f"the validation pair's axes ({val.axes} -> {val.target_axes}) differ "
                    f"from the training pairs' ({train.axes} -> {train.target_axes})."
                )
            self.validation.message.say(problem)
        self.selection = (train, val)
        self.summary.value = "" if problem else self._describe(train, val)
        options_problem = self._options_problem(train)
        self.options_message.say(options_problem)
        problem = problem or options_problem
        if self.worker is None:
            self.controls["Start"].setEnabled(not problem)
            self.controls["Resume"].setEnabled(not problem and self._last_checkpoint() is not None)
            if replan:
                self.planner.request(not problem)
        return not problem

    def _init_model_path(self) -> str | None:
        return self.init_model.line_edit.value.strip() or None

    def _set_init_model(self, path) -> None:
        self.init_model.line_edit.value = "" if path is None else str(path)

    def _options_problem(self, train: Selection) -> str:
        """What is wrong with the options as they stand ('' if nothing), with its fix."""
        init_model = self._init_model_path()
        try:
            check_run_options(
                {**self.form.values(), "init_model": init_model}, train.axes, train.target_axes
            )
        except Pix2PixError as exc:
            return str(exc)
        return ""

    def _describe(self, train: Selection, val: Selection) -> str:
        """'3 pairs, 1.2 Mpx; validation: 1 pair, 16 kpx'."""
        if val.pairs:
            held_out = describe(val.pairs, val.pixels)
        elif self.form["val_fraction"].value:
            held_out = f"{self.form['val_fraction'].value:.0%} of the training data"
        else:
            held_out = "none"
        return f"{describe(train.pairs, train.pixels)}; validation: {held_out}"

    # ------------------------------------------------------------------ options
    def options(self) -> dict:
        """The train_iter keyword arguments the widget's fields describe (the training
        source and target aside)."""
        train, val = self.selection
        options = {**self.form.values(), "axes": train.axes, "target_axes": train.target_axes}
        if val.pairs:
            options.update(val_source=val.source, val_target=val.target)
        init_model = self.init_model.line_edit.value.strip()
        if init_model:
            options["init_model"] = user_path(init_model)
        return options

    def _plan_inputs(self) -> tuple:
        """What plan_run needs: the training pairs and the options (the run folder
        aside: a plan makes nothing)."""
        options = {k: v for k, v in self.options().items() if k != "checkpoint_dir"}
        return self.selection[0].source, self.selection[0].target, options

    def save_settings(self) -> None:
        self.settings.save(self.form.values(remembered=True))

    # ------------------------------------------------------------------ running
    def start(self, resume: bool = False) -> None:
        if self.worker is not None or not self.check_pair():
            return
        options = self.options()
        if resume:
            last = self._last_checkpoint()
            if last is None:
                show_warning("No checkpoint to resume from yet: start a training first.")
                return
            self.run_folder = last
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
        self.controls.link_run(self.run_folder)
        self.started = time.time()  # the run folder's report is this run's if written since
        self.save_settings()
        self.settings.save({"last_run": str(self.run_folder)})
        self.stop_requested.clear()
        self.planner.started()
        train = self.selection[0]
        self.live_view.start()
        watch, sink = self.live_view.watch, self.run_warnings.hear
        self.worker = start_training(
            train.source, train.target, options, self.stop_requested, watch, sink
        )
        self.worker.yielded.connect(self._on_event)
        self.worker.errored.connect(self._on_error)
        self.worker.returned.connect(self._on_saved)
        self.worker.finished.connect(self._on_finished)
        self.controls.progress(0, self.planner.plan.steps if self.planner.plan else 0)
        self.controls.say(f"Preparing data: {self.summary.value}…")
        self.run_warnings.clear()
        self._saved_text = ""
        self._set_running(True)
        self.show_plot()
        self.worker.start()

    def stop(self) -> None:
        """Ask the worker to stop after the current step (a checkpoint is kept)."""
        if self.worker is not None:
            self.stop_requested.set()
            self.steps.quiet = True
            self.controls.say("Stopping after this step…")

    def _viewed_layer(self):
        """(layer, axes) of the first training source, for the live view (layer pairs
        only), else None."""
        layer = self.pair.source.value if self.pairs.mode.value == LAYERS else None
        return None if layer is None else (layer, self.pair.source.axes_text())

    def _on_event(self, event) -> None:
        if isinstance(event, ViewPreview):
            self.live_view.show(event, self.pair.source.value)
            self.preview.show()  # the validation's, held for this: one repaint for both
            return
        self.model = event.model
        if isinstance(event, StepEvent):
            self.steps.add(event)  # shown once a second
            return
        self.steps.show()
        if isinstance(event, ValidationEvent):
            self.plot.add_metrics(event.step, event.metrics)
            if event.best:
                self.plot.mark_best(event.step)
            self.preview.hold(event)
        elif isinstance(event, WarningEvent):
            self.run_warnings.show(event.message)
        elif isinstance(event, FinishedEvent):
            self.controls.finish(event.step)  # 100 %: the total was an estimate
            self.controls.say(f"Finished {event.total} steps{best_note(event.model)}.")

    def _last_checkpoint(self) -> Path | None:
        """The folder of the last run, if it left a checkpoint to resume."""
        last = self.settings.get("last_run")
        return Path(last) if last and checkpoint_path(last).is_file() else None

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

    def _on_saved(self, saved: Saved) -> None:
        """The worker saved the run's model (training_worker.py) or says why not."""
        if saved.error:
            show_error(f"Could not save the model anywhere: {saved.error}")
        if saved.note:
            self.run_warnings.show(saved.note)
        self.saved = saved.path
        self.controls["Use in Predict"].setEnabled(saved.path is not None)
        if saved.path is not None and self.model is not None:
            done = self.model.history.steps_done
            self._saved_text = (
                f" Model ({done} steps{best_note(self.model, ', ', '')}) auto-saved to "
                f"{saved.path}."
            )

    def _on_finished(self) -> None:
        self.live_view.stop()
        self.preview.show()
        self.steps.stop()
        if self.model is not None:
            self.plot.catch_up(self.model.history.losses)
        self.worker = None
        self._set_running(False)
        self.controls.link_report(report_of_run(self.run_folder, since=self.started))
        status = self.controls.status.text()
        if self.stop_requested.is_set():
            done = self.model.history.steps_done if self.model is not None else 0
            status = f"Stopped after step {done}." if done else "Stopped before the first step."
        self.controls.say(status + self._saved_text)
        self.show_plot()  # the run's last warnings above it may have pushed it down

    def show_plot(self) -> None:
        """Scroll the form (above) out of the way of the run's plot, legend and step
        axis included (below the fold in a window of 1200 px or less)."""
        scroll_to(self, self.plot)

    def _set_running(self, running: bool) -> None:
        if running:
            self.steps.start()
        self.controls["Start"].setEnabled(not running)
        self.controls["Resume"].setEnabled(not running)  # until check_pair says more
        self.controls["Stop"].setEnabled(running)
        self.controls["Save model…"].setEnabled(not running and self.model is not None)
        self.controls["Use in Predict"].setEnabled(not running and self.saved is not None)
        if not running:
            self.check_pair(replan=False)

    # ------------------------------------------------------------------ saving
    def save_model(self, path, overwrite: bool = False) -> Path:
        """Save the run's final model: the last event's, which with keep="best" holds
        the best validation's weights (after a Stop too)."""
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
                saved = self.save_model(path, overwrite=True)
                show_info(f"Model{best_note(self.model)} saved to {saved}")
                self.controls.say(f"Model{best_note(self.model)} saved to {saved}.")
            except (OSError, Pix2PixError) as exc:
                show_error(f"Could not save the model: {exc}")

    def use_in_predict(self):
        """Open the Predict widget (or bring it forward) with the model just trained
        and the training source chosen as the image; returns that widget."""
        if self.saved is None:
            return None
        _, predict = self.viewer.window.add_plugin_dock_widget(PLUGIN, PREDICT)
        join_sibling(self, raise_=False)
        bring_forward(join_sibling(predict))  # a tab beside this one, in front
        predict.load(self.saved)
        source = self.pair.source.value
        if source is not None and source in predict.image.choices():
            predict.select_layer(source.name)
        return predict

    def closeEvent(self, event) -> None:  # Qt's name
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop a running training and wait for its worker (viewer closing)."""
        self.planner.cancel(wait=True)
        self.live_view.stop()
        if self.worker is not None:
            self.stop_requested.set()
            self.worker.await_workers(msecs=60_000)
