"""The napari plugin driven as a user would, in a real viewer (OpenGL under Xvfb)."""

import subprocess
import sys
import time

import dask.array as da
import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("qtpy")

import napari_pix2pix as p2p
from napari_pix2pix.engine.sample_data import make_pair
from napari_pix2pix.plugin import reader as napari_io
from napari_pix2pix.plugin.sample import napari_sample

TINY_FIELDS = dict(
    patch_size=32,
    depth=4,
    base_channels=8,
    batch_size=4,
    disc_layers=2,
    disc_channels=8,
    device="cpu",
    checkpoint_every=None,
)


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
    widget.settings_folder = tmp_path
    return widget


def set_fields(widget, steps, **extra):
    fields = {**TINY_FIELDS, "gan_mode": "vanilla", **extra, "steps": steps}
    for key, value in fields.items():
        widget.form[key].value = value


def test_manifest_validates():
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-pix2pix", "--imports"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_train_in_the_gui_then_predict_with_scale(train_widget, viewer, qtbot, tmp_path):
    from qtpy.QtCore import QTimer

    from napari_pix2pix.plugin.predict_widget import PredictWidget

    w = train_widget
    assert w.pair.source.value.name == "phase contrast (source)"
    assert w.pair.target.value.name == "nuclei fluorescence (target)"
    assert w.pair.source.axes_text() == "YX" and w.pair.message.value == ""
    set_fields(w, steps=150)
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    # measure how long the Qt event loop is blocked while training runs
    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    started = time.perf_counter()
    w.controls["Start"].click()
    assert w.worker is not None and not w.controls["Start"].isEnabled()
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    duration = time.perf_counter() - started
    timer.stop()
    gaps = np.diff(ticks)
    print(
        f"\nGUI responsiveness: training {duration:.1f} s, {len(ticks)} event-loop ticks, "
        f"largest gap {gaps.max() * 1000:.0f} ms, "
        f"99th percentile {np.percentile(gaps, 99) * 1000:.0f} ms"
    )
    assert gaps.max() < duration / 3  # the GUI was never frozen for the run
    assert w.plot.point_count() == 150
    assert len(w.plot.val_steps) >= 1 and all(np.isfinite(w.plot.metrics["psnr"]))
    assert "pix2pix preview" in viewer.layers
    assert (tmp_path / "run" / "model.safetensors").is_file()  # auto-saved
    saved = w.save_model(tmp_path / "mine.safetensors")
    assert p2p.load_model(saved).history["steps_done"] == 150

    # Predict widget: a stack with non-unit scale and translate
    stack = np.stack([viewer.layers["phase contrast (source)"].data] * 3)
    viewer.add_image(stack, name="stack", scale=(2.0, 0.5, 0.5), translate=(1.0, 10.0, 20.0))
    p = PredictWidget(viewer)
    viewer.window.add_dock_widget(p, name="Predict")
    p.load(saved)
    assert "steps trained: 150" in p.chooser.info.value
    assert p.form["tile_size"].value is None  # the model's own patch size (32)
    p.select_layer("stack")
    assert p.image.axes_text() == "ZYX"
    p.form["tile_size"].value = 64
    p.controls["Predict"].click()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    out = viewer.layers["stack [pix2pix]"]
    assert out.data.shape == stack.shape and out.data.dtype == np.float32
    np.testing.assert_allclose(out.scale, (2.0, 0.5, 0.5))
    np.testing.assert_allclose(out.translate, (1.0, 10.0, 20.0))
    assert tuple(out.axis_labels) == ("Z", "Y", "X")
    assert out.contrast_limits[1] > out.contrast_limits[0]
    bar = p.controls.progress_bar
    assert bar.value() == bar.maximum() > 0


def test_pair_mismatch_is_explained_in_the_widget(train_widget, viewer):
    viewer.add_image(np.zeros((40, 50), np.uint16), name="other")
    w = train_widget
    w.pair.target.value = "other"
    assert "not aligned" in w.pair.message.value
    assert not w.controls["Start"].isEnabled()
    w.pair.target.value = w.pair.source.value
    assert "same layer" in w.pair.message.value
    w.pair.target.value = "nuclei fluorescence (target)"
    w.pair.source.axes.value = "ZYX"
    assert "has 3 letters" in w.pair.message.value


def test_stop_is_prompt_and_resume_continues(train_widget, qtbot, tmp_path):
    w = train_widget
    set_fields(w, steps=60, checkpoint_every=None, val_fraction=0.0)
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.plot.point_count() >= 5, timeout=60_000)
    t0 = time.perf_counter()
    n0 = w.plot.point_count()
    w.controls["Stop"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=30_000)
    stop_seconds = time.perf_counter() - t0
    done = w.model.history["steps_done"]
    assert done < 60
    assert w.plot.point_count() - n0 <= 2  # it stopped within a step (one may be in flight)
    assert (tmp_path / "run" / "checkpoint.safetensors").is_file()
    print(f"\nStop took {stop_seconds * 1000:.0f} ms; stopped at step {done}")
    w.controls["Resume"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=60_000)
    assert w.model.history["steps_done"] == 60
    assert w.plot.steps[-1] == 60 and w.plot.steps[n0 + (done - n0)] == done + 1


