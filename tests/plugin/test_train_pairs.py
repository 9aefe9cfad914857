"""The Train widget's data: several layer pairs, folders, an explicit validation pair,
the pair/pixel counts, the best step in the plot and a model to start from."""

import inspect
import re

import numpy as np
import pytest
from widget_helpers import set_fields

import napari_pix2pix as p2p


def _pair(rng, shape=(64, 64)):
    """A source and a target that depends on it (smooth enough to learn a little)."""
    source = rng.random(shape).astype(np.float32)
    target = (np.roll(source, 1, axis=0) + source) / 2
    return source, target


@pytest.fixture
def pairs_widget(viewer):
    """The Train widget over three 64x64 pairs of layers: a1/b1, a2/b2 and va/vb."""
    from napari_pix2pix.plugin.train_widget import TrainWidget

    rng = np.random.default_rng(0)
    for names in (("a1", "b1"), ("a2", "b2"), ("va", "vb")):
        for name, data in zip(names, _pair(rng)):
            viewer.add_image(data, name=name)
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    return widget


def _choose(pair, source, target):
    pair.source.value, pair.target.value = source, target


def test_two_layer_pairs_and_a_validation_pair(pairs_widget, qtbot, tmp_path):
    from napari_pix2pix.plugin.pair_list import LAYERS

    w = pairs_widget
    _choose(w.pairs.pairs[0], "a1", "b1")
    _choose(w.pairs.add_row(), "a2", "b2")
    w.validation.mode.value = LAYERS
    _choose(w.validation.pairs[0], "a2", "vb")
    assert "also training images" in w.validation.message.value
    assert not w.controls["Start"].isEnabled()
    _choose(w.validation.pairs[0], "va", "vb")
    assert w.validation.message.value == ""
    assert w.summary.value == "2 pairs, 8 kpx; validation: 1 pair, 4 kpx"
    set_fields(w, steps=3, val_every=3)
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    # before Start: the recipe and how long the run will take, timed on this machine
    qtbot.waitUntil(lambda: w.planner.plan is not None, timeout=60_000)
    plan = w.planner.plan
    assert (plan.recipe["depth"], plan.recipe["base_channels"], plan.steps) == (4, 8, 3)
    assert plan.recipe["patch_size"] == [32, 32] and plan.step_seconds > 0
    assert w.planner.label.value.startswith("Recipe: auto recipe: depth 4, 8 channels, 32 px")
    assert "3 steps in" in w.planner.label.value
    assert not (tmp_path / "run").exists()  # a plan makes nothing
    w.controls["Start"].click()
    assert "2 pairs, 8 kpx; validation: 1 pair" in w.controls.status.text()
    # the run's own pace replaces the estimate: the recipe stays, no timing is promised
    assert w.planner.label.value == "Recipe: auto recipe: depth 4, 8 channels, 32 px crops, batch 4"
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    qtbot.wait(1500)  # longer than the planner's pause: a plan asked for now would show
    assert w.planner.label.value.startswith("Recipe: auto recipe: depth 4")  # not "timing"
    history = w.model.history
    assert history.steps_done == 3
    assert history.train_pairs == ["array 0", "array 1"]
    assert history.val_pairs == ["array"]
    assert history.split.startswith("validation pairs given")


def test_removing_a_row_updates_the_counts(pairs_widget):
    w = pairs_widget
    _choose(w.pairs.pairs[0], "a1", "b1")
    second = w.pairs.add_row()  # on the next layers no row uses
    assert (second.source.value.name, second.target.value.name) == ("a2", "b2")
    _choose(w.pairs.add_row(), "va", "vb")
    assert w.summary.value.startswith("3 pairs, 12 kpx;")
    w.pairs.remove_row(1)
    assert [p.source.value.name for p in w.pairs.pairs] == ["a1", "va"]
    assert w.summary.value.startswith("2 pairs, 8 kpx;")
    w.pairs.rows[1].remove_button.native.click()
    assert len(w.pairs.rows) == 1 and not w.pairs.rows[0].remove_button.visible
    assert w.summary.value == "1 pair, 4 kpx; validation: 10% of the training data"


def test_a_misaligned_pair_is_explained_and_blocks_start(pairs_widget, viewer):
    w = pairs_widget
    viewer.add_image(np.zeros((40, 50), np.float32), name="other")
    _choose(w.pairs.pairs[0], "a1", "b1")
    second = w.pairs.add_row()
    _choose(second, "a2", "other")
    assert "not aligned" in second.message.value
    assert w.pairs.pairs[0].message.value == ""
    assert not w.controls["Start"].isEnabled() and w.summary.value == ""
    second.target.value = "b2"
    assert second.message.value == "" and w.controls["Start"].isEnabled()
    second.source.axes.value = "XY"  # the same shape, other axes: refused for the list
    assert "same axes" in w.pairs.message.value
    assert not w.controls["Start"].isEnabled()


