"""Physical sizes are right or absent: every size written is read back equal, through
every writer and unit; a file's invalid size (zero, negative, NaN, an unknown unit) is
left out with a warning naming the axis, never taken from another axis; a user's is
refused before anything is written; OME-XML that declares fewer planes than the file
stores is refused; a file whose OME-XML cannot be read says so."""

import warnings

import nibabel as nib
import numpy as np
import pytest
import tifffile

import napari_pix2pix as p2p
from napari_pix2pix import read_image, write_image
from napari_pix2pix.io import physical_sizes
from napari_pix2pix.io.metadata import pixel_size, scale_mismatch

MICROMETRES = {"nm": 1e-3, "µm": 1.0, "mm": 1e3}


def _read_quietly(path, **kwargs):
    """read_image, failing the test on any warning: a valid file has nothing to say."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_image(path, **kwargs)


def _read_warned(path) -> tuple:
    with pytest.warns(UserWarning) as caught:
        image = read_image(path)
    return image, "\n".join(str(w.message) for w in caught)


@pytest.mark.parametrize("suffix", [".tif", ".ome.tif", ".nii", ".nii.gz"])
@pytest.mark.parametrize("unit", ["nm", "µm", "mm", "pixel", None])
@pytest.mark.parametrize("axes, sizes", [("YX", (0.3, 0.7)), ("ZYX", (5.0, 0.25, 0.125))])
def test_every_size_written_is_read_back_equal(tmp_path, suffix, unit, axes, sizes):
    data = np.arange(np.prod((3, 8, 10)[-len(axes) :]), dtype=np.float32)
    data = data.reshape((3, 8, 10)[-len(axes) :])
    scale = dict(zip(axes, sizes))
    image = _read_quietly(write_image(tmp_path / f"x{suffix}", data, axes, scale, unit))
    np.testing.assert_array_equal(image.array, data)
    if unit in MICROMETRES:  # a length: the same physical size, whatever unit it is read in
        factor = MICROMETRES[unit] / MICROMETRES[image.unit]
        assert image.scale == pytest.approx({a: s * factor for a, s in scale.items()})
    else:  # sizes in pixels: the same numbers (NIfTI's 'unknown' unit is read as mm)
        assert image.scale == pytest.approx(scale)
        assert image.unit == ("mm" if ".nii" in suffix else None)


@pytest.mark.parametrize(
    "unit, spacing, expected",
    [
        ("mm", 2.0, {"Z": 2000.0, "Y": 1000.0, "X": 1000.0}),  # Fiji's usual MR export
        ("micron", 0.5, {"Z": 0.5, "Y": 1.0, "X": 1.0}),
        ("nm", 300.0, {"Z": 0.3, "Y": 1e-3, "X": 1e-3}),
    ],
)
def test_an_imagej_resolution_of_one_pixel_per_unit_is_a_real_size(
    tmp_path, unit, spacing, expected
):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(
        path,
        np.zeros((4, 8, 8), np.uint16),
        imagej=True,
        resolution=(1, 1),
        metadata={"axes": "ZYX", "spacing": spacing, "unit": unit},
    )
    image = _read_quietly(path)
    assert image.scale == pytest.approx(expected) and image.unit == "µm"


def test_imagej_sizes_in_pixels_stay_numbers_and_no_resolution_stays_absent(tmp_path):
    path = tmp_path / "ij.tif"
    meta = {"axes": "ZYX", "spacing": 2.0, "unit": "pixel"}
    tifffile.imwrite(path, np.zeros((4, 8, 8), np.uint16), imagej=True, metadata=meta)
    image = _read_quietly(path)  # 1/1 in pixels: no size of Y and X at all
    assert image.scale == pytest.approx({"Z": 2.0}) and image.unit is None


def _ome_xml(sizes: str, size_z: int = 1, tiffdata: bool = True) -> str:
    """A one-image OME-XML, uint8 16x16, with ``sizes`` as Pixels attributes (and a
    TiffData element, which says that the file's pages are its planes, unless not)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/'
        'Schemas/OME/2016-06"><Image ID="Image:0" Name="a"><Pixels ID="Pixels:0" '
        f'DimensionOrder="XYZCT" Type="uint8" SizeX="16" SizeY="16" SizeZ="{size_z}" '
        f'SizeC="1" SizeT="1" {sizes}><Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
        f"{'<TiffData/>' if tiffdata else ''}</Pixels></Image></OME>"
    )


