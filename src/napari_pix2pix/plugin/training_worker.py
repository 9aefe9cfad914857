"""The Train widget's worker: the core training loop in napari's thread worker, stopped
through its own flag so that a stop always ends after a whole step, with a checkpoint."""

from __future__ import annotations

import threading

from napari.qt.threading import GeneratorWorker, create_worker

from ..workflows.training import train_iter


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


def start_training(source, target, options: dict, stop: threading.Event) -> TrainingWorker:
    """A worker (not yet started) that trains on ``source``/``target`` with ``options``."""
    return create_worker(
        training_events,
        source,
        target,
        options,
        stop,
        _start_thread=False,
        _ignore_errors=True,
        _worker_class=TrainingWorker,
    )