def test_folders_of_pairs(pairs_widget, qtbot, tmp_path):
    import tifffile

    from napari_pix2pix.plugin.pair_list import FOLDERS, FRACTION

    w = pairs_widget
    rng = np.random.default_rng(1)
    src, tgt = tmp_path / "src", tmp_path / "tgt"
    src.mkdir(), tgt.mkdir()
    for name in ("one.tif", "two.tif"):
        s, t = _pair(rng)
        tifffile.imwrite(src / name, s)
        tifffile.imwrite(tgt / name, t)
    w.pairs.mode.value = FOLDERS
    w.pairs.folders.source.value = src
    assert "Choose a source folder and a target folder" in w.pairs.message.value
    assert not w.controls["Start"].isEnabled()
    w.pairs.folders.target.value = tgt
    assert w.pairs.message.value == "" and w.controls["Start"].isEnabled()
    assert w.summary.value.startswith("2 pairs, 8 kpx;")
    w.validation.mode.value = FOLDERS  # the training folders again: refused
    w.validation.folders.source.value, w.validation.folders.target.value = src, tgt
    assert "also training images" in w.validation.message.value
    assert not w.controls["Start"].isEnabled()
    w.validation.mode.value = FRACTION
    tifffile.imwrite(tgt / "three.tif", _pair(rng)[1])
    w.pairs.folders.target.value = tgt  # unmatched names are named
    w.check_pair()
    assert "three.tif" in w.pairs.message.value and not w.controls["Start"].isEnabled()
    (tgt / "three.tif").unlink()
    w.check_pair()
    set_fields(w, steps=2, val_fraction=0.0)
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    assert w.model.history.steps_done == 2
    assert w.model.history.train_pairs == ["one.tif", "two.tif"]


def test_best_step_is_marked_and_saved(pairs_widget, qtbot, tmp_path):
    w = pairs_widget
    _choose(w.pairs.pairs[0], "a1", "b1")
    set_fields(w, steps=3, val_every=1)
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    best = w.model.history.best
    assert w.model.history.kept == "best"
    assert w.plot.val_steps and w.plot.best_step == best.step
    assert f"best of step {best.step}" in w.controls.status.text()
    saved = p2p.load_model(w.save_model(tmp_path / "mine.safetensors"))
    assert saved.history.best.step == best.step
    assert (tmp_path / "run" / "best.safetensors").is_file()


def _init_model_merged() -> bool:
    from napari_pix2pix.config import Pix2PixConfig
    from napari_pix2pix.errors import InputError
    from napari_pix2pix.options import split_options
    from napari_pix2pix.run_options import TrainingRun

    if "init_model" in inspect.signature(p2p.train_iter).parameters:
        return True
    try:
        split_options({"init_model": "m.safetensors"}, Pix2PixConfig, TrainingRun)
    except InputError:
        return False
    return True


def test_start_from_model_is_passed_to_train_iter(pairs_widget, qtbot, tmp_path):
    w = pairs_widget
    _choose(w.pairs.pairs[0], "a1", "b1")
    assert "init_model" not in w.options()
    w.init_model.value = tmp_path / "m.safetensors"
    assert w.options()["init_model"] == tmp_path / "m.safetensors"
    if not _init_model_merged():
        pytest.skip("init_model not merged yet")
    set_fields(w, steps=2, val_fraction=0.0)
    w.init_model.line_edit.value = ""
    w.form["checkpoint_dir"].value = str(tmp_path / "first")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    first = w.save_model(tmp_path / "m.safetensors")
    w.init_model.value = first
    w.form["checkpoint_dir"].value = str(tmp_path / "second")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=120_000)
    assert "Error" not in w.controls.status.text()
    assert w.model.history.steps_done == 2


def test_a_pair_shifted_by_5_px_is_warned_about(viewer):
    from napari_pix2pix.engine.sample_data import make_pair
    from napari_pix2pix.plugin.train_widget import TrainWidget

    source, target = make_pair((128, 128), seed=3, nucleus_radius=5.0)
    viewer.add_image(source, name="phase")
    viewer.add_image(np.roll(target, 5, axis=1), name="dapi shifted")
    w = TrainWidget(viewer)
    assert w.pair.target.value.name == "dapi shifted"
    message = w.pair.message.value
    assert "shifted by" in message and re.search(r"[+][456] px in X", message)
    assert w.controls["Start"].isEnabled()  # a warning, not a refusal
    viewer.add_image(target, name="dapi")
    w.pair.target.value = "dapi"
    assert w.pair.message.value == ""


