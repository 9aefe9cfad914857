"""The run's loss log (``history.losses``): each step's losses stay on the device
until an entry is due, then one read gives the mean of every loss since the previous
entry. Reading them at every step (five ``.item()`` calls, one of them between the D and
G updates) would make the CPU wait for a GPU at every step, instead of queueing the next
step's work while the card computes."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..errors import TrainingError
from .run_history import RunHistory

ENTRIES = 1000  # a run of N steps logs at least every N // ENTRIES steps
LOG_SECONDS = 0.5  # and at least this often (a killed run loses seconds of its log)


class LossLog:
    """Losses of the steps since the last entry, and ``latest``: the last entry's means
    (what a StepEvent shows between entries)."""

    def __init__(self, history: RunHistory, steps: int, timed: bool) -> None:
        self.losses = history.losses
        self.every = None if timed else max(1, steps // ENTRIES)
        self.window: dict[str, list[torch.Tensor]] = {}
        self.latest: dict[str, float] = {}
        self._written = time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            self.window.setdefault(name, []).append(value)

    def due(self, step: int) -> bool:
        """An entry at ``step`` by the log's own rhythm (every ``every`` steps, and at
        least every LOG_SECONDS), or at the run's first step, so that the display has a
        value."""
        if not self.latest or (self.every is not None and step % self.every == 0):
            return True
        return time.perf_counter() - self._written >= LOG_SECONDS

    def write(self, step: int, check: bool = True) -> bool:
        """The mean losses since the last entry as the entry of ``step`` (one wait for
        the device); False if no step came since. ``check``: a NaN/inf mean stops the
        run with the advice (a diverged run), after it is logged."""
        if not self.window:
            return False
        names = list(self.window)
        values = torch.stack([torch.stack(self.window[k]) for k in names]).tolist()
        self.window.clear()
        self._written = time.perf_counter()
        self.latest = {k: float(np.mean(v)) for k, v in zip(names, values)}
        self.losses.setdefault("step", []).append(step)
        for name, mean in self.latest.items():
            self.losses.setdefault(name, []).append(mean)
        bad = [k for k, v in self.latest.items() if not math.isfinite(v)]
        if bad and check:
            raise TrainingError(
                f"training diverged by step {step}: the {', '.join(bad)} loss became NaN/inf. "
                "Check the inputs for extreme values, or lower the learning rate (lr=...)."
            )
        return True
