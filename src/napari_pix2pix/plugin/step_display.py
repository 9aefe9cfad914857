"""Training steps as the Train widget shows them: the bar, which reads the step, the
pace and the time left, and the loss plot's new points, all at most every two seconds."""

from __future__ import annotations

from qtpy.QtCore import QTimer

from ..engine.display_text import duration_text
from ..engine.events import StepEvent
from .run_controls import REFRESH_MS

# a run's bar and plot are repainted this often (its first step at once): each repaint
# of napari's window is 8-10 ms of the GUI thread without a GPU, about 1 % of a run's
# time at one a second (benchmarks/gui.py)
TRAINING_REFRESH_MS = 2 * REFRESH_MS


class StepDisplay:
    """Steps are ``add``-ed as they come (every one reaches the plot's data) and shown
    by a timer between ``start`` and ``stop``; ``quiet`` keeps the status line for a
    message such as "Stopping after this step…"."""

    def __init__(self, controls, plot, parent) -> None:
        self.controls, self.plot = controls, plot
        self.first: tuple[int, float] | None = None  # (step, elapsed): the pace's start
        self.last: StepEvent | None = None  # received, not yet shown
        self.quiet = False
        self.said: str | None = None  # the status line, set once a run
        self.timer = QTimer(parent)
        self.timer.setInterval(TRAINING_REFRESH_MS)
        self.timer.timeout.connect(self.show)

    def start(self) -> None:
        self.first, self.last, self.quiet, self.said = None, None, False, None
        self.timer.start()

    def stop(self) -> None:
        """The last step shown; the bar keeps the steps done, without a time left."""
        self.show()
        self.timer.stop()
        if self.first is not None:
            bar = self.controls.progress_bar
            done, total = bar.value(), bar.maximum()
            self.controls.progress(done, total, f"{done:,}/{total:,} steps")

    def add(self, event: StepEvent) -> None:
        if event.logged:  # a new entry of the loss log
            self.plot.add_losses(event.step, event.losses, repaint=False)
        self.last = event
        if self.first is None:
            self.first = (event.step, event.elapsed)
            self.show()  # "Preparing data…" gives way at once

    def show(self) -> None:
        """The latest step, with the pace and time left, in the bar; the plot."""
        event, self.last = self.last, None
        if event is None:
            return
        text = f"step {event.step:,}/{event.total:,}{self.pace(event)}"
        self.controls.progress(event.step, event.total, text)
        self.plot.update()
        if not self.quiet and self.said is None:  # once: the status line stays put
            self.said = "Training: the plot below shows the losses and validations."
            self.controls.say(self.said)

    def pace(self, event: StepEvent) -> str:
        """' · 0.27 s/step · 19 min left', measured over this run's steps so far."""
        if self.first is None:
            return ""
        steps, seconds = event.step - self.first[0], event.elapsed - self.first[1]
        if steps <= 0:
            return ""
        pace = seconds / steps
        return f" · {pace:.2f} s/step · {duration_text((event.total - event.step) * pace)} left"
