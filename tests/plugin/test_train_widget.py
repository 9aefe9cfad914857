"""The Train widget driven as a user would, in a real viewer."""

import time

import numpy as np
import pytest
from widget_helpers import set_fields

import napari_pix2pix as p2p
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.io.checkpoint import load_checkpoint
from napari_pix2pix.options import split_options
from napari_pix2pix.run_options import TrainingRun
from napari_pix2pix.workflows.starting_point import ignored_on_resume


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
    assert p2p.load_model(saved).history.steps_done == 150

    # Predict widget: a stack with non-unit scale and translate
    stack = np.stack([viewer.layers["phase contrast (source)"].data] * 3)
    viewer.add_image(stack, name="stack", scale=(2.0, 0.5, 0.5), translate=(1.0, 10.0, 20.0))
    p = PredictWidget(viewer)
    viewer.window.add_dock_widget(p, name="Predict")
    p.load(saved)
    assert "Trained: 150 steps" in p.chooser.info.value
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
    # the bar reads the step, the pace and the time left (first at once, then every two
    # seconds): refreshed faster here, or a fast machine ends the 60 steps before the pace
    w.steps.timer.setInterval(100)
    w.controls["Start"].click()
    bar = w.controls.progress_bar
    qtbot.waitUntil(lambda: "s/step" in bar.text(), timeout=60_000)
    assert bar.text().startswith("step ") and "left" in bar.text() and w.worker is not None
    t0 = time.perf_counter()
    n0 = w.plot.point_count()
    w.controls["Stop"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=30_000)
    stop_seconds = time.perf_counter() - t0
    done = w.model.history.steps_done
    assert done < 60
    status = w.controls.status.text()
    assert status.startswith(f"Stopped after step {done}.") and "auto-saved" in status
    assert bar.text() == f"{done:,}/60 steps"  # no time left once stopped
    # it stopped within a step (one may be in flight, and the stop writes a last entry)
    assert w.plot.point_count() - n0 <= 3
    assert w.plot.steps[-1] == w.model.history.losses["step"][-1] == done  # drawn too
    assert (tmp_path / "run" / "checkpoint.safetensors").is_file()
    print(f"\nStop took {stop_seconds * 1000:.0f} ms; stopped at step {done}")
    # the form's values are the run's own: resuming names no option as unused
    ckpt = load_checkpoint(tmp_path / "run")
    assert ignored_on_resume(ckpt, split_options(w.options(), Pix2PixConfig, TrainingRun)[0]) == ""
    w.controls["Resume"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=60_000)
    assert w.model.history.steps_done == 60
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
    # (options that clash never reach Start: test_options_that_clash_are_said_at_once)
    if problem == "cuda without a GPU":
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
    # and a model, saved by the worker although the window is gone
    model = p2p.load_model(tmp_path / "run" / "model.safetensors")
    assert model.history.steps_done == step


def test_the_widget_opened_before_the_layers_never_pairs_a_layer_with_itself(viewer):
    from napari_pix2pix.engine.sample_data import make_pair

    # as napari opens it from the Plugins menu: the widget gets a proxy of the viewer
    _, w = viewer.window.add_plugin_dock_widget("napari-pix2pix", "pix2pix: Train")
    assert type(w.viewer).__name__ == "PublicOnlyProxy"
    assert not w.controls["Start"].isEnabled() and not w.controls["Resume"].isEnabled()
    source, target = make_pair((64, 64), seed=0)
    viewer.add_image(source, name="phase")
    assert w.pair.source.value is not None
    assert "same layer" in w.pair.message.value or w.pair.target.value is None
    assert not w.controls["Start"].isEnabled()
    viewer.add_image(target, name="dapi")
    assert w.pair.source.value.name != w.pair.target.value.name
    assert w.controls["Start"].isEnabled() and w.pair.message.value == ""
    # the widget's own layers are napari's proxies: choosing one layer twice is caught
    w.pair.target.value = w.pair.source.value.name
    assert "same layer" in w.pair.message.value and not w.controls["Start"].isEnabled()


def test_rgb_layer_is_a_three_channel_source(train_widget, viewer):
    w = train_widget
    gray = w.pair.source.value.data
    gray = (gray - gray.min()) / np.ptp(gray) * 255  # an 8-bit picture of the same cells
    viewer.add_image(np.stack([gray] * 3, axis=-1).astype(np.uint8), name="rgb", rgb=True)
    w.pair.source.value = "rgb"
    assert w.pair.source.axes_text() == "YXC"
    assert w.check_pair() and w.pair.message.value == ""


def test_renamed_layers_train_and_predict(train_widget, viewer, qtbot, tmp_path):
    """The pickers hold the layers themselves: renaming the chosen source and target
    keeps them chosen (under their new names), and training and prediction run on them."""
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    w = train_widget
    source, target = w.pair.source.value, w.pair.target.value
    decoy = viewer.add_image(np.zeros_like(source.data), name="decoy")
    viewer.layers.move(viewer.layers.index(decoy), 0)  # first in the list: a name-keyed
    assert w.pair.source.value is source  # picker falls back to it after a rename
    source.name, target.name = "phase, renamed", "dapi, renamed"
    assert w.pair.source.value is source and w.pair.target.value is target
    assert w.pair.source.layer.current_choice == "phase, renamed"
    assert w.pair.message.value == "" and w.controls["Start"].isEnabled()
    set_fields(w, steps=4, val_fraction=0.0)
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=60_000)
    assert w.model is not None and w.model.history.steps_done == 4
    model_path = w.save_model(tmp_path / "m.safetensors")

    p = PredictWidget(viewer)
    p.load(model_path)
    p.select_layer("phase, renamed")
    source.name = "phase, renamed again"
    assert p.image.value is source
    p.controls["Predict"].click()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    assert "phase, renamed again [pix2pix]" in viewer.layers
    assert viewer.layers["phase, renamed again [pix2pix]"].data.shape == source.data.shape


