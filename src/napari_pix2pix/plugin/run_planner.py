"""The line under the training pairs that says, before Start, which recipe the run
will train and about how long it will take: ``plan_run`` in a worker thread, asked
again (after a pause) whenever the pairs or options change; only the latest answer is
shown, so a slow plan never overwrites a newer one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace

from magicgui.widgets import Label
from napari.qt.threading import WorkerBase, create_worker
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

from ..errors import Pix2PixError
from ..workflows.run_plan import RunPlan, plan_run
from .run_warnings import warnings_to
from .scrolling import wrap

DELAY_MS = 800  # typing in a field asks for one plan, not one per key


class RunPlanner:
    """``inputs()`` gives (source, target, options) for ``plan_run``."""

    def __init__(self, inputs: Callable[[], tuple]) -> None:
        self.inputs = inputs
        self.label = Label(value="")
        wrap(self.label.native)
        self.plan: RunPlan | None = None
        self.last: RunPlan | None = None  # the latest plan shown
        self.asked = 0  # numbers the requests; an answer to an older one is dropped
        self.worker = None
        self.timer = QTimer(self.label.native)  # ends with the widget: no plan after that
        self.timer.setSingleShot(True)
        self.timer.setInterval(DELAY_MS)
        self.timer.timeout.connect(self._plan)
        # a plan still timing steps when napari quits, or after the widget is gone, would
        # emit into deleted signals (the process aborts): both wait for it
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(lambda: self.cancel(wait=True))
        self.label.native.destroyed.connect(lambda *_: WorkerBase.await_workers(msecs=60_000))

    def request(self, ready: bool) -> None:
        """Plan again shortly, or (``ready`` false: nothing trainable chosen) say nothing."""
        self.asked += 1
        self.plan = None
        if not ready:
            self.timer.stop()
            self.label.value = ""
            return
        self.label.value = "Recipe: timing a few steps…"
        self.timer.start()

    def started(self) -> None:
        """A run starts: no more timing; the line keeps the recipe (the status line
        shows the run's own pace from its first steps)."""
        self.cancel()
        plan = self.plan or self.last  # Start may have asked again (a new run folder)
        self.label.value = f"Recipe: {plan.recipe_text()}" if plan else ""

    def cancel(self, wait: bool = False) -> None:
        """Drop the pending request and any answer on its way (``wait``: until the
        worker thread has ended, for a closing window)."""
        self.asked += 1
        with contextlib.suppress(RuntimeError):  # the widget (and timer) already gone
            self.timer.stop()
        if wait and self.worker is not None:
            WorkerBase.await_workers(msecs=60_000)

    def _plan(self) -> None:
        if self.worker is not None:  # one plan at a time: ask again when it ends
            self.timer.start()
            return
        asked = self.asked
        try:
            source, target, options = self.inputs()
        except Pix2PixError as exc:
            self.label.value = f"Cannot train with these settings: {exc}"
            return
        worker = create_worker(
            _plan_and_notes, source, target, **options, _start_thread=False, _ignore_errors=True
        )
        worker.returned.connect(lambda plan: self._answer(asked, plan, None))
        worker.errored.connect(lambda exc: self._answer(asked, None, exc))
        worker.finished.connect(self._finished)
        self.worker = worker
        worker.start()

    def _answer(self, asked: int, plan: RunPlan | None, exc: Exception | None) -> None:
        if asked != self.asked:
            return
        self.plan = plan
        self.last = plan or self.last
        with contextlib.suppress(RuntimeError):  # a widget closed while the plan ran
            self._show(plan, exc)

    def _show(self, plan: RunPlan | None, exc: Exception | None) -> None:
        if plan is not None:
            notes = "".join(f"\nWarning: {note}" for note in plan.notes)
            self.label.value = f"Recipe: {plan.describe()}{notes}"
        elif isinstance(exc, Pix2PixError):
            self.label.value = f"Cannot train with these settings: {exc}"
        else:
            self.label.value = f"Could not work out the recipe ({type(exc).__name__}: {exc})"

    def _finished(self) -> None:
        self.worker = None


def _plan_and_notes(source, target, **options) -> RunPlan:
    """``plan_run`` in the worker, with the warnings the run would give before its first
    step (an option it ignores, a patch larger than the images...) among its notes."""
    heard: list[str] = []
    with warnings_to(heard.append):
        plan = plan_run(source, target, **options)
    notes = tuple(dict.fromkeys([*heard, *plan.notes]))  # each once, in order
    return replace(plan, notes=notes)
