"""Export to bioimage.io: the zip passes bioimageio.core's own test_model for all three
weight formats and reproduces napari_pix2pix.predict. Runs only with the [bioimageio] extra."""

import zipfile

import numpy as np
import pytest
import torch

pytest.importorskip("bioimageio.core")

from tiny_options import TINY

import napari_pix2pix as p2p
from napari_pix2pix.cli import main
from napari_pix2pix.errors import InputError
from napari_pix2pix.io.bioimageio import check_installation


@pytest.fixture(scope="module")
def exported(pair, tmp_path_factory):
    """A tiny model (20 real training steps) and its bioimage.io zip."""
    try:
        check_installation()
    except InputError as exc:  # e.g. bioimageio.spec 0.5.12 with pydantic >= 2.12
        pytest.skip(str(exc))
    source, target = pair
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread is fastest, also on a busy machine
    try:
        model = p2p.train(
            source,
            target,
            steps=20,
            **TINY,
        )
        folder = tmp_path_factory.mktemp("bioimageio")
        model_path = model.save(folder / "model.safetensors")
        zip_path = model.export_bioimageio(
            folder / "model.zip",
            name="tiny pix2pix test",
            authors=["Test Author"],
            test_input=source[40:90, 30:80],
        )
    finally:
        torch.set_num_threads(threads)
    return model, model_path, zip_path


def test_zip_contents(exported):
    _, _, zip_path = exported
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert {
        "rdf.yaml",
        "weights.pt",
        "weights_torchscript.pt",
        "weights.onnx",
        "test_input.npy",
        "test_output.npy",
        "cover.png",
        "README.md",
    } <= names
    assert not list(zip_path.parent.glob(".*.tmp*"))  # nothing half-written left behind


@pytest.mark.parametrize("weight_format", ["pytorch_state_dict", "torchscript", "onnx"])
def test_bioimageio_core_test_model_passes(exported, weight_format):
    from bioimageio.core import test_model

    summary = test_model(exported[2], weight_format=weight_format, devices=["cpu"])
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.status != "passed"]
    assert summary.status == "passed", failed
    assert any(weight_format in d.name for d in summary.details)  # it really ran inference


@pytest.mark.parametrize("weight_format", ["pytorch_state_dict", "onnx"])
def test_exported_weights_reproduce_predict(exported, held_out_pair, weight_format):
    from bioimageio.core import create_prediction_pipeline, load_description, predict

    model, _, zip_path = exported
    x = held_out_pair[0][:32, :32]  # one tile of the patch size
    expected = p2p.predict(model, x, axes="YX", device="cpu")
    descr = load_description(zip_path)
    assert descr.weights.onnx.parent == "pytorch_state_dict"
    assert descr.weights.onnx.opset_version == 18
    pipeline = create_prediction_pipeline(descr, weight_format=weight_format, devices=["cpu"])
    sample = predict(model=pipeline, inputs=x[None, None].astype(np.float32))
    actual = np.asarray(sample.members["output"].data)[0, 0]
    span = model.config.target_high[0] - model.config.target_low[0]
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4 * span)
    # the normalization is in the description, not only in the test tensors
    pre = descr.inputs[0].preprocessing
    assert any(p.id == "scale_linear" for p in pre)
    assert any(p.id == "scale_linear" for p in descr.outputs[0].postprocessing)


def test_cli_export(exported, tmp_path, capsys):
    _, model_path, _ = exported
    out = tmp_path / "cli.zip"
    assert main(["export", str(model_path), "-o", str(out), "--name", "cli export test"]) == 0
    assert zipfile.is_zipfile(out)
    assert "wrote" in capsys.readouterr().out
    # again: refused with the fix, which exists; a zip not exported by us stays refused
    assert main(["export", str(model_path), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(model_path), "-o", str(out), "--overwrite"]) == 0
    foreign = tmp_path / "mine.zip"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("notes.txt", "a year of work")
    assert main(["export", str(model_path), "-o", str(foreign), "--overwrite"]) == 2
    assert zipfile.ZipFile(foreign).namelist() == ["notes.txt"]


