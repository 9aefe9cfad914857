"""Dock widgets that scroll: napari's docks do not, so a tall form (Advanced open, the
plot, a few pairs) would stretch the whole window past a 1200 px screen. And text that
wraps to the dock's width."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

MIN_HEIGHT = 240  # what a dock keeps at least, however little room the window has


def scrolling_layout(widget: QWidget) -> QVBoxLayout:
    """The layout to fill ``widget`` with, inside a vertical scroll area that takes all
    of ``widget``."""
    inner = QWidget()
    area = QScrollArea(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setMinimumHeight(MIN_HEIGHT)
    area.setWidget(inner)
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    return QVBoxLayout(inner)


def fit_width(widget: QWidget) -> None:
    """No horizontal scrolling: the dock is as wide as its widest row needs."""
    area = widget.findChild(QScrollArea)
    inner = area.widget()
    bar = area.verticalScrollBar().sizeHint().width()
    area.setMinimumWidth(inner.minimumSizeHint().width() + bar)


def wrap(label: QLabel) -> QLabel:
    """Word-wrap ``label`` across the dock's width (magicgui's labels have a fixed width:
    wrapped, their text was cut)."""
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return label