def _ome_file(path, xml: str, planes: int = 1):
    with tifffile.TiffWriter(path) as tif:
        for i in range(planes):
            tif.write(
                np.full((16, 16), i, np.uint8),
                description=xml if i == 0 else None,
                metadata=None,
                photometric="minisblack",
                contiguous=False,
            )
    return path


def test_an_axis_in_a_unit_we_do_not_know_has_no_size_it_never_borrows_one(tmp_path):
    sizes = (
        'PhysicalSizeX="0.1" PhysicalSizeXUnit="thou" PhysicalSizeY="0.5" PhysicalSizeYUnit='
        '"&#181;m" PhysicalSizeZ="3" PhysicalSizeZUnit="reference frame"'
    )
    image, said = _read_warned(_ome_file(tmp_path / "a.ome.tif", _ome_xml(sizes, 2), 2))
    # thou is OME's (25.4 µm); 'reference frame' is no length: Z has no size, not 3 µm
    assert image.scale == pytest.approx({"X": 2.54, "Y": 0.5}) and image.unit == "µm"
    assert "a.ome.tif" in said and "Z" in said and "'reference frame'" in said


@pytest.mark.parametrize("bad", ["0", "-0.5", "NaN", "inf", "abc"])
def test_an_invalid_size_in_a_tiff_is_absent_with_a_warning(tmp_path, bad):
    sizes = f'PhysicalSizeX="0.5" PhysicalSizeY="{bad}"'
    image, said = _read_warned(_ome_file(tmp_path / "a.ome.tif", _ome_xml(sizes)))
    assert image.scale == pytest.approx({"X": 0.5}) and image.unit == "µm"
    assert "a.ome.tif" in said and "size of Y" in said and bad in said

    path = tmp_path / "ij.tif"
    meta = {"axes": "ZYX", "spacing": float(bad) if bad != "abc" else bad, "unit": "um"}
    tifffile.imwrite(
        path, np.zeros((2, 8, 8), np.uint8), imagej=True, resolution=(2, 2), metadata=meta
    )
    image, said = _read_warned(path)
    assert image.scale == pytest.approx({"Y": 0.5, "X": 0.5}) and "size of Z" in said


def test_an_invalid_nifti_spacing_is_absent_with_a_warning(tmp_path):
    image = nib.Nifti1Image(np.zeros((8, 6, 4), np.float32), np.eye(4))
    # (nibabel itself makes a negative pixdim positive and a zero one 1, as it loads)
    image.header["pixdim"][1:4] = [0.5, 0.7, np.nan]
    image.header.set_xyzt_units("mm")
    nib.save(image, tmp_path / "v.nii.gz")
    read, said = _read_warned(tmp_path / "v.nii.gz")
    assert read.scale == pytest.approx({"X": 0.5, "Y": 0.7}) and read.unit == "mm"
    assert "v.nii.gz" in said and "size of Z is nan" in said


@pytest.mark.parametrize("suffix", [".ome.tif", ".nii"])
@pytest.mark.parametrize(
    "scale, unit, said",
    [
        ({"Y": 0.0, "X": 1.0}, "µm", "axis Y is 0.0"),
        ({"Z": -2.0, "Y": 1.0, "X": 1.0}, "mm", "axis Z is -2.0"),
        ({"Y": 1.0, "X": float("nan")}, "µm", "axis X is nan"),
        ({"Y": 1.0, "X": "1"}, "µm", "axis X is '1'"),
        ({"Y": 1.0, "X": 1.0}, "furlong", "unit 'furlong'"),
    ],
)
def test_a_users_invalid_size_is_refused_before_anything_is_written(
    tmp_path, suffix, scale, unit, said
):
    path = tmp_path / f"out{suffix}"
    data = np.zeros((2, 8, 8), np.float32)
    with pytest.raises(p2p.InputError, match=said):
        write_image(path, data, "ZYX", scale, unit)
    assert list(tmp_path.iterdir()) == []


