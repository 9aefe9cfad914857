"""Train and Predict docked in a real window of a laptop's and of a desktop's size: as
tabs of one dock (not each with half the height), the run's buttons and status always in
view, and after a run the plot with its legend and step axis (issue 24, item 2)."""

import pytest
from qtpy.QtWidgets import QDockWidget, QScrollArea
from widget_helpers import set_fields

from napari_pix2pix.plugin import PLUGIN, PREDICT
from napari_pix2pix.plugin.sample import napari_sample

TRAIN = "pix2pix: Train"
DESKTOP, LAPTOP = (1600, 1170), (1280, 770)  # 1600x1200 and 1280x800 less a taskbar


@pytest.fixture
def window(make_napari_viewer):
    """A shown viewer with the sample pair."""
    viewer = make_napari_viewer(show=True)
    for data, kwargs in napari_sample():
        viewer.add_image(data[:128, :128], **kwargs)
    return viewer


def resize(viewer, qtbot, size) -> None:
    viewer.window._qt_window.move(0, 0)
    viewer.window._qt_window.resize(*size)
    qtbot.wait(200)


def dock_of(widget) -> QDockWidget:
    while not isinstance(widget, QDockWidget):
        widget = widget.parentWidget()
    return widget


def in_front(widget) -> bool:
    """Its dock is shown in the window (Qt moves a dock behind a tab out of it)."""
    dock = dock_of(widget)
    return widget.isVisible() and dock.parentWidget().rect().contains(dock.geometry())


def in_view(widget) -> bool:
    """Shown whole, without scrolling: inside its scroll area's viewport, if it is in
    one, and inside its dock, in front."""
    if not in_front(widget):
        return False
    frames = [dock_of(widget)]
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        if isinstance(parent, QScrollArea):
            frames.append(parent.viewport())
        parent = parent.parentWidget()
    for frame in frames:
        top_left = widget.mapTo(frame, widget.rect().topLeft())
        bottom_right = widget.mapTo(frame, widget.rect().bottomRight())
        if not (frame.rect().contains(top_left) and frame.rect().contains(bottom_right)):
            return False
    return True


def train(viewer, qtbot, tmp_path, steps=6, **extra):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, TRAIN)
    set_fields(widget, steps=steps, **extra)
    widget.form["checkpoint_dir"].value = str(tmp_path / "run")
    widget.controls["Start"].click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    qtbot.wait(300)  # the run's last status and warnings laid out
    return widget


def test_use_in_predict_opens_predict_as_a_tab_beside_train_in_front(window, qtbot, tmp_path):
    resize(window, qtbot, DESKTOP)
    widget = train(window, qtbot, tmp_path, val_fraction=0.0)
    predict = widget.use_in_predict()
    main = window.window._qt_window
    assert dock_of(predict) in main.tabifiedDockWidgets(dock_of(widget))
    qtbot.waitUntil(lambda: in_front(predict))
    assert not in_front(widget)  # behind its tab: Predict has the whole height
    assert dock_of(predict).height() == dock_of(widget).height() > 1000
    for control in (predict.controls["Predict"], predict.evaluation.button.native):
        qtbot.waitUntil(lambda control=control: in_view(control))  # laid out
    widget.use_in_predict()  # again: the same tab, brought forward, not a new dock
    assert len(main.tabifiedDockWidgets(dock_of(widget))) == 1


def test_the_other_widget_opened_from_the_menu_is_a_tab_too(window, qtbot):
    resize(window, qtbot, LAPTOP)
    train_dock, widget = window.window.add_plugin_dock_widget(PLUGIN, TRAIN)
    qtbot.wait(50)
    predict_dock, predict = window.window.add_plugin_dock_widget(PLUGIN, PREDICT)
    main = window.window._qt_window
    qtbot.waitUntil(lambda: predict_dock in main.tabifiedDockWidgets(train_dock))
    qtbot.waitUntil(lambda: in_front(predict))  # the one just opened, in front
    assert not in_front(widget)
    for control in (predict.controls["Predict"], predict.evaluation.button.native):
        qtbot.waitUntil(lambda control=control: in_view(control))  # laid out
    train_dock.raise_()  # its tab clicked
    qtbot.waitUntil(lambda: in_front(widget))
    assert in_view(widget.controls["Start"]) and in_view(widget.controls.status)


def test_on_a_laptop_start_and_the_status_are_in_view_before_and_after_a_run(
    window, qtbot, tmp_path
):
    resize(window, qtbot, LAPTOP)
    _, widget = window.window.add_plugin_dock_widget(PLUGIN, TRAIN)
    qtbot.wait(200)
    assert in_view(widget.controls["Start"]) and in_view(widget.controls.status)
    widget = train(window, qtbot, tmp_path, val_fraction=0.2)
    assert "Finished" in widget.controls.status.text()
    assert in_view(widget.controls["Start"]) and in_view(widget.controls.status)
    assert in_view(widget.plot)


def test_on_a_desktop_the_plot_is_in_view_after_a_run(window, qtbot, tmp_path):
    """The run's plot whole, legend and step axis included, the warnings above it
    laid out (a weak model's warning is said after the last step)."""
    resize(window, qtbot, DESKTOP)
    widget = train(window, qtbot, tmp_path, steps=10, val_fraction=0.2)
    assert widget.plot.legend and widget.warning.value  # drawn, and a warning above
    assert in_view(widget.plot)
    assert in_view(widget.controls["Start"]) and in_view(widget.controls.status)
