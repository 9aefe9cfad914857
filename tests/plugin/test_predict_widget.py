"""The Predict widget and the Layers menu command, in a real viewer."""

import dask.array as da
import numpy as np

import napari_pix2pix as p2p
from napari_pix2pix.engine.sample_data import make_pair


def start_a_slow_prediction(p, layer: str, qtbot) -> None:
    """Predict ``layer`` in tiny tiles (many batches) and wait for the first one."""
    p.select_layer(layer)
    p.form["tile_size"].value = 16
    p.form["overlap"].value = 0.5
    p.form["batch_size"].value = 1
    p.run()
    qtbot.waitUntil(lambda: p.state["done"] > 0, timeout=30_000)


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
    start_a_slow_prediction(p, "big", qtbot)
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
    pred, spread = viewer.layers["stack [pix2pix]"], viewer.layers["stack [pix2pix expected error]"]
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
    widget = viewer.window.dock_widgets["pix2pix: Predict (napari-pix2pix)"]
    assert widget.image.value.name == "a"


def test_closing_the_viewer_stops_a_prediction(viewer, trained, qtbot):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    source, _ = make_pair((128, 128), seed=5, nucleus_radius=5.0)
    viewer.add_image(np.tile(source, (8, 8)), name="big")
    p = PredictWidget(viewer)
    viewer.window.add_dock_widget(p, name="Predict")
    p.model = trained
    p._set_running(False)
    start_a_slow_prediction(p, "big", qtbot)
    worker = p.worker
    viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running, timeout=30_000)
    assert p.state["done"] < p.state["total"]  # stopped, not run to the end


def test_the_model_card_is_readable(viewer, trained, tmp_path):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    p = PredictWidget(viewer)
    p.load(trained.save(tmp_path / "m.safetensors"))
    card = p.chooser.info.value
    c, best = trained.config, trained.history.best
    assert "1 -> 1 channel(s), YX -> YX, 2D" in card
    assert f"U-Net depth {c.depth}, {c.base_channels} channels, {c.patch_size[0]} px crops" in card
    assert "Trained: 300 steps" in card and f"step {best.step}" in card
    assert f"MAE {best.metrics['mae']:.4g} (target units)" in card
    assert f"PSNR {best.metrics['psnr']:.1f} dB" in card
    assert "{" not in card and "'" not in card  # no raw dicts


def test_predict_this_slice_places_the_plane_where_the_viewer_stands(viewer, trained, qtbot):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    source, _ = make_pair((64, 64), seed=5, nucleus_radius=5.0)
    stack = np.stack([np.roll(source, 7 * i, axis=1) for i in range(5)])
    viewer.add_image(stack, name="stack", scale=(2.0, 0.5, 0.5), translate=(1.0, 0.0, 0.0))
    p = PredictWidget(viewer)
    p.model = trained
    p._set_running(False)
    p.select_layer("stack")
    viewer.dims.set_current_step(0, 3)
    p.controls["Predict this slice"].click()
    qtbot.waitUntil(lambda: p.worker is None, timeout=30_000)
    out = viewer.layers["stack [pix2pix slice]"]
    assert out.data.shape == (1, 64, 64)
    np.testing.assert_allclose(out.translate, (1.0 + 3 * 2.0, 0.0, 0.0))
    expected = p2p.predict(trained, stack[3], device="cpu")
    np.testing.assert_allclose(out.data[0], expected, atol=1e-3)
    viewer.dims.set_current_step(0, 1)  # another slice replaces the layer
    p.controls["Predict this slice"].click()
    qtbot.waitUntil(lambda: p.worker is None, timeout=30_000)
    (out,) = [layer for layer in viewer.layers if "slice" in layer.name]
    np.testing.assert_allclose(out.translate, (1.0 + 2.0, 0.0, 0.0))


def test_the_evaluate_section_scores_against_numpy(viewer, trained, qtbot):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    source, target = make_pair((96, 96), seed=11, nucleus_radius=5.0)
    viewer.add_image(source, name="held-out phase")
    viewer.add_image(target, name="held-out dapi")
    p = PredictWidget(viewer)
    p.model = trained
    p._set_running(False)
    p.select_layer("held-out phase")
    p.evaluation.target.value = "held-out dapi"
    p.evaluation.button.native.click()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    pred = viewer.layers["held-out phase [pix2pix]"].data
    np.testing.assert_allclose(pred, p2p.predict(trained, source, device="cpu"), atol=1e-4)
    difference = viewer.layers["held-out phase [pix2pix - target]"].data
    np.testing.assert_allclose(difference, pred - target, atol=1e-3)
    assert "held-out phase [pix2pix expected error]" in viewer.layers
    mae = np.abs(pred.astype(np.float64) - target).mean()
    r = np.corrcoef(pred.ravel(), target.ravel().astype(np.float64))[0, 1]
    scores = p.evaluation.scores.value
    assert f"MAE {mae:.4g} (target units)" in scores and f"Pearson r {r:.3f}" in scores
    assert "PSNR" in scores and "SSIM" in scores


def test_unticking_auto_batch_size_starts_at_what_auto_means(viewer):
    from napari_pix2pix.engine.inference import AUTO_BATCH
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    field = PredictWidget(viewer).form["batch_size"]
    assert field.value is None  # auto
    field.none_box.value = False
    assert field.value == AUTO_BATCH == 4  # not the spin box's minimum, 1


def test_predicting_again_with_the_same_model_adds_no_copy(viewer, trained, qtbot):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    source, _ = make_pair((64, 64), seed=12, nucleus_radius=5.0)
    viewer.add_image(source, name="phase")
    p = PredictWidget(viewer)
    p.model = trained
    p._set_running(False)
    p.select_layer("phase")
    p.form["uncertainty"].value = False
    p.run()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    names = [x.name for x in viewer.layers]
    p.run()  # the same image, model and options: the shown prediction is selected
    assert p.worker is None and [x.name for x in viewer.layers] == names
    assert viewer.layers.selection.active.name == "phase [pix2pix]"
    assert "already shows this prediction" in p.controls.status.text()
    p.form["uncertainty"].value = True  # asks for more than is shown: predicted again
    p.run()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    assert "phase [pix2pix expected error]" in viewer.layers
    assert "phase [pix2pix] [1]" not in viewer.layers  # into the same prediction layer
