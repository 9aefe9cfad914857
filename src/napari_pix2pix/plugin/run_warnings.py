"""The warnings of a Train, Predict or Evaluate run, shown to the napari user twice: as
a notification and, whole, in the widget's warning line. Most of them are raised with
``warnings.warn`` deep in the core (a pixel size the model was not trained at, tiles
resized to fit memory, a run folder that cannot be written) in the run's worker thread.

Why not ``warnings.catch_warnings(record=True)`` in the worker: it swaps process-wide
state (the filters and ``warnings.showwarning``) and puts back, on exit, what it found
on entry. superqt already does that around every worker it runs, so with two workers at
once (the recipe planner still timing steps when Start is pressed, a Predict while a
training runs) whichever ends first restores what the other one saved: warnings then
land in the other widget, or nowhere. Instead one hook is installed, once, on
``warnings._showwarnmsg`` (the hook the warnings module documents as "replace if you
like", which catch_warnings leaves alone), and it asks a ContextVar where a warning
goes. Each worker thread sets its own sink while its job runs (``warnings_to``), so a
warning reaches the run of the thread that raised it, whatever other threads do, and
warnings of every other thread go on as before. The user's filters still apply (an
"ignore" stays ignored)."""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from napari.utils.notifications import show_warning
from qtpy.QtCore import QObject, Signal

from .layer_picker import Message

Sink = Callable[[str], None]

_SINK: ContextVar[Sink | None] = ContextVar("napari_pix2pix_warning_sink", default=None)
_INSTALL = threading.Lock()
_previous: list = []  # the hook found before ours, once ours is installed


def _show(message) -> None:
    """warnings' own hook, replaced: a warning goes to this thread's run, if it has one."""
    sink = _SINK.get()
    if sink is None:
        _previous[0](message)
    else:
        sink(str(message.message))


def _install() -> None:
    """Ours, once per process: installing it again would make it call itself."""
    with _INSTALL:
        if not _previous:
            _previous.append(warnings._showwarnmsg)
            warnings._showwarnmsg = _show


@contextlib.contextmanager
def warnings_to(sink: Sink | None) -> Iterator[None]:
    """Warnings raised in this thread (context) while inside go to ``sink`` only."""
    _install()
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)


class RunWarnings(QObject):
    """One run's warnings: ``hear`` (any thread) passes one to the widget's thread, which
    notifies each distinct one once per run (a live view predicted every few seconds
    would repeat its own) and lists them all in ``line``."""

    heard = Signal(str)

    def __init__(self, line: Message, parent) -> None:
        super().__init__(parent)
        self.line = line
        self.seen: list[str] = []
        self.heard.connect(self.show)

    def hear(self, text: str) -> None:
        """In the worker: queued to the widget (nothing, if the window has closed)."""
        with contextlib.suppress(RuntimeError):
            self.heard.emit(text)

    def clear(self) -> None:
        """A new run: its warnings only."""
        self.seen = []
        self.line.say("")

    def show(self, text: str) -> None:
        if text in self.seen:
            return
        self.seen.append(text)
        show_warning(text)
        self.line.warn("\n".join(f"Warning: {seen}" for seen in self.seen))