def test_settings_persist_between_sessions(train_widget, viewer):
    from napari_pix2pix.plugin.train_widget import TrainWidget

    train_widget.form["steps"].value = 1234
    train_widget.form["gan_mode"].value = "lsgan"
    train_widget.form["gan_warmup"].value = 0.3
    train_widget.save_settings()
    again = TrainWidget(viewer)
    assert again.form["steps"].value == 1234 and again.form["gan_mode"].value == "lsgan"
    options = again.options()
    assert options["gan_warmup"] == pytest.approx(0.3) and options["foreground_crops"] == 0.5


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("patch size 40", "multiple of 2**depth"),  # InputError from the config
        ("cuda without a GPU", "no usable CUDA GPU"),  # DeviceError: a RuntimeError
        ("NaN in the source", "NaN or infinite"),
        ("constant target", "constant"),
    ],
)
def test_training_errors_are_notifications(problem, expected, train_widget, viewer, qtbot):
    """Every kind of failure ends the worker with a message; the viewer keeps its data.
    (superqt drops RuntimeErrors raised by generator workers: DeviceError and
    TrainingError must still arrive.)"""
    import torch

    w = train_widget
    set_fields(w, steps=5)
    source = w.pair.source.value.data
    if problem == "patch size 40":
        w.form["patch_size"].value = 40
    elif problem == "cuda without a GPU":
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
        w.form["device"].value = "cuda"
    elif problem == "NaN in the source":
        bad = source.astype(np.float32)
        bad[5, 5] = np.nan
        viewer.add_image(bad, name="with NaN")
        w.pair.source.value = "with NaN"
    else:
        viewer.add_image(np.full_like(source, 7), name="flat")
        w.pair.target.value = "flat"
    layers = [layer.name for layer in viewer.layers]
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=30_000)
    status = w.controls.status.text()
    assert "Error" in status and expected in status
    assert [layer.name for layer in viewer.layers] == layers  # nothing lost or added
    assert w.controls["Start"].isEnabled()  # ready for another try


def test_closing_the_viewer_stops_training_cleanly(train_widget, viewer, qtbot, tmp_path):
    w = train_widget
    set_fields(w, steps=2000, val_fraction=0.0)
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.plot.point_count() >= 5, timeout=60_000)
    worker = w.worker
    viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=30_000)
    from napari_pix2pix.io.checkpoint import load_checkpoint

    step = load_checkpoint(tmp_path / "run").step
    assert 5 <= step < 2000  # stopped after the step in flight, with a checkpoint of it


def test_rgb_layer_is_a_three_channel_source(train_widget, viewer):
    w = train_widget
    gray = w.pair.source.value.data
    viewer.add_image(np.stack([gray] * 3, axis=-1).astype(np.uint8), name="rgb", rgb=True)
    w.pair.source.value = "rgb"
    assert w.pair.source.axes_text() == "YXC"
    assert w.check_pair() and w.pair.message.value == ""


def test_predict_on_a_lazy_layer_and_cancel(viewer, trained, qtbot, tmp_path, monkeypatch):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    monkeypatch.setenv("HOME", str(tmp_path))

    path = trained.save(tmp_path / "m.safetensors")
    source, _ = make_pair((128, 128), seed=5, nucleus_radius=5.0)
    lazy = da.from_array(np.stack([source] * 4), chunks=(1, 64, 64))
    viewer.add_image(lazy, name="lazy")
    p = PredictWidget(viewer)
    p.load(path)
    p.select_layer("lazy")
    p.run()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    result = viewer.layers["lazy [pix2pix]"].data
    assert isinstance(result, da.Array) and result.shape == (4, 128, 128)  # streamed to zarr
    assert list((tmp_path / "napari-pix2pix" / "predictions").glob("lazy-*.zarr"))
    np.testing.assert_allclose(
        viewer.layers["lazy [pix2pix]"].data[0],
        p2p.predict(trained, source, device="cpu"),
        atol=1e-3,
    )
    # cancel: tiny tiles make many batches; no layer is added
    big = np.tile(source, (8, 8))
    viewer.add_image(big, name="big")
    p.select_layer("big")
    p.form["tile_size"].value = 16
    p.form["overlap"].value = 0.5
    p.form["batch_size"].value = 1
    p.run()
    qtbot.waitUntil(lambda: p.state["done"] > 0, timeout=30_000)
    p.controls["Cancel"].click()
    qtbot.waitUntil(lambda: p.worker is None, timeout=30_000)
    assert "big [pix2pix]" not in viewer.layers and p.controls.status.text() == "Cancelled."
    assert p.state["done"] < p.state["total"]


