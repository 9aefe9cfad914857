"""Fixtures for tests in a real napari viewer (OpenGL under Xvfb)."""

import pytest

from napari_pix2pix.plugin.sample import napari_sample


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def train_widget(viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # keep settings and runs out of the real home
    from qtpy.QtCore import QSettings

    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path))
    from napari_pix2pix.plugin.train_widget import TrainWidget

    for data, kwargs in napari_sample():
        viewer.add_image(data[:128, :128], **kwargs)
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    return widget