def test_ome_xml_declaring_fewer_planes_than_the_file_stores_is_refused(tmp_path):
    path = _ome_file(tmp_path / "short.ome.tif", _ome_xml("", size_z=2), planes=4)
    for lazy in (False, True):
        with pytest.raises(p2p.ImageFileError, match="stores 4 planes .* declares 2"):
            read_image(path, lazy=lazy)


def test_files_whose_planes_all_belong_to_an_image_still_read(tmp_path):
    assert _read_quietly(_ome_file(tmp_path / "a.ome.tif", _ome_xml("", 3), 3)).array.shape == (
        3,
        16,
        16,
    )
    positions = tmp_path / "positions.ome.tif"
    with tifffile.TiffWriter(positions, ome=True) as tif:
        tif.write(np.zeros((2, 16, 16), np.uint8), metadata={"axes": "ZYX"})
        tif.write(np.zeros((3, 16, 16, 3), np.uint8), photometric="rgb")
    assert _read_quietly(positions, series=1).array.shape == (3, 16, 16, 3)
    pyramid = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(pyramid, ome=True) as tif:
        tif.write(
            np.ones((2, 64, 64), np.uint8), subifds=1, metadata={"axes": "ZYX"}, tile=(16, 16)
        )
        tif.write(np.ones((2, 32, 32), np.uint8), subfiletype=1, tile=(16, 16))
    assert _read_quietly(pyramid).array.shape == (2, 64, 64)
    hyperstack = tmp_path / "ij.tif"
    data = np.zeros((2, 3, 4, 16, 16), np.uint8)
    tifffile.imwrite(hyperstack, data, imagej=True, metadata={"axes": "TZCYX"})
    assert _read_quietly(hyperstack).array.shape == data.shape


@pytest.mark.parametrize("size_z", [2, 6])
def test_ome_xml_without_tiffdata_declaring_another_plane_count_is_refused(tmp_path, size_z):
    xml = _ome_xml("", size_z=size_z, tiffdata=False)
    path = _ome_file(tmp_path / "bare.ome.tif", xml, planes=4)
    for lazy in (False, True):
        with pytest.raises(p2p.ImageFileError, match=f"stores 4 planes .* declares {size_z}"):
            read_image(path, lazy=lazy)
    # the same count without TiffData: the pages are the planes, in order
    path = _ome_file(tmp_path / "ok.ome.tif", _ome_xml("", 4, tiffdata=False), planes=4)
    assert _read_quietly(path).array.shape == (4, 16, 16)


@pytest.mark.parametrize("lazy", [False, True])
def test_an_ome_tiff_cut_short_says_its_sizes_are_lost_or_is_refused_as_truncated(tmp_path, lazy):
    data = np.arange(3 * 16 * 16, dtype=np.uint8).reshape(3, 16, 16)
    whole = write_image(tmp_path / "x.tif", data, "ZYX", {"Z": 2, "Y": 0.5, "X": 0.5}, "µm")
    content = whole.read_bytes()
    cut = tmp_path / "c.tif"
    cut.write_bytes(content[:-60])  # the OME-XML, written last, loses its end
    with pytest.warns(UserWarning) as caught:
        image = read_image(cut, lazy=lazy)
    said = "\n".join(str(w.message) for w in caught)
    assert "c.tif" in said and "OME-XML" in said and "past the end of the file" in said
    assert "pixel sizes and axes could not be read" in said
    np.testing.assert_array_equal(np.asarray(image.array), data)  # the planes are whole
    cut.write_bytes(content[:700])  # into the pixel data: refused, not read as zeros
    with pytest.raises(p2p.ImageFileError, match="truncated"):
        read_image(cut, lazy=lazy)


