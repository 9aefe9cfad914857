"""The Train widget's worker: the core training loop in napari's thread worker, stopped
through its own flag so that a stop always ends after a whole step, with a checkpoint."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from napari.qt.threading import GeneratorWorker, create_worker

from ..engine.events import FinishedEvent, ValidationEvent
from ..engine.networks import invalid_weights
from ..errors import Pix2PixError
from ..io.checkpoint import MODEL_NAME
from ..io.model_file import save_or_rescue
from ..workflows.training import train_iter
from .live_view import VIEW_EVERY_S, ViewWatch, predict_view
from .run_warnings import Sink, warnings_to


class WorkerFailed(Exception):
    """Carries an error out of the training worker. superqt's GeneratorWorker takes any
    RuntimeError raised by the generator (our TrainingError and DeviceError, CUDA errors)
    for a deleted worker and drops it without a signal, which would leave the widget
    "running" forever; wrapped, it reaches ``errored``."""


@dataclass
class Saved:
    """Where the run's model went when the run ended, or why it could not be saved."""

    path: Path | None = None
    note: str = ""
    error: str = ""


def best_step(model) -> int | None:
    """The step whose validation's weights the model holds (keep="best"), else None."""
    best = model.history.best if model is not None else None
    return best.step if best and model.history.kept == "best" else None


def best_note(model, before: str = " (", after: str = ")") -> str:
    """' (best of step N)' for a model that holds its best validation's weights."""
    step = best_step(model)
    return "" if step is None else f"{before}best of step {step}{after}"


def training_events(source, target, options: dict, stop: threading.Event, watch=None):
    """The worker's generator: the core loop, closed cleanly (checkpoint written) when
    ``stop`` is set; the Stop button therefore acts within one training step. However
    the run ends (finished, Stop, the viewer closing, an error), the model trained so far
    is saved here in the worker, where no closed window can prevent it, as
    ``model.safetensors`` in the run folder; its ``Saved`` is the worker's return value.
    With a ``ViewWatch``, the region in view is predicted after every validation (and
    when the view changes, every VIEW_EVERY_S at most), between two training steps."""
    events = train_iter(source, target, **options)
    model, shown, last = None, -1, 0.0
    try:
        for event in events:
            model = event.model
            yield event
            if stop.is_set():
                break
            view, version = watch.get() if watch is not None else (None, -1)
            validated = isinstance(event, (ValidationEvent, FinishedEvent))
            moved = version != shown and time.monotonic() - last >= VIEW_EVERY_S
            if view is not None and (validated or moved):
                shown, last = version, time.monotonic()
                preview = predict_view(model, view, event.step)
                if preview is not None:
                    yield preview
    except RuntimeError as exc:
        raise WorkerFailed(str(exc)) from exc
    finally:
        events.close()  # writes the checkpoint and keeps the best weights in ``model``
        saved = save_run_model(model, options.get("checkpoint_dir"))
    return saved


def save_run_model(model, folder) -> Saved:
    """The run folder's model, replaced as runs go on (if it cannot be written there, it
    is rescued elsewhere); nothing for a run without a step or with invalid weights."""
    if model is None or folder is None or not model.history.steps_done:
        return Saved()
    if invalid_weights(model.generator.state_dict()):
        return Saved(error="its weights are not finite (the last checkpoint is intact)")
    try:
        path, note = save_or_rescue(model, Path(folder) / MODEL_NAME, True)
    except (OSError, Pix2PixError) as exc:
        return Saved(error=str(exc))
    return Saved(path, note)


class TrainingWorker(GeneratorWorker):
    """napari cancels every worker when its window closes (``quit``). Abandoning the
    training generator there would skip its clean-up; setting its stop flag (the fourth
    argument of ``training_events``) lets it finish the step and write its checkpoint."""

    def __init__(self, func, *args, **kwargs) -> None:
        super().__init__(func, *args, **kwargs)
        self.stop_event: threading.Event = args[3]

    def quit(self) -> None:
        self.stop_event.set()

    sink: Sink | None = None  # where the run's warnings go (run_warnings.py)

    def work(self):
        """superqt ends its loop without closing the generator when a signal cannot be
        emitted (a closed window deleted the receiver); closing it here runs the run's
        clean-up (checkpoint, model saved) in this thread all the same. Warnings of the
        whole run, clean-up included, go to ``sink``."""
        with warnings_to(self.sink):
            try:
                return super().work()
            finally:
                self._gen.close()


def start_training(
    source,
    target,
    options: dict,
    stop: threading.Event,
    watch: ViewWatch | None = None,
    sink: Sink | None = None,
) -> TrainingWorker:
    """A worker (not yet started) that trains on ``source``/``target`` with ``options``
    (and previews the view ``watch`` follows); the run's warnings go to ``sink``."""
    worker = create_worker(
        training_events,
        source,
        target,
        options,
        stop,
        watch,
        _start_thread=False,
        _ignore_errors=True,
        _worker_class=TrainingWorker,
    )
    worker.sink = sink
    return worker
