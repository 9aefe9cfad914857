"""TIFF files: data, axes and physical pixel sizes in and out."""

import numpy as np
import pytest
import tifffile

from napari_pix2pix import read_image, write_image


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
