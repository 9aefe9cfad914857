"""Train and Predict docked together as tabs of one dock, not stacked: napari stacks a
second dock under the first in the right-hand area, and each got half the height (a
240 px Train that scrolled over a half-empty Predict). As tabs, each has the whole
height, one click away from the other. Only Qt's public QMainWindow API is used; the
user can still drag a tab out, and a floating or separately placed dock is left alone."""

from __future__ import annotations

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QDockWidget, QMainWindow, QWidget

SIBLING = "pix2pix_dock"  # the dynamic property that marks a dock holding a pix2pix widget


def dock_of(widget: QWidget) -> QDockWidget | None:
    """The dock ``widget`` is in (napari wraps it), or None (not docked)."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def join_later(widget: QWidget) -> None:
    """``join_sibling`` once napari has docked ``widget`` (it is built first)."""
    QTimer.singleShot(0, lambda: _join_if_alive(widget))


def _join_if_alive(widget: QWidget) -> None:
    try:
        join_sibling(widget)
    except RuntimeError:  # the widget was deleted before the event loop came round
        pass


def join_sibling(widget: QWidget, raise_: bool = True) -> QDockWidget | None:
    """Mark ``widget``'s dock as a pix2pix one and, if another pix2pix dock is open in
    the same area of the window (not floating), make the two tabs of one dock with
    ``widget``'s in front (``raise_``). Returns ``widget``'s dock. Done once a dock: a
    user who moved the docks apart keeps them apart."""
    dock = dock_of(widget)
    if dock is None or dock.property(SIBLING):
        return dock
    dock.setProperty(SIBLING, True)
    main = dock.parentWidget()
    if not isinstance(main, QMainWindow) or dock.isFloating():
        return dock
    area = main.dockWidgetArea(dock)
    for other in main.findChildren(QDockWidget):
        if (
            other is not dock
            and other.property(SIBLING)
            and other.isVisibleTo(main)
            and not other.isFloating()
            and main.dockWidgetArea(other) == area
        ):
            main.tabifyDockWidget(other, dock)
            break
    if raise_:
        bring_forward(dock)
    return dock


def bring_forward(dock: QDockWidget | None) -> None:
    """Show ``dock`` and make its tab the current one."""
    if dock is None:
        return
    dock.show()
    dock.raise_()