def test_an_ome_xml_that_is_not_valid_xml_says_its_sizes_are_lost(tmp_path):
    xml = _ome_xml('PhysicalSizeX="0.5" PhysicalSizeY="0.5"').replace("<Channel", "<Channel <")
    image, said = _read_warned(_ome_file(tmp_path / "bad.ome.tif", xml))
    assert image.scale == {} and image.array.shape == (16, 16)
    assert "bad.ome.tif" in said and "not valid XML" in said and "could not be read" in said


def test_a_resolution_tag_of_zero_says_so_not_that_the_size_is_infinite(tmp_path):
    path = tmp_path / "r0.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8), resolution=((0, 1), (2, 1)))
    image, said = _read_warned(path)
    assert image.scale == pytest.approx({"Y": 12700.0}) and image.unit == "µm"
    assert "r0.tif" in said and "XResolution tag is 0" in said and "no size can be derived" in said
    assert "inf" not in said.replace("inch", "")


@pytest.mark.parametrize(
    "scale, unit, differs",
    [
        ({"Y": 0.5, "X": 0.5}, "inch", True),  # the same numbers, 25400 times larger
        ({"Y": 500.0, "X": 500.0}, "nm", False),  # the same size in another unit
        ({"Y": 0.0005, "X": 0.0005}, "mm", False),
        ({"Y": 1.0, "X": 1.0}, "nm", True),
        ({"Y": 0.5, "X": 0.5}, None, False),  # in pixels: no length to compare with
        ({"Y": 0.5, "X": 0.5}, "pixel", False),
    ],
)
def test_pixel_sizes_in_different_units_are_compared_in_micrometres(scale, unit, differs):
    trained = [{"Y": 0.5, "X": 0.5, "unit": "µm"}]
    said = scale_mismatch(trained, pixel_size(scale, unit))
    assert bool(said) is differs
    if differs:
        assert unit in said and "0.5 x 0.5 µm" in said


def test_the_rule_documents_that_niftis_unknown_unit_is_read_as_mm(tmp_path):
    image = nib.Nifti1Image(np.zeros((8, 6, 4), np.float32), np.eye(4))
    image.header["pixdim"][1:4] = [0.5, 0.7, 2.0]
    image.header.set_xyzt_units("unknown")
    nib.save(image, tmp_path / "u.nii")
    read = _read_quietly(tmp_path / "u.nii")
    assert read.unit == "mm" and read.scale == pytest.approx({"X": 0.5, "Y": 0.7, "Z": 2.0})
    rule = " ".join(physical_sizes.__doc__.split())
    assert "NIfTI" in rule and "'unknown'" in rule and "millimetres" in rule


def test_a_nifti_voxel_size_of_zero_is_absent_not_one(tmp_path):
    """nibabel's loader turns a zero pixdim into 1, a size the file never had: the axis
    has no size instead, with a warning naming it."""
    import struct

    path = write_image(tmp_path / "z.nii", np.zeros((6, 5, 4), np.float32), "ZYX",
                       {"Z": 3.0, "Y": 2.0, "X": 1.5}, "mm")  # fmt: skip
    data = bytearray(path.read_bytes())
    struct.pack_into("<f", data, 80, 0.0)  # pixdim[1], the x size
    path.write_bytes(bytes(data))
    image, said = _read_warned(path)
    assert "X" not in image.scale and image.scale["Y"] == pytest.approx(2.0)
    assert "X" in said


@pytest.mark.parametrize("unit, factor", [("microns", 1.0), ("inches", 25400.0)])
def test_plural_unit_names_are_units(unit, factor):
    from napari_pix2pix.io.physical_sizes import micrometres

    assert micrometres(unit) == factor
