"""The Train widget saves its options as a run config and loads one back (issue 25,
item 3): the same file ``napari-pix2pix train --config`` reads."""

import pytest

from napari_pix2pix.io.run_config import read_run_config


def test_save_change_load_gives_the_saved_form_back(train_widget, tmp_path):
    w = train_widget
    w.form["steps"].value = 300
    w.form["lr"].value = 1e-3
    w.form["time_budget"].value = 600.0  # seconds: the field shows 10 minutes
    w.form["gan_mode"].value = "lsgan"
    model = tmp_path / "start.safetensors"
    w.init_model.value = model
    path = w.config_files.save(tmp_path / "run.yaml")

    train = read_run_config(path, "train")  # what --config would run with
    assert train["steps"] == 300 and train["lr"] == pytest.approx(1e-3)
    assert train["time_budget"] == 600.0 and train["gan_mode"] == "lsgan"
    assert train["init_model"] == model
    assert "depth" not in train  # still ticked "auto": left to the recipe

    w.form["steps"].value = 50
    w.form["gan_mode"].value = "hinge"
    w.form["depth"].value = 3  # set by hand; the file leaves it to the recipe
    w.init_model.line_edit.value = ""
    assert w.config_files.load(path) == []  # every option of the file has a field
    assert w.form["steps"].value == 300 and w.form["gan_mode"].value == "lsgan"
    assert w.form["lr"].value == pytest.approx(1e-3)
    assert w.form["time_budget"].value == 600.0 and w.form["time_budget"].editor.value == 10
    assert w.form["depth"].value is None  # back to auto, as the file says
    assert w._init_model_path() == str(model)
    assert w.form.collapsible.isExpanded()  # a changed advanced option (lr) is shown


def test_the_buttons_save_and_load_through_their_dialogs(train_widget, tmp_path, monkeypatch):
    """A bad file changes nothing in the form, and the status line says what is wrong."""
    from napari_pix2pix.plugin import run_config_buttons

    w, chosen = train_widget, tmp_path / "run.yaml"
    dialogs = run_config_buttons.QFileDialog
    monkeypatch.setattr(dialogs, "getSaveFileName", lambda *a: (str(chosen), ""))
    monkeypatch.setattr(dialogs, "getOpenFileName", lambda *a: (str(chosen), ""))
    w.form["steps"].value = 123
    w.config_files.save_button.native.click()
    assert read_run_config(chosen, "train")["steps"] == 123
    assert f"Options saved to {chosen}" in w.controls.status.text()

    chosen.write_text("train:\n  steps: 40\n  lr: -1\n", encoding="utf-8")
    w.config_files.load_button.native.click()
    assert w.form["steps"].value == 123  # nothing set from a file with an error
    status = w.controls.status.text()
    assert "Could not load" in status and "lr must be" in status and str(chosen) in status

    chosen.write_text("train:\n  axes: CYX\n  val_fraction: 0.2\n", encoding="utf-8")
    w.config_files.load_button.native.click()
    assert w.form["val_fraction"].value == pytest.approx(0.2)
    assert w.form["steps"].value is None  # left out by the file: auto
    assert "Not set here: axes." in w.controls.status.text()  # the layers' axes


def test_the_buttons_sit_beside_restore_defaults(train_widget):
    row = train_widget.form.buttons
    assert [b.text for b in row] == ["Restore defaults", "Save config…", "Load config…"]
