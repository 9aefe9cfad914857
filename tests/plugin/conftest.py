"""Fixtures for tests in a real napari viewer (OpenGL under Xvfb)."""

import pytest

from napari_pix2pix.plugin.sample import napari_sample


@pytest.fixture(autouse=True)
def own_home_and_settings(tmp_path, monkeypatch):
    """Every test gets its own home folder (runs, predictions) and its own widget
    settings: what one test's widgets remember never reaches another's."""
    from qtpy.QtCore import QSettings

    monkeypatch.setenv("HOME", str(tmp_path))
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path))


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def train_widget(viewer):
    from napari_pix2pix.plugin.train_widget import TrainWidget

    for data, kwargs in napari_sample():
        viewer.add_image(data[:128, :128], **kwargs)
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    return widget