def test_use_in_predict_opens_the_model_just_trained(train_widget, viewer, qtbot, tmp_path):
    w = train_widget
    assert not w.controls["Use in Predict"].isEnabled()
    set_fields(w, steps=6, val_fraction=0.0)
    w.form["checkpoint_dir"].value = "~/runs/first"  # ~ is the user's home
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=60_000)
    assert w.saved == tmp_path / "runs" / "first" / "model.safetensors"  # HOME is tmp_path
    log = (tmp_path / "runs" / "first" / "log.csv").resolve()
    links = w.controls.links.text()  # the run's folder and log, linked under the status
    assert log.is_file() and log.as_uri() in links and "tensorboard --logdir" in links
    assert (log.parent / "report.html").as_uri() in links  # written at the run's end
    assert w.controls["Use in Predict"].isEnabled()
    w.controls["Use in Predict"].click()
    # the Predict widget that is open now
    _, predict = viewer.window.add_plugin_dock_widget("napari-pix2pix", "pix2pix: Predict")
    assert predict.model is not None and predict.model.history.steps_done == 6
    assert predict.chooser.path.value == str(w.saved)
    assert predict.image.value.name == "phase contrast (source)"
    predict.controls["Predict"].click()
    qtbot.waitUntil(lambda: predict.worker is None, timeout=60_000)
    assert "phase contrast (source) [pix2pix]" in viewer.layers
    bar = w.controls.progress_bar
    assert bar.value() == bar.maximum() == 6
    w.form["checkpoint_dir"].value = "~/runs/second"
    w.controls["Start"].click()  # a new run's bar starts empty, not at 100 %
    assert bar.value() == 0
    qtbot.waitUntil(lambda: w.worker is None, timeout=60_000)


def test_options_that_clash_are_said_at_once_with_their_fix(train_widget):
    w = train_widget
    assert w.controls["Start"].isEnabled() and w.options_message.value == ""
    w.form["depth"].value = 8
    w.form["patch_size"].value = 64
    message = w.options_message.value
    assert "multiple of 2**depth = 256" in message and "Use patch_size=" in message
    assert not w.controls["Start"].isEnabled()
    w.form["depth"].none_box.value = True  # auto: the depth follows the patch
    assert w.options_message.value == "" and w.controls["Start"].isEnabled()


def test_the_live_view_follows_the_region_in_view(make_napari_viewer, qtbot, tmp_path):
    """While training, the part of the source the canvas shows is predicted and laid over
    it; panning moves it; the last one is the final model's prediction of that region."""
    from napari_pix2pix.engine.sample_data import make_pair
    from napari_pix2pix.plugin.live_view import VIEW_LAYER
    from napari_pix2pix.plugin.train_widget import TrainWidget

    viewer = make_napari_viewer(show=True)
    source, target = make_pair((384, 384), seed=3)
    viewer.add_image(source, name="source", scale=(0.5, 0.5))
    viewer.add_image(target, name="target", scale=(0.5, 0.5))
    w = TrainWidget(viewer)
    viewer.window.add_dock_widget(w, name="Train")
    layer = viewer.layers["source"]
    viewer.scene.camera.center = (40.0, 40.0)  # world units: pixel (80, 80)
    viewer.scene.camera.zoom = 8.0
    qtbot.waitUntil(lambda: layer.corner_pixels[1, 0] - layer.corner_pixels[0, 0] < 200)
    set_fields(w, steps=400, val_every=5)
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: VIEW_LAYER in viewer.layers, timeout=60_000)
    first = tuple(viewer.layers[VIEW_LAYER].translate)
    assert first[0] < 40.0 < first[0] + viewer.layers[VIEW_LAYER].data.shape[0] * 0.5
    viewer.scene.camera.center = (150.0, 150.0)  # pan: pixel (300, 300)
    qtbot.waitUntil(lambda: tuple(viewer.layers[VIEW_LAYER].translate) != first, timeout=60_000)
    shown = viewer.layers[VIEW_LAYER]
    y0, x0 = (int(round(t / 0.5)) for t in shown.translate)
    assert y0 < 300 < y0 + shown.data.shape[0] and x0 < 300 < x0 + shown.data.shape[1]
    w.stop()
    qtbot.waitUntil(lambda: w.worker is None, timeout=60_000)
    region = source[y0 : y0 + shown.data.shape[0], x0 : x0 + shown.data.shape[1]]
    np.testing.assert_allclose(
        viewer.layers[VIEW_LAYER].data, p2p.predict(w.model, region), rtol=1e-4, atol=1e-2
    )