def test_export_refuses_bad_arguments(exported, tmp_path, capsys):
    model, model_path, _ = exported
    with pytest.raises(InputError, match=r"\.zip"):
        model.export_bioimageio(tmp_path / "model.yaml")
    with pytest.raises(InputError, match="name"):
        model.export_bioimageio(tmp_path / "a.zip", name="bad/name")
    with pytest.raises(InputError, match="test input"):
        model.export_bioimageio(tmp_path / "b.zip", test_input=np.zeros((2, 3, 32, 32)))
    assert main(["export", str(model_path), "-o", str(tmp_path / "missing" / "c.zip")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.zip"))


def test_predict_widget_export(exported, tmp_path, request, monkeypatch):
    pytest.importorskip("napari")
    pytest.importorskip("qtpy")
    from napari_pix2pix.plugin import predict_widget
    from napari_pix2pix.plugin.predict_widget import PredictWidget

    _, model_path, _ = exported
    widget = PredictWidget(request.getfixturevalue("make_napari_viewer")())
    assert not widget.chooser.export.enabled
    widget.load(model_path)
    assert widget.chooser.export.enabled
    result = widget.export_model(tmp_path / "widget.zip")
    assert result is not None and zipfile.is_zipfile(result)
    assert widget.export_model(tmp_path / "widget.txt") is None  # error shown, nothing written
    assert not (tmp_path / "widget.txt").exists()
    # the button's dialog: the chosen name gets the .zip suffix it lacks
    monkeypatch.setattr(
        predict_widget.QFileDialog,
        "getSaveFileName",
        lambda *args, **kwargs: (str(tmp_path / "chosen"), ""),
    )
    widget.chooser.export.native.click()
    assert zipfile.is_zipfile(tmp_path / "chosen.zip")


def test_a_history_from_elsewhere_does_not_break_the_export(exported, tmp_path):
    model, _, _ = exported
    with pytest.warns(UserWarning, match=r"malformed entries \(steps_done, final_metrics\)"):
        odd = p2p.Pix2PixModel(
            model.config, model.generator, {"final_metrics": [1, 2], "steps_done": "many"}
        )
    path = odd.export_bioimageio(tmp_path / "odd.zip", name="odd history test")
    assert zipfile.is_zipfile(path)


def test_an_exported_zip_opens_again_as_the_same_model(exported, held_out_pair, tmp_path, capsys):
    model, _, zip_path = exported
    assert "napari_pix2pix_model.safetensors" in zipfile.ZipFile(zip_path).namelist()
    again = p2p.load_model(zip_path)
    assert again.config == model.config
    assert again.history.steps_done == model.history.steps_done
    for key, value in model.generator.state_dict().items():
        assert torch.equal(again.generator.state_dict()[key], value.cpu()), key
    x = held_out_pair[0][:64, :64]
    np.testing.assert_allclose(
        p2p.predict(again, x, axes="YX", device="cpu"),
        p2p.predict(model, x, axes="YX", device="cpu"),
        rtol=0,
        atol=1e-5,
    )
    out = tmp_path / "from_zip.tif"  # and so does the CLI
    assert main(["predict", str(zip_path), str(tmp_path / "in.tif"), "-o", str(out)]) == 2
    p2p.write_image(tmp_path / "in.tif", x, "YX")
    assert main(["predict", str(zip_path), str(tmp_path / "in.tif"), "-o", str(out)]) == 0
    assert main(["info", str(zip_path)]) == 0
    assert "steps" in capsys.readouterr().out


def _rewrite(source, target, change):
    """A copy of the zip ``source`` with its members passed through ``change(name, data)``
    (None drops a member)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
    return target


def test_a_foreign_or_damaged_zip_is_refused(exported, tmp_path):
    from napari_pix2pix.errors import ModelFileError
    from napari_pix2pix.io import model_zip

    _, _, zip_path = exported
    ours = model_zip.MODEL_ATTACHMENT
    foreign = _rewrite(zip_path, tmp_path / "foreign.zip", lambda n, d: None if n == ours else d)
    with pytest.raises(ModelFileError, match="not exported by napari-pix2pix"):
        p2p.load_model(foreign)
    garbage = _rewrite(
        zip_path, tmp_path / "garbage.zip", lambda n, d: b"x" * 100 if n == ours else d
    )
    with pytest.raises(ModelFileError):
        p2p.load_model(garbage)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(zip_path.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="zip"):
        p2p.load_model(truncated)
    # a member larger than the limit is refused before it is read (no zip bomb)
    with pytest.raises(ModelFileError, match="more than"):
        model_zip.model_bytes(zip_path, limit=1000)
    # 200 MB of deflated zeros (200 KB on disk) under our name: refused at its first
    # 8 bytes, never inflated
    bomb = _rewrite(
        zip_path, tmp_path / "bomb.zip", lambda n, d: bytes(200 * 2**20) if n == ours else d
    )
    with pytest.raises(ModelFileError, match="not a safetensors model file"):
        model_zip.model_bytes(bomb)
    # a model whose header and the zip's declared size disagree
    cut = _rewrite(zip_path, tmp_path / "cut.zip", lambda n, d: d[:-100] if n == ours else d)
    with pytest.raises(ModelFileError, match="damaged: its header describes"):
        p2p.load_model(cut)
    # a flipped byte in the compressed model: the CRC (or inflate) fails, nothing loads
    data = bytearray(zip_path.read_bytes())
    info = zipfile.ZipFile(zip_path).getinfo(ours)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[start] ^= 0xFF
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ModelFileError):
        p2p.load_model(flipped)
