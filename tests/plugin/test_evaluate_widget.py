"""The Predict widget's Evaluate section and its Predict this slice button, in a real
viewer, with tiny untrained models (the scores do not matter here: what is checked,
refused, reused and enabled does)."""

import numpy as np
import pytest
from tiny_options import untrained_model

import napari_pix2pix.plugin.predict_widget as predict_widget
from napari_pix2pix.engine.sample_data import make_pair


@pytest.fixture
def widget(viewer, tmp_path):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    p = PredictWidget(viewer)
    viewer.window.add_dock_widget(p, name="Predict")
    p.load(untrained_model(tmp_path / "m.safetensors"))
    p.form["tile_size"].value = 32
    return p


@pytest.fixture
def predictions(monkeypatch):
    """Counts the predictions Evaluate starts."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(args)
        return evaluate(*args, **kwargs)

    evaluate = predict_widget.evaluate
    monkeypatch.setattr(predict_widget, "evaluate", counted)
    return calls


def evaluate(p, image: str, target: str, qtbot) -> None:
    p.select_layer(image)
    p.evaluation.target.value = target
    p.evaluation.button.native.click()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)


def made_layers(viewer) -> list[str]:
    return [layer.name for layer in viewer.layers if "[pix2pix" in layer.name]


def test_the_target_picker_has_a_label(widget):
    from qtpy.QtWidgets import QLabel

    labels = [x for x in widget.findChildren(QLabel) if x.text() == "Target (ground truth) / axes"]
    assert labels and labels[0].isVisibleTo(widget)


def test_evaluating_an_image_against_itself_warns(viewer, widget, qtbot):
    source, target = make_pair((64, 64), seed=3, nucleus_radius=5.0)
    viewer.add_image(source, name="phase")
    viewer.add_image(source.copy(), name="phase copy")
    viewer.add_image(target, name="dapi")
    evaluate(widget, "phase", "phase", qtbot)  # the layer itself
    said = widget.warning.value
    assert "same data as the source" in said and not widget.warning.native.isHidden()
    assert said.count("Warning:") == 1  # once, though the core warns too
    assert widget.evaluation.scores.value  # still scored: a warning, not a refusal
    evaluate(widget, "phase", "phase copy", qtbot)  # another layer, the same data
    assert "same data as the source" in widget.warning.value
    evaluate(widget, "phase", "dapi", qtbot)  # the real target: no warning
    assert widget.warning.value == "" and widget.warning.native.isHidden()


def test_a_target_of_the_wrong_shape_is_refused_before_predicting(
    viewer, widget, qtbot, predictions
):
    source, target = make_pair((64, 64), seed=3, nucleus_radius=5.0)
    viewer.add_image(source, name="phase")
    viewer.add_image(target, name="dapi")
    viewer.add_image(target[:48], name="cropped dapi")
    viewer.add_image(np.stack([target] * 3, axis=-1), name="rgb dapi", rgb=True)
    evaluate(widget, "phase", "dapi", qtbot)
    assert widget.evaluation.scores.value and len(predictions) == 1
    before = [layer.name for layer in viewer.layers]
    widget.select_layer("phase")
    widget.evaluation.target.value = "cropped dapi"
    widget.evaluation.button.native.click()
    assert widget.worker is None  # nothing started
    status = widget.controls.status.text()
    assert "(48, 64)" in status and "(64, 64)" in status and "choose the target" in status
    assert widget.evaluation.scores.value == ""  # the last scores are gone
    assert [layer.name for layer in viewer.layers] == before and len(predictions) == 1
    widget.evaluation.target.value = "rgb dapi"  # channels the model does not predict
    widget.evaluation.button.native.click()
    assert widget.worker is None and len(predictions) == 1
    assert "(64, 64, 3) (axes YXC)" in widget.controls.status.text()


def test_the_scores_are_cleared_when_an_evaluation_starts(viewer, widget, qtbot):
    source, target = make_pair((64, 64), seed=3, nucleus_radius=5.0)
    viewer.add_image(source, name="phase")
    viewer.add_image(target, name="dapi")
    evaluate(widget, "phase", "dapi", qtbot)
    widget.form["tile_size"].value = 16  # another prediction: it runs a while
    widget.evaluation.button.native.click()
    assert widget.worker is not None and widget.evaluation.scores.value == ""
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    assert widget.evaluation.scores.value


def test_evaluations_reuse_the_prediction_and_its_layers(viewer, widget, qtbot, predictions):
    import napari_pix2pix as p2p

    source, target = make_pair((64, 64), seed=3, nucleus_radius=5.0)
    viewer.add_image(source, name="phase")
    viewer.add_image(target, name="dapi")
    evaluate(widget, "phase", "dapi", qtbot)
    names = ["phase [pix2pix]", "phase [pix2pix spread]", "phase [pix2pix - target]"]
    assert made_layers(viewer) == names and len(predictions) == 1
    first = widget.evaluation.scores.value
    evaluate(widget, "phase", "dapi", qtbot)  # the same: scored, not predicted again
    assert made_layers(viewer) == names and len(predictions) == 1
    assert widget.evaluation.scores.value == first
    assert widget.controls.status.text().startswith("Scored the existing prediction")
    prediction = viewer.layers["phase [pix2pix]"]
    widget.form["overlap"].value = 0.5  # other options: predicted again, into the same layers
    evaluate(widget, "phase", "dapi", qtbot)
    assert made_layers(viewer) == names and len(predictions) == 2
    assert viewer.layers["phase [pix2pix]"] is prediction
    expected = p2p.predict(widget.model, source, tile_size=32, overlap=0.5, device="cpu")
    np.testing.assert_allclose(prediction.data, expected, atol=1e-4)
    np.testing.assert_allclose(
        viewer.layers["phase [pix2pix - target]"].data, expected - target, atol=1e-3
    )


def test_evaluate_scores_what_predict_made(viewer, widget, qtbot, predictions):
    source, target = make_pair((64, 64), seed=3, nucleus_radius=5.0)
    viewer.add_image(source, name="phase")
    viewer.add_image(target, name="dapi")
    widget.select_layer("phase")
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60_000)
    evaluate(widget, "phase", "dapi", qtbot)
    assert len(predictions) == 0 and widget.evaluation.scores.value
    assert made_layers(viewer) == ["phase [pix2pix]", "phase [pix2pix - target]"]


def test_predict_this_slice_is_off_for_a_3d_model(viewer, widget, tmp_path):
    button = widget.controls["Predict this slice"]
    assert button.isEnabled() and "use Predict" not in button.toolTip()
    volumes = dict(spatial_dims=3, depth=3, patch_size=16, source_axes="ZYX", target_axes="ZYX")
    widget.load(untrained_model(tmp_path / "m3.safetensors", **volumes))
    assert not button.isEnabled()
    assert button.toolTip() == "a 3D model predicts whole volumes: use Predict"
    assert widget.controls["Predict"].isEnabled()
    widget.load(tmp_path / "m.safetensors")  # 2D again
    assert button.isEnabled() and "use Predict" not in button.toolTip()


def test_the_target_is_not_the_image_itself_by_default(viewer, widget):
    """The picker's first layer is often the image: Evaluate would score it against
    itself. Another layer is taken, one named like a target first; a choice of the
    user's stays."""
    source, target = make_pair((64, 64), seed=3, nucleus_radius=5.0)
    viewer.add_image(source, name="phase")
    viewer.add_image(source.copy(), name="other")
    viewer.add_image(target, name="nuclei (target)")
    widget.select_layer("phase")
    assert widget.evaluation.target.value.name == "nuclei (target)"
    widget.evaluation.target.value = "other"  # the user's choice
    widget.select_layer("other")  # now the image: the target moves off it
    assert widget.evaluation.target.value.name == "nuclei (target)"
    widget.evaluation.target.value = "phase"
    widget.select_layer("nuclei (target)")
    assert widget.evaluation.target.value.name == "phase"  # not the image: left alone
