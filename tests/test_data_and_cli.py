"""Axes, TIFF metadata, clear input errors, the command line and a GUI-free import."""

import subprocess
import sys

import numpy as np
import pytest
import tifffile

import napari_pix2pix as p2p
from napari_pix2pix.cli import main
from napari_pix2pix.data import check_axes, read_image, to_canonical, write_image


def test_import_does_not_pull_qt_or_napari():
    code = ("import sys, napari_pix2pix; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('qtpy', 'napari', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_canonical_layouts():
    x = np.zeros((5, 3, 7, 8))
    assert to_canonical(x, "ZCYX", 2).shape == (5, 3, 7, 8)
    assert to_canonical(x, "ZCYX", 3).shape == (1, 3, 5, 7, 8)
    assert to_canonical(np.zeros((7, 8, 3)), "YXC", 2).shape == (1, 3, 7, 8)
    assert to_canonical(np.zeros((2, 4, 7, 8)), "TZYX", 2).shape == (8, 1, 7, 8)


@pytest.mark.parametrize("axes, ndim, message", [
    ("YX", 3, "has 2 letters but the image has 3"),
    ("YYX", 3, "repeats"),
    ("QYX", 3, "unknown letters"),
    ("CZX", 3, "must contain Y and X"),
])
def test_bad_axes_are_explained(axes, ndim, message):
    with pytest.raises(p2p.InputError, match=message):
        check_axes(axes, ndim)


def test_input_errors_before_training(pair, tiny):
    source, target = pair
    with pytest.raises(p2p.InputError, match="not aligned"):
        p2p.train(source, target[:100], steps=2, **tiny)
    with pytest.raises(p2p.InputError, match="another order"):
        p2p.train(source[:, :100], target[:100, :], steps=2, **tiny)
    with pytest.raises(p2p.InputError, match="multiple of 2\\*\\*depth"):
        p2p.train(source, target, steps=2, patch_size=40, depth=4)
    with pytest.raises(p2p.InputError, match="steps must be a positive integer"):
        p2p.train(source, target, **{**tiny, "batch_size": 2}, steps=0)
    bad = source.astype(np.float32)
    bad[3, 3] = np.nan
    with pytest.raises(p2p.InputError, match="NaN"):
        p2p.train(bad, target, steps=2, **tiny)
    with pytest.raises(p2p.InputError, match="constant"):
        p2p.train(np.ones_like(source), target, steps=2, **tiny)
    with pytest.raises(p2p.InputError, match="gan_mode"):
        p2p.train(source, target, steps=2, gan_mode="wgan", patch_size=32, depth=4)


def test_channel_count_mismatch_in_predict(trained):
    with pytest.raises(p2p.InputError, match="expects 1"):
        p2p.predict(trained, np.zeros((2, 64, 64), np.uint16), axes="CYX")
    with pytest.raises(p2p.InputError, match="overlap"):
        p2p.predict(trained, np.zeros((64, 64), np.uint16), overlap=1.0)


def test_tiff_round_trip_keeps_scale_and_axes(tmp_path):
    data = np.arange(2 * 3 * 16 * 20, dtype=np.uint16).reshape(2, 3, 16, 20)
    path = write_image(tmp_path / "x.ome.tif", data, "ZCYX", {"Z": 2.0, "Y": 0.25, "X": 0.25}, "µm")
    image = read_image(path)
    np.testing.assert_array_equal(image.array, data)
    assert image.axes == "ZCYX"
    assert image.scale == pytest.approx({"Z": 2.0, "Y": 0.25, "X": 0.25})


def test_imagej_scale_is_read(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, np.zeros((4, 8, 8), np.uint16), imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"axes": "ZYX", "spacing": 3.0, "unit": "um"})
    image = read_image(path)
    assert image.axes == "ZYX" and image.scale == pytest.approx({"Z": 3.0, "Y": 0.5, "X": 0.5})


def test_image_file_errors(tmp_path):
    with pytest.raises(p2p.ImageFileError, match="does not exist"):
        read_image(tmp_path / "nope.tif")
    with pytest.raises(p2p.ImageFileError, match="directory"):
        read_image(tmp_path)
    fake = tmp_path / "fake.tif"
    fake.write_text("not a tiff")
    with pytest.raises(p2p.ImageFileError, match="cannot read"):
        read_image(fake)


def test_cli_train_predict_info_keep_scale(pair, tmp_path, capsys):
    source, target = pair
    scale = {"Y": 0.65, "X": 0.65}
    write_image(tmp_path / "s.tif", source, "YX", scale, "µm")
    write_image(tmp_path / "t.tif", target, "YX", scale, "µm")
    stack = np.stack([source, source[::-1]])
    write_image(tmp_path / "stack.tif", stack, "ZYX", {"Z": 2.0, **scale}, "µm")
    model = tmp_path / "model.safetensors"
    assert main(["train", str(tmp_path / "s.tif"), str(tmp_path / "t.tif"), "-o", str(model),
                 "--steps", "3", "--patch-size", "32", "--depth", "4", "--base-channels", "8",
                 "--disc-layers", "2", "--device", "cpu"]) == 0
    assert p2p.load_model(model).history["steps_done"] == 3
    out = tmp_path / "pred.ome.tif"
    assert main(["predict", str(model), str(tmp_path / "stack.tif"), "-o", str(out),
                 "--tile-size", "64"]) == 0
    result = read_image(out)
    assert result.array.shape == stack.shape and result.array.dtype == np.float32
    assert result.axes == "ZYX" and result.scale == pytest.approx({"Z": 2.0, **scale})
    assert main(["info", str(model)]) == 0
    assert '"steps trained": 3' in capsys.readouterr().out


def test_cli_reports_user_errors_without_traceback(tmp_path, capsys):
    code = main(["predict", str(tmp_path / "missing.safetensors"), str(tmp_path / "x.tif"),
                 "-o", str(tmp_path / "out.tif")])
    assert code == 2
    assert "error: model path" in capsys.readouterr().err
    code = main(["predict", "m", "x.tif", "-o", str(tmp_path / "no" / "such" / "out.tif")])
    assert code == 2 and "output folder" in capsys.readouterr().err


def test_cli_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "napari_pix2pix.cli", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "train" in result.stdout and "predict" in result.stdout