def test_predict_errors_are_explained(viewer, trained, qtbot):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    source, _ = make_pair((64, 64), seed=5, nucleus_radius=5.0)
    viewer.add_image(np.stack([source] * 3, axis=-1).astype(np.uint8), name="rgb", rgb=True)
    p = PredictWidget(viewer)
    p.model = trained
    p._set_running(False)
    p.select_layer("rgb")
    p.run()
    qtbot.waitUntil(lambda: p.worker is None, timeout=30_000)
    status = p.controls.status.text()
    assert "3 channel(s)" in status and "expects 1" in status
    assert [layer.name for layer in viewer.layers] == ["rgb"]


def test_confidence_layer(viewer, trained, qtbot):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    source, _ = make_pair((64, 96), seed=5, nucleus_radius=5.0)
    viewer.add_image(np.stack([source, source[::-1]]), name="stack", scale=(2.0, 0.5, 0.5))
    p = PredictWidget(viewer)
    p.model = trained
    p._set_running(False)
    p.select_layer("stack")
    p.form["uncertainty"].value = True
    p.run()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    pred, spread = viewer.layers["stack [pix2pix]"], viewer.layers["stack [pix2pix spread]"]
    assert spread.data.shape == pred.data.shape == (2, 64, 96)
    assert list(spread.scale) == [2.0, 0.5, 0.5] and spread.colormap.name == "magma"
    expected_pred, expected_spread = p2p.predict(
        trained,
        np.stack([source, source[::-1]]),
        axes="ZYX",
        uncertainty=True,
        device="cpu",
        tile_size=p.form["tile_size"].value,
        overlap=p.form["overlap"].value,
    )
    np.testing.assert_allclose(spread.data, expected_spread, atol=1e-3)
    np.testing.assert_allclose(pred.data, expected_pred, atol=1e-3)


def test_bad_model_file_is_explained(viewer, tmp_path):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04not a model")
    p = PredictWidget(viewer)
    p.load(bad)
    assert p.model is None and "not a safetensors" in p.chooser.info.value
    assert not p.controls["Predict"].isEnabled()


def test_layers_menu_command_opens_predict_on_the_layer(viewer):
    from napari._app_model import get_app_model

    viewer.add_image(np.zeros((32, 32)), name="a")
    viewer.add_image(np.zeros((32, 32)), name="b")
    viewer.layers.selection.active = viewer.layers["a"]
    app = get_app_model()
    menu_ids = {
        item.command.id
        for item in app.menus.get_menu("napari/layers/filter")
        if hasattr(item, "command")
    }
    assert "napari-pix2pix.predict_layer" in menu_ids
    app.commands.execute_command("napari-pix2pix.predict_layer").result()
    widget = viewer.window.dock_widgets["Predict (napari-pix2pix)"]
    assert widget.image.value.name == "a"


def test_reader_writer_round_trip_keeps_data_and_scale(viewer, tmp_path):
    data = np.random.default_rng(0).integers(0, 4000, (3, 40, 50)).astype(np.uint16)
    layer = viewer.add_image(
        data,
        name="x",
        scale=(2.0, 0.25, 0.25),
        axis_labels=("Z", "Y", "X"),
        units=("micrometer",) * 3,
    )
    written = napari_io.napari_write_image(
        str(tmp_path / "x.ome.tif"), layer.data, layer.as_layer_data_tuple()[1]
    )
    reader = napari_io.napari_get_reader(written[0])
    ((back, meta, kind),) = reader(written[0])
    assert kind == "image"
    np.testing.assert_array_equal(np.asarray(back), data)
    assert meta["scale"] == pytest.approx([2.0, 0.25, 0.25]) and meta["axis_labels"] == [
        "Z",
        "Y",
        "X",
    ]
    opened = viewer.open(written[0], plugin="napari-pix2pix")[0]
    np.testing.assert_allclose(opened.scale, (2.0, 0.25, 0.25))


def test_reader_splits_channels_and_opens_large_files_lazily(viewer, tmp_path, monkeypatch):
    from napari_pix2pix import write_image

    data = np.random.default_rng(0).integers(0, 4000, (2, 3, 40, 50)).astype(np.uint16)
    path = write_image(tmp_path / "c.ome.tif", data, "ZCYX", {"Z": 1.5, "Y": 0.5, "X": 0.5}, "µm")
    monkeypatch.setattr(napari_io, "LAZY_BYTES", 1000)  # this file now counts as large
    ((lazy, meta, _),) = napari_io.read_tiff_layers(str(path))
    assert isinstance(lazy, da.Array)  # nothing read yet
    assert meta["channel_axis"] == 1 and meta["scale"] == pytest.approx([1.5, 0.5, 0.5])
    layers = viewer.open(str(path), plugin="napari-pix2pix")
    assert len(layers) == 3 and layers[0].data.shape == (2, 40, 50)
    np.testing.assert_array_equal(np.asarray(layers[2].data), data[:, 2])
    assert napari_io.napari_get_reader(str(tmp_path / "x.png")) is None


def test_sample_data_gives_a_pair(viewer):
    layers = viewer.open_sample("napari-pix2pix", "paired_sample")
    assert len(layers) == 2 and layers[0].data.shape == layers[1].data.shape == (512, 512)
