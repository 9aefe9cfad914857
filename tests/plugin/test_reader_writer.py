"""The manifest, the reader and writer and the sample data, in a real viewer."""

import subprocess
import sys

import dask.array as da
import numpy as np
import pytest

from napari_pix2pix.plugin import reader as napari_io


def test_manifest_validates():
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-pix2pix", "--imports"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    from npe2 import PluginManifest

    hub = PluginManifest.from_distribution("napari-pix2pix")  # what the napari hub shows
    assert hub.display_name == "pix2pix image-to-image translation"
    assert {str(c) for c in hub.categories} == {"Image Processing", "IO", "Dataset"}
    assert [w.display_name for w in hub.contributions.widgets] == [
        "pix2pix: Train",
        "pix2pix: Predict",
    ]


def test_reader_writer_round_trip_keeps_data_and_scale(viewer, tmp_path):
    data = np.random.default_rng(0).integers(0, 4000, (3, 40, 50)).astype(np.uint16)
    layer = viewer.add_image(
        data,
        name="x",
        scale=(2.0, 0.25, 0.25),
        axis_labels=("Z", "Y", "X"),
        units=("micrometer",) * 3,
    )
    written = napari_io.napari_write_image(
        str(tmp_path / "x.ome.tif"), layer.data, layer.as_layer_data_tuple()[1]
    )
    reader = napari_io.napari_get_reader(written[0])
    ((back, meta, kind),) = reader(written[0])
    assert kind == "image"
    np.testing.assert_array_equal(np.asarray(back), data)
    assert meta["scale"] == pytest.approx([2.0, 0.25, 0.25]) and meta["axis_labels"] == [
        "Z",
        "Y",
        "X",
    ]
    opened = viewer.open(written[0], plugin="napari-pix2pix")[0]
    np.testing.assert_allclose(opened.scale, (2.0, 0.25, 0.25))


def test_reader_splits_channels_and_opens_large_files_lazily(viewer, tmp_path, monkeypatch):
    from napari_pix2pix import write_image

    data = np.random.default_rng(0).integers(0, 4000, (2, 3, 40, 50)).astype(np.uint16)
    path = write_image(tmp_path / "c.ome.tif", data, "ZCYX", {"Z": 1.5, "Y": 0.5, "X": 0.5}, "µm")
    monkeypatch.setattr(napari_io, "LAZY_BYTES", 1000)  # this file now counts as large
    ((lazy, meta, _),) = napari_io.read_image_layers(str(path))
    assert isinstance(lazy, da.Array)  # nothing read yet
    assert meta["channel_axis"] == 1 and meta["scale"] == pytest.approx([1.5, 0.5, 0.5])
    layers = viewer.open(str(path), plugin="napari-pix2pix")
    assert len(layers) == 3 and layers[0].data.shape == (2, 40, 50)
    np.testing.assert_array_equal(np.asarray(layers[2].data), data[:, 2])
    assert napari_io.napari_get_reader(str(tmp_path / "x.png")) is None


def test_sample_data_gives_a_pair(viewer):
    layers = viewer.open_sample("napari-pix2pix", "paired_sample")
    assert len(layers) == 2 and layers[0].data.shape == layers[1].data.shape == (512, 512)


@pytest.mark.parametrize("name", ["ct.nii.gz", "ct.nii"])
def test_reader_opens_volumes_with_voxel_spacing_in_zyx(viewer, tmp_path, monkeypatch, name):
    import nibabel as nib

    data = np.arange(40 * 30 * 5, dtype=np.int16).reshape(40, 30, 5) - 1000  # X, Y, Z
    affine = np.diag([0.8, 0.9, 2.5, 1.0])
    affine[:3, 3] = [-20.0, 10.0, 5.0]
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, tmp_path / name)
    path = str(tmp_path / name)
    monkeypatch.setattr(napari_io, "LAZY_BYTES", 1000)  # the .nii opens lazily (memory-mapped)
    ((back, meta, kind),) = napari_io.napari_get_reader(path)(path)
    np.testing.assert_array_equal(np.asarray(back), data.transpose())
    assert meta["scale"] == pytest.approx([2.5, 0.9, 0.8]) and meta["axis_labels"] == list("ZYX")
    assert meta["units"] == ["mm"] * 3
    (layer,) = viewer.open(path, plugin="napari-pix2pix")
    np.testing.assert_allclose(layer.scale, (2.5, 0.9, 0.8))
    assert str(layer.units[0]) == "millimeter"


def test_a_dropped_tiff_opens_without_a_dialog_once_the_user_agreed(viewer, tmp_path):
    """napari asks which reader to use when two claim a file; the Train widget offers to
    make napari-pix2pix the reader for TIFF and NIfTI, and then a drop just opens."""
    from napari.errors import MultipleReaderError
    from napari.settings import get_settings

    from napari_pix2pix.io.images import write_image
    from napari_pix2pix.plugin.reader_offer import patterns
    from napari_pix2pix.plugin.train_widget import TrainWidget

    plugins = get_settings().plugins
    before = dict(plugins.extension2reader)
    try:
        plugins.extension2reader = {k: v for k, v in before.items() if k not in patterns()}
        path = tmp_path / "cells.ome.tif"
        image = np.random.default_rng(0).integers(0, 4000, (40, 50)).astype(np.uint16)
        write_image(path, image, axes="YX", scale={"Y": 0.5, "X": 0.25})
        with pytest.raises(MultipleReaderError):  # the dialog's cause: two readers
            viewer._open_or_raise_error([str(path)])
        w = TrainWidget(viewer)
        viewer.window.add_dock_widget(w, name="Train")
        assert w.reader_offer.offered
        w.reader_offer.accept.native.click()
        assert not w.reader_offer.offered
        layers = viewer._open_or_raise_error([str(path)])  # the drop path, no dialog
        np.testing.assert_allclose(layers[0].scale, (0.5, 0.25))
        assert not TrainWidget(viewer).reader_offer.offered  # asked once
    finally:
        plugins.extension2reader = before
