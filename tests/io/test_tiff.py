"""TIFF files: data, axes and physical pixel sizes in and out."""

import numpy as np
import pytest
import tifffile

from napari_pix2pix import read_image, write_image
from napari_pix2pix.errors import ImageFileError


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


@pytest.mark.parametrize(
    "resolution, unit, expected_um",
    [
        ((10000, 10000), "CENTIMETER", 1.0),  # 10,000 px/cm: 1 µm per pixel
        ((25400, 12700), "INCH", (1.0, 2.0)),  # 25,400 px/inch in X, half that in Y
        ((72, 72), "INCH", 25400 / 72),  # a "72 dpi" default is 352.8 µm per pixel, not 1/72
        ((20000, 20000), "MILLIMETER", 0.05),  # tifffile's extension of the tag
    ],
)
def test_resolution_unit_is_honoured(tmp_path, resolution, unit, expected_um):
    path = tmp_path / "tagged.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), resolution=resolution, resolutionunit=unit)
    image = read_image(path)
    x, y = expected_um if isinstance(expected_um, tuple) else (expected_um, expected_um)
    assert image.scale == pytest.approx({"X": x, "Y": y}) and image.unit == "µm"


def test_no_resolution_unit_keeps_the_numbers_without_a_unit(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), resolution=(4, 4), resolutionunit="NONE")
    image = read_image(path)
    assert image.scale == pytest.approx({"X": 0.25, "Y": 0.25}) and image.unit is None
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16))  # tifffile writes 1/1 with unit NONE
    assert read_image(path).scale == {}


def test_ome_units_are_converted_to_micrometres(tmp_path):
    path = tmp_path / "nm.ome.tif"
    metadata = {
        "axes": "ZYX",
        "PhysicalSizeX": 650.0,
        "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 650.0,
        "PhysicalSizeYUnit": "nm",
        "PhysicalSizeZ": 2.0,
        "PhysicalSizeZUnit": "µm",
    }
    tifffile.imwrite(path, np.zeros((3, 8, 8), np.uint16), ome=True, metadata=metadata)
    image = read_image(path)
    assert image.scale == pytest.approx({"X": 0.65, "Y": 0.65, "Z": 2.0}) and image.unit == "µm"


def test_each_position_has_its_own_pixel_size(tmp_path):
    path = tmp_path / "positions.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as writer:
        for size in (0.3, 1.5):
            writer.write(
                np.zeros((8, 8), np.uint16),
                metadata={"axes": "YX", "PhysicalSizeX": size, "PhysicalSizeY": size},
            )
    assert read_image(path, series=0).scale == pytest.approx({"X": 0.3, "Y": 0.3})
    assert read_image(path, series=1).scale == pytest.approx({"X": 1.5, "Y": 1.5})


def test_a_size_without_a_unit_is_not_written_as_micrometres(tmp_path):
    """OME's default unit is µm: a size in unknown units must say 'pixel' instead."""
    path = write_image(
        tmp_path / "x.ome.tif", np.zeros((8, 8), np.float32), "YX", {"X": 0.5, "Y": 0.5}, None
    )
    with tifffile.TiffFile(path) as tif:
        assert 'PhysicalSizeXUnit="pixel"' in tif.ome_metadata
    image = read_image(path)
    assert image.scale == pytest.approx({"X": 0.5, "Y": 0.5}) and image.unit is None


def test_a_position_whose_file_is_missing_does_not_shift_the_pixel_sizes(tmp_path):
    """A multi-file OME-TIFF (one file per position, each with the whole OME-XML) opened
    without the first file: tifffile drops that position, the sizes must follow."""
    images = "".join(
        f'<Image ID="Image:{i}" Name="pos{i}"><Pixels ID="Pixels:{i}" DimensionOrder="XYZCT" '
        f'Type="uint8" SizeX="16" SizeY="16" SizeZ="2" SizeC="1" SizeT="1" '
        f'PhysicalSizeX="{size}" PhysicalSizeY="{size}"><Channel ID="Channel:{i}:0" '
        f'SamplesPerPixel="1"/><TiffData IFD="0" PlaneCount="2"><UUID '
        f'FileName="pos{i}.ome.tif">urn:uuid:{i}</UUID></TiffData></Pixels></Image>'
        for i, size in ((0, 0.3), (1, 0.9))
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/'
        f'Schemas/OME/2016-06" UUID="urn:uuid:1">{images}</OME>'
    )
    path = tmp_path / "pos1.ome.tif"
    tifffile.imwrite(
        path,
        np.zeros((2, 16, 16), np.uint8),
        description=xml,
        metadata=None,
        photometric="minisblack",
    )
    assert read_image(path).scale == pytest.approx({"X": 0.9, "Y": 0.9})


@pytest.mark.parametrize("tag", [279, 273])  # StripByteCounts, StripOffsets
def test_a_strip_with_no_data_is_refused_not_read_as_zeros(tmp_path, tag):
    """The last strip's length or offset patched to 0: tifffile reads zeros silently."""
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, np.ones((64, 64), np.uint16), rowsperstrip=8)
    with tifffile.TiffFile(path) as tif:
        entry = tif.pages[0].tags[tag]
        where, count, size = entry.valueoffset, entry.count, entry.dtype
    item = np.dtype(tifffile.TIFF.DATA_FORMATS[size]).itemsize
    data = bytearray(path.read_bytes())
    start = where + (count - 1) * item
    data[start : start + item] = bytes(item)
    path.write_bytes(bytes(data))
    for lazy in (False, True):
        with pytest.raises(ImageFileError, match="damaged: a strip or tile"):
            read_image(path, lazy=lazy)
