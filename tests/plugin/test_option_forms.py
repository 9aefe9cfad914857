"""The widgets' forms are made from the option declarations: every option that belongs
in the GUI has a control, the values the forms give are accepted by train/predict, and
both widgets remember them between sessions."""

import pytest

from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.options import options_of, split_options
from napari_pix2pix.run_options import PredictOptions, TrainingRun


def gui_options(*classes) -> set[str]:
    return {
        o.keyword
        for cls in classes
        for o in options_of(cls)
        if o.spec.group != "internal" and "gui" in o.spec.surfaces
    }


@pytest.fixture
def predict_widget(viewer):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    return PredictWidget(viewer)


def test_every_training_option_has_a_control(train_widget):
    w = train_widget
    controls = {k: f.widget for k, f in w.form.fields.items()}
    # the options that go with the inputs have their own controls
    controls.update(axes=w.pair.source.axes, target_axes=w.pair.target.axes)
    controls["resume"] = w.controls["Resume"]
    if "init_model" in gui_options(Pix2PixConfig, TrainingRun):  # once it is declared
        controls["init_model"] = w.init_model  # "Start from model…", above the form
    assert set(controls) == gui_options(Pix2PixConfig, TrainingRun)
    basic = {k for k, f in w.form.fields.items() if f.option.spec.group == "basic"}
    assert {"steps", "patch_size", "depth", "device"} <= basic
    assert "lr" in w.form.fields and "lr" not in basic  # advanced, in the collapsible part


def test_every_prediction_option_has_a_control(predict_widget):
    p = predict_widget
    controls = {k: f.widget for k, f in p.form.fields.items()}
    controls["axes"] = p.image.axes
    assert set(controls) == gui_options(PredictOptions)


def test_form_values_are_what_train_and_predict_take(train_widget, predict_widget):
    model_options, run_options = split_options(train_widget.options(), Pix2PixConfig, TrainingRun)
    assert Pix2PixConfig(**{k: v for k, v in model_options.items() if "axes" not in k})
    assert TrainingRun(**run_options).checkpoint_every is None  # ticked "at validations"
    (options,) = split_options(predict_widget.form.values(), PredictOptions)
    assert PredictOptions(**options).tile_size is None  # ticked "patch size"


def test_optional_numbers_are_a_tick_box_and_a_number(train_widget):
    field = train_widget.form["val_every"]
    assert field.value is None and not field.editor.enabled
    field.value = 25
    assert field.value == 25 and field.editor.enabled and not field.none_box.value
    field.none_box.value = True
    assert field.value is None


def test_predict_widget_remembers_its_settings(predict_widget, viewer):
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    predict_widget.form["overlap"].value = 0.4
    predict_widget.form["tile_size"].value = 128
    predict_widget.settings.save(predict_widget.form.values())
    again = PredictWidget(viewer)
    assert again.form["overlap"].value == pytest.approx(0.4)
    assert again.form["tile_size"].value == 128


def test_recipe_fields_are_left_to_the_recipe_until_set(train_widget):
    """Left ticked "auto", the network and crop fields are not passed to train, so the
    preset chooses them as it does for a script; set, they win."""
    form = train_widget.form
    assert {k for k, f in form.fields.items() if f.auto} == {
        "patch_size",
        "depth",
        "base_channels",
        "disc_channels",
        "steps",  # a time budget alone ends the run; else the default number
    }
    options = train_widget.options()
    assert "depth" not in options and "patch_size" not in options
    form["depth"].value = 4
    assert train_widget.options()["depth"] == 4
    remembered = form.values(remembered=True)
    assert remembered["depth"] == 4 and remembered["patch_size"] is None
    form["depth"].none_box.value = True
    assert "depth" not in train_widget.options()
    form.set_values({"depth": 6, "patch_size": None})
    assert form["depth"].value == 6 and form["patch_size"].value is None


def test_restore_defaults_and_remembered_advanced_values_are_shown(train_widget, viewer):
    from napari_pix2pix.plugin.train_widget import TrainWidget

    form = train_widget.form
    assert not form.collapsible.isExpanded() and form.changed_advanced() == []
    form["spatial_dims"].value = 3  # an advanced option
    form["depth"].value = 4
    train_widget.save_settings()
    again = TrainWidget(viewer)  # the next napari session
    assert again.form["spatial_dims"].value == 3 and again.form["depth"].value == 4
    assert again.form.changed_advanced() == ["spatial_dims"]
    assert again.form.collapsible.isExpanded()  # a remembered advanced value is in sight
    again.form.restore.native.click()
    assert again.form["spatial_dims"].value == 2 and again.form["depth"].value is None
    assert again.form.changed_advanced() == [] and "depth" not in again.form.values()


def test_predict_has_restore_defaults(predict_widget):
    form = predict_widget.form
    form["overlap"].value = 0.4
    form.restore.native.click()
    assert form["overlap"].value == pytest.approx(PredictOptions().overlap)


def test_both_widgets_with_advanced_open_fit_a_1200_px_screen(train_widget, viewer, qtbot):
    """The docks scroll: before, Train alone asked for 1,772 px and napari's window for
    2,462 px, past a 1200 px screen."""
    from qtpy.QtWidgets import QLabel, QScrollArea

    from napari_pix2pix.plugin.predict_widget import PredictWidget

    predict = PredictWidget(viewer)
    viewer.window.add_dock_widget(predict, name="Predict")
    for widget in (train_widget, predict):
        widget.form.collapsible.expand(animate=False)
    train_widget.plot.add_losses(1, {"g_l1": 0.5})
    viewer.window._qt_window.resize(1500, 1000)
    viewer.window._qt_window.show()
    qtbot.wait(200)
    window = viewer.window._qt_window
    assert window.minimumSizeHint().height() <= 1200
    for widget in (train_widget, predict):
        assert widget.minimumSizeHint().height() < 600
        # all of it is reachable: the scroll area holds the whole form
        area = widget.findChild(QScrollArea)
        assert area.widget().isAncestorOf(widget.form.collapsible)
        assert area.widget().sizeHint().height() > widget.minimumSizeHint().height()
        # and no wrapped text is cut (magicgui's fixed-width labels cut it before)
        for label in widget.findChildren(QLabel):
            if label.wordWrap() and label.isVisible() and label.text():
                assert label.height() >= label.heightForWidth(label.width()), label.text()
