"""How the Train widget ends a run: a long final status shown whole (after a Resume too),
the bar at 100 % when a time-budget run finishes, run-folder links in the theme's colour."""

import pytest
from widget_helpers import set_fields


def whole(label) -> bool:
    """The label is as tall as its wrapped text needs at its width, and the layout
    cannot squeeze it below that."""
    need = label.heightForWidth(label.width())
    return label.wordWrap() and label.height() >= need and label.minimumHeight() >= need


def dock_of(widget):
    from qtpy.QtWidgets import QDockWidget

    while not isinstance(widget, QDockWidget):
        widget = widget.parentWidget()
    return widget


def test_the_final_status_after_a_resume_is_shown_whole(train_widget, viewer, qtbot, tmp_path):
    from qtpy.QtCore import Qt

    w = train_widget
    window = viewer.window._qt_window
    window.resize(1600, 1000)
    viewer.window.show()  # laid out as in a session: the dock's width, its scroll area
    set_fields(w, steps=40, val_fraction=0.0)
    w.form["checkpoint_dir"].value = str(tmp_path / "a run folder with a long name" / "run")
    w.controls["Start"].click()
    # stopped at its first step shown (at once; the pace comes two seconds later, and a
    # fast machine could end the 40 steps before it)
    qtbot.waitUntil(lambda: w.controls.progress_bar.value() >= 1, timeout=60_000)
    w.controls["Stop"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=30_000)
    w.controls["Resume"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=60_000)
    status = w.controls.status
    assert status.text().startswith("Finished 40 steps") and "auto-saved to" in status.text()
    lines = status.heightForWidth(status.width()) // status.fontMetrics().lineSpacing()
    assert lines >= 3  # long enough to wrap in the dock
    # shown whole at once, before Qt's layouts have caught up with the new text
    assert status.minimumHeight() >= status.heightForWidth(status.width())
    qtbot.waitUntil(lambda: whole(status) and whole(w.controls.links), timeout=5_000)
    # a wider dock, then back to the narrowest: whole at each width
    dock, narrow = dock_of(w), dock_of(w).width()
    for width in (narrow + 300, narrow):
        window.resizeDocks([dock], [width], Qt.Orientation.Horizontal)
        qtbot.waitUntil(lambda: abs(dock.width() - width) < 50, timeout=5_000)
        qtbot.waitUntil(lambda: whole(status) and whole(w.controls.links), timeout=5_000)


def test_a_time_budget_run_ends_at_100_percent(train_widget, qtbot, tmp_path):
    w = train_widget
    set_fields(w, steps=100_000, val_fraction=0.0, time_budget=3.0)
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=60_000)
    done = w.model.history.steps_done
    assert w.controls.status.text().startswith(f"Finished {done} steps")
    bar = w.controls.progress_bar
    # the expected total was an estimate while the budget ran; the bar ends full
    assert bar.value() == bar.maximum() == done and bar.text() == f"{done:,}/{done:,} steps"


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_run_folder_links_take_the_theme_text_colour(theme, train_widget, viewer, tmp_path):
    from napari.utils.theme import get_theme
    from qtpy.QtGui import QColor, QTextDocument
    from qtpy.QtWidgets import QApplication

    controls = train_widget.controls
    other = "light" if theme == "dark" else "dark"
    viewer.theme = other
    controls.link_run(tmp_path)
    viewer.theme = theme  # changed after the links were made: they follow it
    QApplication.processEvents()
    colour = QColor(get_theme(theme).text.as_hex())
    doc = QTextDocument()
    doc.setHtml(controls.links.text())
    anchors = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().isAnchor():
                anchors.append(fragment.charFormat().foreground().color())
            it += 1
        block = block.next()
    assert len(anchors) == 2 and all(c == colour for c in anchors)
    # drawn so: the links' underlines are in the theme's text colour, nothing is blue
    controls.links.resize(700, controls.links.heightForWidth(700))
    image = controls.links.grab().toImage()
    pixels = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())]
    assert sum(p == colour for p in pixels) > 50
    assert not any(p.blue() > max(p.red(), p.green()) + 80 for p in pixels)
