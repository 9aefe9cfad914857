"""Dock widgets that scroll: napari's docks do not, so a tall form (Advanced open, the
plot, a few pairs) would stretch the whole window past a 1200 px screen. And text that
wraps to the dock's width."""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

MIN_HEIGHT = 240  # what a dock keeps at least, however little room the window has


def scrolling_layout(widget: QWidget, footer: QWidget | None = None) -> QVBoxLayout:
    """The layout to fill ``widget`` with, inside a vertical scroll area that takes all
    of ``widget`` but ``footer``, pinned below it: always in view, however the dock is
    sized or scrolled (a run's buttons and status)."""
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
    layout = QVBoxLayout(inner)
    if footer is not None:
        pinned = QVBoxLayout()  # with the scrolling contents' margins at its sides
        left, _, right, bottom = layout.getContentsMargins()
        pinned.setContentsMargins(left, 0, right, bottom)
        pinned.addWidget(footer)
        outer.addLayout(pinned)
    return layout


def scroll_to(widget: QWidget, child: QWidget) -> None:
    """Scroll ``widget``'s area just enough to show ``child`` whole (its top, if it is
    taller than the view), and keep it so as the contents above it grow (wrapped
    warnings take their height an event-loop round or more later), until the user
    scrolls."""
    area = widget.findChild(QScrollArea)
    keeper = area.findChild(_KeepInView)
    if keeper is None:
        keeper = _KeepInView(area)
    keeper.child = child
    keeper.show_child()


class _KeepInView(QObject):
    """What ``scroll_to`` keeps in view of a scroll area (``child``; None once the
    user has scrolled)."""

    def __init__(self, area: QScrollArea) -> None:
        super().__init__(area)
        self.area = area
        self.child: QWidget | None = None
        bar = area.verticalScrollBar()
        bar.rangeChanged.connect(self.show_child)
        bar.actionTriggered.connect(self.let_go)  # the user scrolled (wheel, bar, keys)
        bar.sliderPressed.connect(self.let_go)

    def show_child(self, *_) -> None:
        if self.child is not None:
            self.area.widget().layout().activate()  # positions as they will be
            self.area.ensureWidgetVisible(self.child, 0, 0)

    def let_go(self, *_) -> None:
        self.child = None


def fit_width(widget: QWidget) -> None:
    """No horizontal scrolling: the dock is as wide as its widest row needs."""
    area = widget.findChild(QScrollArea)
    inner = area.widget()
    bar = area.verticalScrollBar().sizeHint().width()
    area.setMinimumWidth(inner.minimumSizeHint().width() + bar)


def wrap(label: QLabel) -> QLabel:
    """Word-wrap ``label`` across the dock's width (magicgui's labels have a fixed width:
    wrapped, their text was cut), never shorter than its wrapped text (``fit_height``)."""
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    label.installEventFilter(_KeepWhole(label))
    return label


def fit_height(label: QLabel) -> None:
    """Keep a wrapped label's minimum height at what its text needs at its width.

    A wrapped QLabel's own minimum is one line; its real height comes from
    height-for-width, which the dock's scroll area applies through the nested layouts
    (label, run controls, scroll contents) an event-loop round or more after the text
    changes: a layout activated in between, or a window resized meanwhile, gave a new,
    longer text the old text's height, and its last lines were cut (a long status after
    a Resume was clipped vertically). With this minimum no layout can squeeze it."""
    if not label.isVisible() or not label.wordWrap():
        return  # not laid out yet: its width is not the dock's (done when shown)
    key = (label.text(), label.width(), label.font().toString())
    if getattr(label, "_fitted", None) == key:
        return  # measured already (a repaint, a squeeze the minimum undoes)
    label._fitted = key
    label.setMinimumHeight(0)  # a QLabel's height for a width is at least its minimum
    label.setMinimumHeight(max(0, label.heightForWidth(label.width())))


class _KeepWhole(QObject):
    """``fit_height`` whenever a wrapped label is shown, resized (its width changes the
    lines) or painted (after a text change: a magicgui Label says nothing else)."""

    EVENTS = (QEvent.Type.Show, QEvent.Type.Resize, QEvent.Type.Paint)

    def eventFilter(self, watched, event) -> bool:  # Qt's name
        if event.type() in self.EVENTS:
            fit_height(watched)
        return False
