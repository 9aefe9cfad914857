"""No silently wrong numbers: damaged weights are refused at load, inputs that cannot be
normalised are refused before any tile runs, a NaN anywhere in a stack is found before
the work starts, an output array must hold floats, and a non-finite prediction is an
error, not a result."""

import numpy as np
import pytest
import torch
import zarr

import napari_pix2pix as p2p
from napari_pix2pix.engine.inference import TiledPredictor
from napari_pix2pix.io.model_file import Pix2PixModel


@pytest.fixture
def forward_calls(monkeypatch):
    """Counts the network calls of predict (none may happen before an input error)."""
    calls = []
    original = TiledPredictor._launch
    monkeypatch.setattr(
        TiledPredictor, "_launch", lambda self, tiles: calls.append(1) or original(self, tiles)
    )
    return calls


@pytest.mark.parametrize(
    "damage, message",
    [
        ("nan weight", "NaN or infinite values"),
        ("inf bias", "NaN or infinite values"),
        ("negative running_var", "negative variances"),
    ],
)
def test_damaged_weights_are_refused_at_load(trained, tmp_path, damage, message):
    model = p2p.load_model(trained.save(tmp_path / "ok.safetensors"))
    state = model.generator.state_dict()
    if damage == "nan weight":
        state["down.0.conv.weight"][0, 0, 0, 0] = float("nan")
    elif damage == "inf bias":
        state["down.0.conv.bias"][0] = float("inf")
    else:
        key = next(k for k in state if k.endswith("running_var"))
        state[key][0] = -1.0
    for name in ("bad.safetensors", "bad_folder"):
        path = model.save(tmp_path / name)
        with pytest.raises(p2p.ModelFileError, match=message):
            p2p.load_model(path)
    with pytest.raises(p2p.ModelFileError, match=message):
        p2p.predict(tmp_path / "bad.safetensors", np.zeros((32, 32), np.uint16))


def test_values_that_cannot_be_normalised_are_refused_before_any_tile(trained, forward_calls):
    huge = np.full((64, 64), 1e300)
    with pytest.raises(p2p.InputError, match="cannot be represented after normalisation"):
        p2p.predict(trained, huge, device="cpu")
    assert forward_calls == []


def test_nan_at_the_end_of_a_lazy_stack_is_found_before_the_work(
    trained, tmp_path, held_out_pair, forward_calls
):
    stack = np.stack([held_out_pair[0].astype(np.float32)] * 6)
    stack[-1, -1, -1] = np.nan  # the very last pixel of a stack read from disk
    store = zarr.open_array(
        str(tmp_path / "in.zarr"), mode="w", shape=stack.shape, chunks=(1, 64, 64), dtype="f4"
    )
    store[:] = stack
    progress = []
    with pytest.raises(
        p2p.InputError, match="1 NaN or infinite values \\(the first in sample 5\\)"
    ):
        p2p.predict(
            trained,
            zarr.open_array(str(tmp_path / "in.zarr"), mode="r"),
            axes="ZYX",
            out=tmp_path / "out.zarr",
            device="cpu",
            progress=lambda d, t: progress.append(d),
        )
    assert forward_calls == [] and progress == []
    assert not (tmp_path / "out.zarr").exists()  # no output was started


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "bool"])
def test_an_output_array_must_hold_floats(trained, held_out_pair, dtype):
    out = np.zeros(held_out_pair[0].shape, dtype)
    with pytest.raises(p2p.InputError, match=f"out has dtype {dtype}"):
        p2p.predict(trained, held_out_pair[0], out=out, device="cpu")
    assert not out.any()
    as_float64 = np.zeros(held_out_pair[0].shape, np.float64)
    p2p.predict(trained, held_out_pair[0], out=as_float64, device="cpu")
    np.testing.assert_allclose(as_float64, p2p.predict(trained, held_out_pair[0], device="cpu"))


def test_a_non_finite_prediction_is_an_error_not_a_file(trained, held_out_pair, tmp_path):
    broken = Pix2PixModel(trained.config, history=trained.history)
    broken.generator.load_state_dict(trained.generator.state_dict())
    with torch.no_grad():
        broken.generator.up[0][0].conv.bias.fill_(float("nan"))  # in memory: not via a file
    with pytest.raises(p2p.PredictionError, match="NaN or infinite"):
        p2p.predict(broken, held_out_pair[0], device="cpu")
    with pytest.raises(p2p.PredictionError):
        p2p.predict(broken, held_out_pair[0], out=tmp_path / "out.ome.tif", device="cpu")
    assert not (tmp_path / "out.ome.tif").exists()
