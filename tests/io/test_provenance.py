"""Only a prediction carries the mark that says napari-pix2pix wrote it (with its
model's hash), so overwrite options replace predictions and never a user's own image:
one saved with write_image, napari's Save through our writer, the demo's inputs and
targets, or a file from a version that did not mark its predictions."""

import hashlib

import nibabel as nib
import numpy as np
import pytest
import tifffile
import zarr

import napari_pix2pix as p2p
from napari_pix2pix.cli import main
from napari_pix2pix.demo import write_demo_data
from napari_pix2pix.plugin.reader import napari_write_image


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def model_file(tmp_path, trained):
    trained.save(tmp_path / "m.safetensors")
    return tmp_path / "m.safetensors"


@pytest.fixture
def model_sha256(model_file):
    return hashlib.sha256(p2p.load_model(model_file).to_bytes()).hexdigest()


def refuses_overwrite(model_file, image, out, capsys):
    """predict(if_exists="overwrite") and the CLI's --overwrite both leave ``out`` as it
    was, saying it is not a prediction and what to do."""
    before = digest(out)
    with pytest.raises(p2p.InputError, match="not written by napari-pix2pix as a prediction"):
        p2p.predict(model_file, image, out=out, if_exists="overwrite", device="cpu")
    argv = ["predict", str(model_file), str(image), "-o", str(out), "--overwrite"]
    assert main([*argv, "--device", "cpu"]) == 2
    assert "delete or rename it yourself" in capsys.readouterr().err
    assert digest(out) == before


def test_a_users_image_saved_by_us_is_never_overwritten(tmp_path, model_file, pair, capsys):
    source, target = pair
    p2p.write_image(tmp_path / "in.ome.tif", source, "YX")
    for name in ("truth.ome.tif", "truth.nii.gz"):
        p2p.write_image(tmp_path / name, target, "YX")
        refuses_overwrite(model_file, tmp_path / "in.ome.tif", tmp_path / name, capsys)
    # napari's Save, through the plugin's writer
    napari_write_image(str(tmp_path / "layer.tif"), target, {"scale": [0.5, 0.5]})
    refuses_overwrite(model_file, tmp_path / "in.ome.tif", tmp_path / "layer.tif", capsys)
    # write_image's own overwrite replaces only a prediction, not an image of the user's
    with pytest.raises(p2p.InputError, match="as a prediction"):
        p2p.write_image(tmp_path / "truth.ome.tif", source, "YX", overwrite=True)


def test_the_demos_inputs_and_targets_are_never_overwritten(tmp_path, model_file, capsys):
    write_demo_data(tmp_path)
    for name in ("train_target.ome.tif", "stack_target.ome.tif", "train_source.ome.tif"):
        refuses_overwrite(model_file, tmp_path / "stack_source.ome.tif", tmp_path / name, capsys)
    write_demo_data(tmp_path)  # the demo itself replaces its own, in its own folder


def test_a_file_from_before_predictions_were_marked_is_refused(tmp_path, model_file, pair, capsys):
    p2p.write_image(tmp_path / "in.ome.tif", pair[0], "YX")
    old = tmp_path / "old.tif"
    tifffile.imwrite(old, pair[1], software="napari-pix2pix 0.0.9")
    refuses_overwrite(model_file, tmp_path / "in.ome.tif", old, capsys)
    with pytest.raises(p2p.InputError, match="did not yet mark its predictions"):
        p2p.predict(model_file, pair[0], out=old, if_exists="overwrite", device="cpu")


def test_predictions_carry_the_mark_and_the_model_and_are_replaced(
    tmp_path, model_file, model_sha256, pair
):
    source = pair[0]
    tif, nii, store = tmp_path / "p.ome.tif", tmp_path / "p.nii.gz", tmp_path / "p.zarr"
    for out in (tif, nii, store):
        p2p.predict(model_file, source, out=out, device="cpu")
    with tifffile.TiffFile(tif) as f:
        assert f.pages.first.software == (
            f"napari-pix2pix {p2p.__version__} prediction; model sha256 {model_sha256}"
        )
    descrip = bytes(nib.load(nii).header["descrip"]).rstrip(b"\0")
    assert descrip == b"napari-pix2pix prediction " + model_sha256[:16].encode()
    info = zarr.open_array(str(store), mode="r").attrs["napari_pix2pix"]
    assert info["model_sha256"] == model_sha256 and "prediction" in info["software"]
    for out in (tif, nii, store):
        p2p.predict(model_file, source[::-1], out=out, if_exists="overwrite", device="cpu")
    assert not np.array_equal(tifffile.imread(tif), p2p.predict(model_file, source))
    # saved again by the user (an edited prediction), it becomes theirs: unmarked
    for out in (tif, nii):
        p2p.write_image(out, p2p.read_image(out).array, "YX", overwrite=True)
        with pytest.raises(p2p.InputError, match="as a prediction"):
            p2p.predict(model_file, source, out=out, if_exists="overwrite", device="cpu")
