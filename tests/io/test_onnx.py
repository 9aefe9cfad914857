"""ONNX export: the file, run by onnxruntime with the normalization read from its own
metadata, reproduces napari_pix2pix.predict on whole tiles (2D and 3D, several channels,
dynamic batch and sizes); the command line writes it safely. Runs only with the [onnx]
extra."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from tiny_options import TINY

import napari_pix2pix as p2p
from napari_pix2pix.cli import main
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine.sample_data import make_pair
from napari_pix2pix.errors import InputError
from napari_pix2pix.io.onnx_export import METADATA_KEY


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    """What a user without napari-pix2pix does: (N, C, *S) raw values in, target units
    out, with the pre- and post-processing written in the file."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    norm = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    shape = (1, -1) + (1,) * (x.ndim - 2)

    def scale(a, side):
        gain = np.asarray(norm[side]["gain"]).reshape(shape)
        return a * gain + np.asarray(norm[side]["offset"]).reshape(shape)

    y = session.run(None, {"input": scale(x.astype(np.float64), "input").astype(np.float32)})[0]
    return scale(y.astype(np.float64), "output")


def span(model) -> np.ndarray:
    """Each output channel's target range, shaped to broadcast over (C, *S)."""
    c = model.config
    d = np.asarray(c.target_high) - np.asarray(c.target_low)
    return d.reshape((-1,) + (1,) * c.spatial_dims)


@pytest.fixture(scope="module")
def exported_2d(trained, tmp_path_factory):
    return trained, p2p.export_onnx(trained, tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.fixture(scope="module")
def model_3d():
    """A tiny 3D model, 2 channels in and 2 out (each with its own normalization)."""
    source, target = make_pair((32, 64, 64), seed=0, nucleus_radius=5.0)
    src = np.stack([source, source[:, ::-1] * 0.5 + 100])
    tgt = np.stack([target, 65535 - target])
    options = {**TINY, "patch_size": 16, "depth": 3, "disc_layers": 1}
    return p2p.train(src, tgt, axes="CZYX", spatial_dims=3, steps=20, seed=0, **options)


def test_2d_onnx_matches_predict_on_a_whole_tile(exported_2d, held_out_pair):
    model, path = exported_2d
    x = held_out_pair[0][40:72, 20:52]  # one tile: the patch size
    expected = p2p.predict(model, x, axes="YX", device="cpu")
    actual = run_onnx(path, x[None, None])[0, 0]
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= 1e-4 * span(model)[0, 0, 0]
    assert expected.std() > 0.05 * span(model)[0, 0, 0]  # a real image, not a flat output


def test_2d_onnx_has_dynamic_batch_and_sizes(exported_2d, held_out_pair):
    model, path = exported_2d
    inputs = ort.InferenceSession(str(path)).get_inputs()[0]
    assert isinstance(inputs.shape[0], str) and all(isinstance(s, str) for s in inputs.shape[2:])
    # three whole 48 x 80 images in one batch (sizes the network's stride 16 divides)
    x = np.stack([held_out_pair[0][i : i + 48, 8 * i : 8 * i + 80] for i in range(3)])
    actual = run_onnx(path, x[:, None])[:, 0]
    for a, image in zip(actual, x):
        expected = p2p.predict(model, image, axes="YX", tile_size=(48, 80), device="cpu")
        assert np.abs(a - expected).max() <= 1e-4 * span(model)[0, 0, 0]


def test_3d_onnx_matches_predict_on_a_whole_patch(model_3d, tmp_path):
    path = p2p.export_onnx(model_3d, tmp_path / "volume.onnx")
    source, _ = make_pair((16, 32, 32), seed=5, nucleus_radius=5.0)
    x = np.stack([source, source[:, ::-1] * 0.5 + 100])  # CZYX, one 16 x 32 x 32 tile
    expected = p2p.predict(model_3d, x, axes="CZYX", tile_size=(16, 32, 32), device="cpu")
    actual = run_onnx(path, x[None])[0]
    assert actual.shape == expected.shape == (2, 16, 32, 32)
    assert (np.abs(actual - expected) <= 1e-4 * span(model_3d)).all()
    spread = expected.reshape(2, -1).std(axis=1) / span(model_3d).ravel()
    assert (spread > 0.01).all()  # both channels vary: not a flat output compared


def test_the_metadata_holds_the_normalization_and_config(exported_2d):
    model, path = exported_2d
    meta = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    norm = json.loads(meta[METADATA_KEY])
    low, high = model.config.target_low[0], model.config.target_high[0]
    # the network's -1 and +1 are the target's low and high percentiles
    assert norm["output"]["offset"][0] - norm["output"]["gain"][0] == pytest.approx(low)
    assert norm["output"]["offset"][0] + norm["output"]["gain"][0] == pytest.approx(high)
    lo = model.config.source_low[0]
    assert lo * norm["input"]["gain"][0] + norm["input"]["offset"][0] == pytest.approx(-1)
    assert norm["size_multiple"] == 16 and norm["axes"] == ["batch", "channel", "y", "x"]
    assert Pix2PixConfig.from_dict(json.loads(meta["napari_pix2pix.config"])) == model.config


def test_cli_export_onnx(exported_2d, tmp_path, capsys):
    model, exported = exported_2d
    model_path = model.save(tmp_path / "model.safetensors")
    out = tmp_path / "cli.onnx"
    out.write_bytes(exported.read_bytes())  # an earlier export of ours
    # refused with the fix, which works (the format from the suffix); then a file we
    # did not write stays
    assert main(["export", str(model_path), "-o", str(out), "--format", "onnx"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(model_path), "-o", str(out), "--overwrite"]) == 0
    assert "ONNX" in capsys.readouterr().out
    assert ort.InferenceSession(str(out)).get_inputs()[0].name == "input"
    foreign = tmp_path / "theirs.onnx"
    foreign.write_bytes(b"someone else's network")
    assert main(["export", str(model_path), "-o", str(foreign), "--overwrite"]) == 2
    assert "not written by napari-pix2pix" in capsys.readouterr().err
    assert foreign.read_bytes() == b"someone else's network"
    # bioimage.io-only options and a .zip name are refused for ONNX, nothing written
    assert main(["export", str(model_path), "-o", str(tmp_path / "a.onnx"), "--name", "x"]) == 2
    assert "--name" in capsys.readouterr().err
    zipped = tmp_path / "b.zip"
    assert main(["export", str(model_path), "-o", str(zipped), "--format", "onnx"]) == 2
    assert ".onnx" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cli.onnx",
        "model.safetensors",
        "theirs.onnx",
    ]


def test_without_the_extra_the_message_names_the_fix(trained, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(InputError, match=r'pip install "napari-pix2pix\[onnx\]"'):
        p2p.export_onnx(trained, tmp_path / "model.onnx")
    assert not list(tmp_path.iterdir())
