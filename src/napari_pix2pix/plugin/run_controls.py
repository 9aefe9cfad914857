"""How a widget shows one run: its buttons, a progress bar and a status line. Each
widget has this one progress display (napari's activity dock is left alone: its
indicator repainted the whole window many times a second)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..io.run_log import LOG_NAME
from .scrolling import wrap

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

    def progress(self, done: int, total: int) -> None:
        """``total`` 0: not known yet (an empty bar, not a busy animation, which repaints)."""
        bar, value = self.progress_bar, done if total else 0
        if bar.maximum() != max(1, total):
            bar.setMaximum(max(1, total))
        if bar.value() != value:  # unchanged values cost no repaint
            bar.setValue(value)

    def say(self, text: str) -> None:
        self.status.setText(text)

    def link_run(self, folder: Path) -> None:
        """Links to a run's folder and its log (log.csv; the TensorBoard command)."""
        folder = Path(folder).resolve()
        log = folder / LOG_NAME
        self.links.setText(
            f'Run folder: <a href="{folder.as_uri()}">{escape(str(folder))}</a> · '
            f'log: <a href="{log.as_uri()}">{LOG_NAME}</a> · TensorBoard: '
            f"<code>tensorboard --logdir {escape(str(folder))}</code>"
        )
        self.links.setVisible(True)
