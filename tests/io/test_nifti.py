"""NIfTI volumes: data, affine and header in and out, through the API, predict, train
and the CLI; damaged files are explained."""

import gzip

import nibabel as nib
import numpy as np
import pytest
import tifffile

import napari_pix2pix as p2p
from napari_pix2pix import read_image, write_image
from napari_pix2pix.cli import main


@pytest.fixture(scope="module")
def model(pair):
    """Untrained in all but name (3 steps): these tests are about files, not quality."""
    tiny = dict(patch_size=32, depth=4, base_channels=8, disc_layers=2, disc_channels=8)
    return p2p.train(*pair, axes="YX", steps=3, seed=0, device="cpu", **tiny)


def oblique_affine() -> np.ndarray:
    """Rotation, shear, spacing (0.8, 0.9, 2.5) mm and an origin: nothing canonical."""
    c, s = np.cos(0.3), np.sin(0.3)
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    shear = np.array([[1, 0.2, 0], [0, 1, 0.1], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ shear @ np.diag([0.8, 0.9, 2.5])
    affine[:3, 3] = [-100.5, 20.25, 33.0]
    return affine


def save_volume(path, data_xyz: np.ndarray, affine=None) -> nib.Nifti1Image:
    image = nib.Nifti1Image(data_xyz, oblique_affine() if affine is None else affine)
    image.header.set_data_dtype(data_xyz.dtype)
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, path)
    return nib.load(path)


def ct_volume(dtype, shape=(40, 36, 3)) -> np.ndarray:
    """Hounsfield-like values (air -1000 to bone), in nibabel's (X, Y, Z) order."""
    rng = np.random.default_rng(0)
    return rng.uniform(-1000, 1500, shape).astype(dtype)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
@pytest.mark.parametrize("lazy", [False, True])
def test_round_trip_keeps_data_affine_and_header(tmp_path, suffix, dtype, lazy):
    data = ct_volume(dtype)
    original = save_volume(tmp_path / f"ct{suffix}", data)
    image = read_image(tmp_path / f"ct{suffix}", lazy=lazy)
    assert image.axes == "ZYX" and image.array.shape == data.shape[::-1]
    assert image.unit == "mm" and image.scale["X"] == pytest.approx(0.8)
    np.testing.assert_array_equal(np.asarray(image.array), data.transpose())
    out = write_image(tmp_path / f"out{suffix}", image.array, image.axes, meta=image.meta)
    back = nib.load(out)
    assert back.get_data_dtype() == dtype
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), data)
    assert np.array_equal(back.affine, original.affine)
    assert np.array_equal(back.header.get_qform(), original.header.get_qform())
    for key in ("sform_code", "qform_code", "xyzt_units", "pixdim"):
        assert np.array_equal(back.header[key], original.header[key]), key
    assert bytes(back.header["descrip"]) == bytes(original.header["descrip"])  # not marked


def test_volume_without_header_gets_an_affine_from_its_scale(tmp_path):
    data = np.arange(2 * 3 * 8 * 9, dtype=np.float32).reshape(2, 3, 8, 9) - 100
    out = write_image(tmp_path / "c.nii.gz", data, "CZYX", {"Z": 2.0, "Y": 0.5, "X": 0.25}, "mm")
    back = nib.load(out)
    assert back.shape == (9, 8, 3, 1, 2)  # NIfTI's X, Y, Z, T, C
    assert np.array_equal(back.affine, np.diag([0.25, 0.5, 2.0, 1.0]))
    image = read_image(out)
    assert image.axes == "CTZYX"
    np.testing.assert_array_equal(image.array[:, 0], data)


def test_prediction_keeps_the_affine_and_replaces_only_its_own(model, tmp_path):
    original = save_volume(tmp_path / "mr.nii.gz", ct_volume(np.float32))
    out = tmp_path / "ct.nii.gz"
    assert p2p.predict(model, tmp_path / "mr.nii.gz", out=out) == out
    result = nib.load(out)
    assert result.shape == original.shape and result.get_data_dtype() == np.float32
    assert np.array_equal(result.affine, original.affine)
    assert np.array_equal(result.header["xyzt_units"], original.header["xyzt_units"])
    with pytest.raises(p2p.InputError, match="exists"):
        p2p.predict(model, tmp_path / "mr.nii.gz", out=out)
    p2p.predict(model, tmp_path / "mr.nii.gz", out=out, if_exists="overwrite")
    save_volume(tmp_path / "theirs.nii.gz", ct_volume(np.int16))
    before = (tmp_path / "theirs.nii.gz").read_bytes()
    with pytest.raises(p2p.InputError, match="not written by napari-pix2pix"):
        p2p.predict(
            model, tmp_path / "mr.nii.gz", out=tmp_path / "theirs.nii.gz", if_exists="overwrite"
        )
    assert (tmp_path / "theirs.nii.gz").read_bytes() == before
    with pytest.raises(p2p.InputError, match="needs a .zarr"):
        p2p.predict(model, tmp_path / "mr.nii.gz", out=tmp_path / "new.nii", if_exists="resume")


def test_nifti_output_too_large_for_memory_suggests_zarr(model, tmp_path, monkeypatch):
    from napari_pix2pix.engine import memory
    from napari_pix2pix.workflows import prediction

    save_volume(tmp_path / "mr.nii", ct_volume(np.float32))  # mapped lazily, not checked
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    monkeypatch.setattr(prediction, "device_memory", lambda device: 2**30)  # tiles fit
    with pytest.raises(p2p.InputError, match="zarr"):
        p2p.predict(model, tmp_path / "mr.nii", out=tmp_path / "ct.nii.gz")


