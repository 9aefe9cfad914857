"""The Predict widget shows the input score after a prediction, and a warning line when
the image differs from what the model was trained on."""

import numpy as np

SAID = "differs from what the model was trained on"


def test_a_shifted_image_shows_the_warning(viewer, trained, held_out_pair, qtbot):
    from napari_pix2pix.plugin.layer_picker import warning_colour
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    source = held_out_pair[0]
    viewer.add_image(source, name="like")
    viewer.add_image(source.astype(np.float32) * 3, name="bright")
    p = PredictWidget(viewer)
    p.model = trained
    p._set_running(False)
    p.select_layer("like")
    p.run()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    assert "Input score" in p.controls.status.text()
    assert SAID not in p.warning.value
    p.select_layer("bright")
    p.run()
    qtbot.waitUntil(lambda: p.worker is None, timeout=60_000)
    assert "bright [pix2pix]" in viewer.layers  # predicted all the same
    assert SAID in p.warning.value and "brighter" in p.warning.value
    assert warning_colour() in p.warning.native.styleSheet()  # napari's, not our own
    assert "above 2.5" in p.controls.status.text()
