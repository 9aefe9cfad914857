"""write_image writes what its name says, or nothing: an OME-TIFF under a .zarr, .png,
.h5 or suffix-less name was once written, and then could not be read back."""

import numpy as np
import pytest
import yaml

import napari_pix2pix as p2p
from napari_pix2pix.plugin.reader import napari_write_image

IMAGE = np.arange(64, dtype=np.uint16).reshape(8, 8)


@pytest.mark.parametrize("name", ["a.zarr", "x.png", "x.h5", "noext", "x.tif.bak"])
def test_a_name_it_does_not_write_is_refused_before_writing(tmp_path, name):
    with pytest.raises(p2p.ImageFileError, match=r"\.tif, \.tiff, \.ome\.tif.*\.nii, \.nii\.gz"):
        p2p.write_image(tmp_path / name, IMAGE, "YX")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["a.tif", "a.TIFF", "a.ome.tif", "a.ome.tiff", "a.nii.gz"])
def test_the_names_it_writes_read_back(tmp_path, name):
    path = p2p.write_image(tmp_path / name, IMAGE, "YX")
    assert np.array_equal(np.asarray(p2p.read_image(path).array).squeeze(), IMAGE)


def test_the_napari_writer_only_passes_names_write_image_takes(tmp_path):
    manifest = yaml.safe_load(
        open(p2p.__file__.replace("__init__.py", "plugin/napari.yaml"), encoding="utf-8")
    )
    suffixes = manifest["contributions"]["writers"][0]["filename_extensions"]
    assert set(suffixes) <= {".tif", ".tiff", ".ome.tif", ".ome.tiff", ".nii", ".nii.gz"}
    written = napari_write_image(str(tmp_path / "layer.png"), IMAGE, {})
    assert written == [str(tmp_path / "layer.png.ome.tif")]
    assert np.array_equal(np.asarray(p2p.read_image(written[0]).array), IMAGE)
