"""Ctrl-C and SIGTERM stop a run between two training steps, never inside one.

Python raises KeyboardInterrupt wherever the signal finds the program, and a training
step is where it almost always is: stopped mid-step, the weights are half updated and
no checkpoint can be written, so ``resume`` would lose everything since the last one.
While a step (with its log rows, best model and checkpoint) runs, ``StepsFinish`` holds
the signal and raises it once the step is whole; the run then writes the checkpoint of
that step (train_loop's clean-up). A second signal while one is held stops at once, for
a step that never ends. Only handlers that Python code installed are held (Python's
Ctrl-C, the CLI's SIGTERM); signals off the main thread (the napari worker) are none of
ours: napari stops its run through the generator, between steps too."""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StepsFinish:
    """A context in which SIGINT and SIGTERM wait for its end."""

    def __enter__(self) -> StepsFinish:
        self.held: int | None = None
        self.previous: dict = {}
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                handler = signal.getsignal(signum)
                if callable(handler):  # not SIG_DFL or SIG_IGN, nor one set in C
                    self.previous[signum] = handler
                    signal.signal(signum, self._hold)
        return self

    def _hold(self, signum, frame) -> None:
        if self.held is not None:  # asked twice: now, mid-step (no checkpoint of it)
            self.previous[signum](signum, frame)
        self.held = signum

    def __exit__(self, kind, exc, tb) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        if self.held is not None and kind is None:
            self.previous[self.held](self.held, None)  # raises KeyboardInterrupt, as it would have