def test_train_on_volumes(tiny, tmp_path):
    source = ct_volume(np.float32, (48, 48, 4))
    save_volume(tmp_path / "mr.nii.gz", source)
    save_volume(tmp_path / "ct.nii.gz", -2 * source)
    model = p2p.train(tmp_path / "mr.nii.gz", tmp_path / "ct.nii.gz", steps=2, seed=0, **tiny)
    assert model.config.source_axes == "ZYX" and model.history.steps_done == 2


def test_cli_trains_and_predicts_volumes(tmp_path, capsys):
    original = save_volume(tmp_path / "mr.nii.gz", ct_volume(np.int16, (48, 48, 3)))
    save_volume(tmp_path / "ct.nii.gz", ct_volume(np.int16, (48, 48, 3)) // 2)
    model = str(tmp_path / "m.safetensors")
    tiny = ["--patch-size", "32", "--depth", "4", "--base-channels", "8", "--disc-layers", "2"]
    mr, ct = str(tmp_path / "mr.nii.gz"), str(tmp_path / "ct.nii.gz")
    assert main(["train", mr, ct, "-o", model, "--steps", "2", "--device", "cpu", *tiny]) == 0
    assert "warning: the validation part is only" in capsys.readouterr().err  # 3 slices: X split
    out = tmp_path / "pred.nii.gz"
    argv = ["predict", model, mr, "-o", str(out)]
    assert main(argv) == 0
    assert np.array_equal(nib.load(out).affine, original.affine)
    assert nib.load(out).shape == original.shape
    assert main(argv) == 2  # exists: refused without --overwrite
    assert main([*argv, "--overwrite"]) == 0


def test_damaged_files_are_explained(tmp_path):
    save_volume(tmp_path / "ok.nii.gz", ct_volume(np.int16))
    whole = (tmp_path / "ok.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(whole[: len(whole) // 2])
    raw = gzip.decompress(whole)
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) - 100])
    tifffile.imwrite(tmp_path / "tiff.nii", np.zeros((8, 8), np.uint16))
    (tmp_path / "junk.nii").write_bytes(b"\x00garbage" * 100)
    (tmp_path / "junk.nii.gz").write_bytes(b"not gzip at all" * 10)
    for name in ("cut.nii.gz", "cut.nii", "tiff.nii", "junk.nii", "junk.nii.gz"):
        for lazy in (False, True):
            with pytest.raises(p2p.ImageFileError, match=f"{name}.*(NIfTI|truncated)"):
                read_image(tmp_path / name, lazy=lazy)


def test_itk_formats_go_through_monais_itk_reader(tmp_path, monkeypatch):
    """ITK is not a dependency: the glue is checked with a stand-in for MONAI's reader."""
    import sys
    import types

    import monai.data

    zyx = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)

    class FakeITKReader:
        def __init__(self, reverse_indexing=False):
            assert reverse_indexing  # numpy order: Z, Y, X

        def read(self, path):
            return path

        def get_data(self, image):
            meta = {"spatial_shape": (5, 4, 3), "spacing": (0.5, 0.6, 3.0), "affine": np.eye(4)}
            return zyx, meta

    monkeypatch.setitem(sys.modules, "itk", types.ModuleType("itk"))
    monkeypatch.setattr(monai.data, "ITKReader", FakeITKReader)
    (tmp_path / "v.nrrd").write_bytes(b"NRRD0004\n")
    image = read_image(tmp_path / "v.nrrd")
    assert image.axes == "ZYX" and image.unit == "mm"
    assert image.scale == pytest.approx({"X": 0.5, "Y": 0.6, "Z": 3.0})
    np.testing.assert_array_equal(image.array, zyx)


def test_itk_formats_need_itk(tmp_path):
    try:
        import itk  # noqa: F401

        pytest.skip("ITK is installed")
    except ImportError:
        pass
    (tmp_path / "v.mha").write_bytes(b"ObjectType = Image\n")
    with pytest.raises(p2p.ImageFileError, match="pip install itk"):
        read_image(tmp_path / "v.mha")


def test_a_header_whose_pixdim_disagrees_with_its_sform_is_kept(tmp_path):
    """MONAI's NibabelReader.read would replace such an sform with the qform."""
    image = nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), oblique_affine())
    image.header.set_qform(np.eye(4), code=1)
    image.header.set_zooms((1.0, 1.0, 1.0))
    nib.save(image, tmp_path / "odd.nii")
    original = nib.load(tmp_path / "odd.nii")
    read = read_image(tmp_path / "odd.nii")
    back = nib.load(write_image(tmp_path / "out.nii", read.array, read.axes, meta=read.meta))
    assert np.array_equal(back.affine, original.affine)
    assert np.array_equal(back.header.get_qform(), original.header.get_qform())


def test_a_unit_code_nifti_does_not_define_counts_as_mm(tmp_path):
    image = nib.Nifti1Image(np.zeros((16, 16, 4), np.float32), np.eye(4))
    image.header["xyzt_units"] = 255  # nibabel itself cannot name it
    nib.save(image, tmp_path / "odd.nii.gz")
    read = read_image(tmp_path / "odd.nii.gz")
    assert read.unit == "mm" and read.array.shape == (4, 16, 16)
