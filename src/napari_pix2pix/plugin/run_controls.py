"""How a widget shows one run: its buttons, a progress bar and a status line. Each
widget has this one progress display (napari's activity dock is left alone: its
indicator repainted the whole window many times a second). The status line wraps and is
never cut (scrolling.fit_height); the run's links are in the napari theme's text colour
(Qt's default link blue is unreadable on the dark theme)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from napari.settings import get_settings
from napari.utils.theme import get_theme
from qtpy.QtCore import QEvent, Qt
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..io.run_log import LOG_NAME
from .scrolling import fit_height, wrap

REFRESH_MS = 1000  # a running job is shown at most this often: each repaint of napari's
# window costs 20-30 ms of CPU without a GPU, and per-step repaints slowed training 2x


class RunControls(QWidget):
    """A row of buttons named by ``labels``, a progress bar and a status line."""

    def __init__(self, *labels: str) -> None:
        super().__init__()
        self.buttons = {label: QPushButton(label) for label in labels}
        self.progress_bar = QProgressBar()
        self.status = wrap(QLabel())
        self.links = wrap(QLabel())  # where the run's files are, as links
        self.folder: Path | None = None  # the linked run's
        self.report: Path | None = None  # its report.html, once the run has written it
        self.links.setTextFormat(Qt.TextFormat.RichText)
        self.links.setOpenExternalLinks(True)
        self.links.setVisible(False)
        row = QHBoxLayout()
        for button in self.buttons.values():
            row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status)
        layout.addWidget(self.links)

    def __getitem__(self, label: str) -> QPushButton:
        return self.buttons[label]

    def progress(self, done: int, total: int, text: str = "%p%") -> None:
        """``total`` 0: not known yet (an empty bar, not a busy animation, which repaints).
        ``text``: what the bar reads (Qt's format: %p is the percentage). A running
        job's pace goes here, not in the status line: a new status text re-lays out
        the dock, and each layout pass repaints napari's window again (three repaints
        a second, against one for the bar)."""
        bar, value = self.progress_bar, done if total else 0
        if (bar.maximum(), bar.value(), bar.format()) == (max(1, total), value, text):
            return  # unchanged: no repaint
        # QProgressBar repaints at once on a new value; with updates off, the change is
        # painted in the window's next repaint, with the plot's (one repaint, not two)
        bar.setUpdatesEnabled(False)
        bar.setMaximum(max(1, total))
        bar.setValue(value)
        bar.setFormat(text)
        bar.setUpdatesEnabled(True)

    def finish(self, step: int) -> None:
        """A run ended at ``step``: the bar is full (its total was an estimate in a
        time-budget run, or the run stopped early on its validations)."""
        self.progress(max(1, step), max(1, step))

    def say(self, text: str) -> None:
        self.status.setText(text)
        fit_height(self.status)  # at once: the layouts follow an event-loop round later

    def link_run(self, folder: Path) -> None:
        """Links to a run's folder and its log (log.csv; the TensorBoard command)."""
        self.folder, self.report = Path(folder).resolve(), None
        self._show_links()
        self.links.setVisible(True)

    def link_report(self, report: Path | None) -> None:
        """A link to the report the run wrote at its end (None: it wrote none)."""
        if self.folder is not None and report is not None:
            self.report = Path(report).resolve()
            self._show_links()

    def _show_links(self) -> None:
        folder, log = self.folder, self.folder / LOG_NAME
        style = f'style="color: {link_color(self)};"'
        report = (
            f'report: <a href="{self.report.as_uri()}" {style}>{escape(self.report.name)}</a> · '
            if self.report is not None
            else ""
        )
        self.links.setText(
            f'Run folder: <a href="{folder.as_uri()}" {style}>{escape(str(folder))}</a> · '
            f'{report}log: <a href="{log.as_uri()}" {style}>{LOG_NAME}</a> · TensorBoard: '
            f"<code>tensorboard --logdir {escape(str(folder))}</code>"
        )
        fit_height(self.links)

    def changeEvent(self, event) -> None:  # Qt's name
        """napari restyles its window when the theme changes: the links follow."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.StyleChange and self.folder is not None:
            self._show_links()


def link_color(widget) -> str:
    """The text colour of the napari theme ``widget`` is shown in (its viewer's, found
    up its parents; else napari's setting), as '#rrggbb': links underlined in it read
    as well as the text around them on the dark and the light theme (the themes'
    accent colours do not, on one or the other)."""
    theme = None
    while widget is not None and theme is None:
        theme = getattr(getattr(widget, "viewer", None), "theme", None)
        widget = widget.parentWidget()
    if not isinstance(theme, str):
        theme = get_settings().appearance.theme
    return get_theme(theme).text.as_hex()
