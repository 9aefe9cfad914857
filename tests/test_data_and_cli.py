"""Axes, TIFF metadata, clear input errors, the command line and a GUI-free import."""

import subprocess
import sys

import numpy as np
import pytest
import tifffile

import napari_pix2pix as p2p
from napari_pix2pix import read_image, write_image
from napari_pix2pix.cli import main
from napari_pix2pix.engine.axes import to_canonical


def test_import_does_not_pull_qt_or_napari():
    code = (
        "import sys, napari_pix2pix; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('qtpy', 'napari', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_canonical_layouts():
    x = np.zeros((5, 3, 7, 8))
    assert to_canonical(x, "ZCYX", 2).shape == (5, 3, 7, 8)
    assert to_canonical(x, "ZCYX", 3).shape == (1, 3, 5, 7, 8)
    assert to_canonical(np.zeros((7, 8, 3)), "YXC", 2).shape == (1, 3, 7, 8)
    assert to_canonical(np.zeros((2, 4, 7, 8)), "TZYX", 2).shape == (8, 1, 7, 8)


def test_tiff_round_trip_keeps_scale_and_axes(tmp_path):
    data = np.arange(2 * 3 * 16 * 20, dtype=np.uint16).reshape(2, 3, 16, 20)
    path = write_image(tmp_path / "x.ome.tif", data, "ZCYX", {"Z": 2.0, "Y": 0.25, "X": 0.25}, "µm")
    image = read_image(path)
    np.testing.assert_array_equal(image.array, data)
    assert image.axes == "ZCYX"
    assert image.scale == pytest.approx({"Z": 2.0, "Y": 0.25, "X": 0.25})


def test_imagej_scale_is_read(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(
        path,
        np.zeros((4, 8, 8), np.uint16),
        imagej=True,
        resolution=(1 / 0.5, 1 / 0.5),
        metadata={"axes": "ZYX", "spacing": 3.0, "unit": "um"},
    )
    image = read_image(path)
    assert image.axes == "ZYX" and image.scale == pytest.approx({"Z": 3.0, "Y": 0.5, "X": 0.5})


def test_cli_train_predict_info_keep_scale(pair, tmp_path, capsys):
    source, target = pair
    scale = {"Y": 0.65, "X": 0.65}
    write_image(tmp_path / "s.tif", source, "YX", scale, "µm")
    write_image(tmp_path / "t.tif", target, "YX", scale, "µm")
    stack = np.stack([source, source[::-1]])
    write_image(tmp_path / "stack.tif", stack, "ZYX", {"Z": 2.0, **scale}, "µm")
    model = tmp_path / "model.safetensors"
    assert (
        main(
            [
                "train",
                str(tmp_path / "s.tif"),
                str(tmp_path / "t.tif"),
                "-o",
                str(model),
                "--steps",
                "3",
                "--patch-size",
                "32",
                "--depth",
                "4",
                "--base-channels",
                "8",
                "--disc-layers",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert p2p.load_model(model).history["steps_done"] == 3
    out = tmp_path / "pred.ome.tif"
    assert (
        main(
            [
                "predict",
                str(model),
                str(tmp_path / "stack.tif"),
                "-o",
                str(out),
                "--tile-size",
                "64",
            ]
        )
        == 0
    )
    result = read_image(out)
    assert result.array.shape == stack.shape and result.array.dtype == np.float32
    assert result.axes == "ZYX" and result.scale == pytest.approx({"Z": 2.0, **scale})
    assert main(["info", str(model)]) == 0
    assert '"steps trained": 3' in capsys.readouterr().out


def test_cli_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "napari_pix2pix.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "train" in result.stdout and "predict" in result.stdout
