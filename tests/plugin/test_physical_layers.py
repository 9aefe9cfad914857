"""Physical metadata in napari: every layer the plugin adds lies over its source, with
the source's pixel size, position and units; every warning of a run reaches the user as
a notification and in the widget."""

import threading
import warnings

import numpy as np
import pytest
from tiny_options import FAST
from widget_helpers import set_fields

import napari_pix2pix as p2p
from napari_pix2pix.engine.sample_data import make_pair
from napari_pix2pix.io.images import ImageData
from napari_pix2pix.plugin.run_warnings import warnings_to

SCALE, TRANSLATE, UNITS = (0.5, 0.25), (3.0, -2.0), ("micrometer", "micrometer")
SOURCE = "phase contrast (source)"
TARGET = "nuclei fluorescence (target)"


def assert_over_source(layer, origin=(0, 0)):
    """``layer`` has the source's pixel size and units, and starts at ``origin`` (pixels
    of the source)."""
    np.testing.assert_allclose(layer.scale[-2:], SCALE)
    np.testing.assert_allclose(layer.translate[-2:], np.add(TRANSLATE, np.multiply(origin, SCALE)))
    assert tuple(str(u) for u in layer.units[-2:]) == UNITS, layer.name


def warned(widget) -> list[str]:
    """What the widget's warning line and napari's notifications say."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    notes = [
        str(n.message)
        for n in notification_manager.records
        if n.severity == NotificationSeverity.WARNING
    ]
    return [widget.warning.value, *notes]


@pytest.fixture
def physical(train_widget, viewer):
    """The sample pair (128 x 128) at 0.5 x 0.25 µm a pixel, moved to TRANSLATE."""
    for layer in viewer.layers:
        layer.scale, layer.translate, layer.units = SCALE, TRANSLATE, UNITS
    return train_widget


def test_every_added_layer_lies_over_its_source(physical, viewer, qtbot, tmp_path):
    from napari_pix2pix.plugin.live_view import VIEW_LAYER
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    w = physical
    set_fields(w, steps=4, val_every=2)
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    assert w.saved is not None, w.controls.status.text()
    # the preview is the held-out strip, the right 10 % of X (train_val split)
    strip = 128 - round(128 * 0.1)
    assert_over_source(viewer.layers["pix2pix preview"], origin=(0, strip))
    view = viewer.layers[VIEW_LAYER]
    assert_over_source(view, origin=np.subtract(view.translate, TRANSLATE) / SCALE)

    p = PredictWidget(viewer)
    viewer.window.add_dock_widget(p, name="Predict")
    p.load(w.saved)
    p.select_layer(SOURCE)
    for run in (p.run, lambda: p.run(this_slice=True)):
        run()
        qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    p.form["uncertainty"].value = True
    p.run()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    p.evaluation.target.value = TARGET
    p.evaluate()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    added = [layer for layer in viewer.layers if "pix2pix" in layer.name]
    names = {layer.name for layer in added}
    assert {f"{SOURCE} [pix2pix]", f"{SOURCE} [pix2pix slice]"} <= names
    assert {f"{SOURCE} [pix2pix expected error]", f"{SOURCE} [pix2pix - target]"} <= names
    for layer in added:
        if layer.name != VIEW_LAYER:
            assert_over_source(layer, (0, strip) if layer.name == "pix2pix preview" else (0, 0))
    assert p.warning.value == ""  # same pixel size as in training: nothing to say


def test_a_pixel_size_the_model_was_not_trained_at_is_said(viewer, qtbot, tmp_path):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    source, target = make_pair((64, 64), seed=3)
    model = p2p.train(ImageData(source, "YX", {"Y": 0.5, "X": 0.5}, "µm"), target, **FAST)
    viewer.add_image(source, name="coarse", scale=(2.0, 2.0), units=("µm", "µm"))
    viewer.add_image(target, name="coarse target", scale=(2.0, 2.0), units=("µm", "µm"))
    p = PredictWidget(viewer)
    p.model = model
    p._set_running(False)
    p.select_layer("coarse")
    for run in (p.run, lambda: p.run(this_slice=True), p.evaluate):
        p.evaluation.target.value = "coarse target"
        run()
        qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
        qtbot.waitUntil(lambda: p.warning.value != "", timeout=5_000)
        line, *notes = warned(p)
        assert "pixel size (2 x 2 µm (Y x X)) differs" in line
        assert any("pixel size (2 x 2 µm" in n for n in notes)
        assert "Error" not in p.controls.status.text()


def test_warnings_of_the_training_set_up_are_said(train_widget, qtbot, tmp_path):
    source, target = make_pair((64, 64), seed=0)
    model = p2p.train(source, target, axes="YX", **FAST)
    model.history.losses = "not a dict"  # read in the worker: a warning, not an error
    model.save(tmp_path / "start.safetensors")
    w = train_widget
    set_fields(w, steps=2, val_fraction=0.0)
    w.init_model.value = str(tmp_path / "start.safetensors")
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=60_000)
    line, *notes = warned(w)
    assert "malformed entries (losses)" in line and line.startswith("Warning: ")
    assert any("malformed entries (losses)" in n for n in notes)


def test_a_run_hears_the_warnings_of_its_own_thread_only():
    heard, ready, go = [], threading.Event(), threading.Event()

    def run():
        with warnings_to(heard.append):
            ready.set()
            go.wait(10)
            warnings.warn("the run's", stacklevel=1)

    thread = threading.Thread(target=run)
    thread.start()
    ready.wait(10)
    # another thread's warning, and the swap of process-wide state superqt makes around
    # every worker, while the run goes on
    with pytest.warns(UserWarning, match="another thread's"):
        warnings.warn("another thread's", stacklevel=1)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
    go.set()
    thread.join(10)
    assert heard == ["the run's"]