def test_a_long_channel_axis_is_questioned(viewer):
    from napari_pix2pix.plugin.train_widget import TrainWidget

    stack = np.random.default_rng(0).random((32, 64, 64)).astype(np.float32)
    viewer.add_image(stack, name="z-stack")
    viewer.add_image(stack + 1, name="z-target")
    w = TrainWidget(viewer)
    assert w.pair.source.axes_text() == "ZYX" and "channel" not in w.pair.message.value
    w.pair.source.axes.value = "CYX"
    w.pair.target.axes.value = "CYX"
    assert "32-channel source" in w.pair.message.value and "write Z or T" in w.pair.message.value


def test_the_layers_pixel_size_goes_into_the_model(viewer, qtbot, tmp_path):
    from napari_pix2pix.plugin.train_widget import TrainWidget

    source, target = _pair(np.random.default_rng(1))
    for name, data in (("s", source), ("t", target)):
        viewer.add_image(data, name=name, scale=(0.5, 0.5), units=("um", "um"))
    w = TrainWidget(viewer)
    viewer.window.add_dock_widget(w, name="Train")
    set_fields(w, steps=2, val_fraction=0.0)
    w.form["checkpoint_dir"].value = str(tmp_path / "run")
    w.controls["Start"].click()
    qtbot.waitUntil(lambda: w.worker is None, timeout=60_000)
    assert w.model.history.pixel_size == [{"Y": 0.5, "X": 0.5, "unit": "µm"}]
    assert "0.5 x 0.5 µm (Y x X)" in "\n".join(p2p.load_model(w.saved).card())


def _pixels(label) -> np.ndarray:
    """The grey values a Label's pixmap shows."""
    from qtpy.QtGui import QImage

    image = label.native.pixmap().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    rows, cols = image.height(), image.width()
    data = np.frombuffer(image.constBits().asstring(image.sizeInBytes()), np.uint8)
    return data.reshape(rows, image.bytesPerLine())[:, :cols]


def test_each_pair_shows_a_thumbnail_of_its_source_and_target(pairs_widget, viewer):
    w = pairs_widget
    row = w.pairs.rows[0]
    assert (w.pair.source.value.name, w.pair.target.value.name) == ("a1", "b1")
    shown = _pixels(row.thumbnail)
    assert shown.shape == (32, 32 + 4 + 32)  # 64x64 planes at half size, side by side
    left, right = shown[:, :32], shown[:, 36:]
    source = viewer.layers["a1"].data[::2, ::2]
    # the left half is the source: brighter where the source is brighter
    assert np.corrcoef(left.ravel(), source.ravel())[0, 1] > 0.95
    assert not np.array_equal(left, right)
    w.pair.target.value = viewer.layers["a2"]
    again = _pixels(row.thumbnail)
    other = viewer.layers["a2"].data[::2, ::2]
    assert np.corrcoef(again[:, 36:].ravel(), other.ravel())[0, 1] > 0.95
    w.pair.target.value = w.pair.source.value  # not a pair: no thumbnail
    assert not row.thumbnail.visible


def test_what_the_run_would_warn_about_is_shown_before_start(viewer, qtbot):
    """A patch larger than the images is said under the pairs before Start, with the
    recipe, not only in the run's warnings once it has trained on padding."""
    from napari_pix2pix.plugin.train_widget import TrainWidget

    rng = np.random.default_rng(0)
    for name, data in zip(("small_a", "small_b"), _pair(rng, (40, 36))):
        viewer.add_image(data, name=name)
    w = TrainWidget(viewer)
    viewer.window.add_dock_widget(w, name="Train")
    _choose(w.pairs.pairs[0], "small_a", "small_b")
    set_fields(w, steps=3, patch_size=64, depth=4, base_channels=8, val_fraction=0)
    qtbot.waitUntil(lambda: w.planner.plan is not None, timeout=60_000)
    line = w.planner.label.value
    assert line.startswith("Recipe: ") and "3 steps in" in line
    assert re.search(
        r"Warning: training image\(s\) of size \(40, 36\) are smaller than "
        r"patch_size \(64, 64\)",
        line,
    ), line


def test_a_plan_gives_the_range_of_the_steps_it_timed():
    from napari_pix2pix.workflows.run_plan import RunPlan

    recipe = dict(preset="auto", depth=5, base_channels=16, patch_size=[128, 128], batch_size=4)
    steady = RunPlan(recipe, 0.1, 600, 60.0, True, (0.095, 0.105), 10**6)
    assert "100 ms/step (timed here) · ~600 steps in" in steady.describe()
    spread = RunPlan(recipe, 0.1, 600, 60.0, True, (0.08, 0.15), 10**6)
    assert "80-150 ms/step (timed here) · ~400-750 steps in" in spread.describe()
    capped = RunPlan(recipe, 0.1, 500, 50.0, True, (0.08, 0.15), 500)  # steps=500 ends it
    assert "~333-500 steps" in capped.describe()
