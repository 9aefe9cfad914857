"""Model files: bit-identical round trips, no pickle anywhere, clear errors."""

import errno
import json
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_options import FAST

import napari_pix2pix as p2p
from napari_pix2pix.io.images import write_image
from napari_pix2pix.io.model_file import model_from_bytes


@pytest.mark.parametrize("name", ["model.safetensors", "model_folder"])
def test_save_load_gives_bit_identical_predictions(trained, held_out_pair, tmp_path, name):
    path = trained.save(tmp_path / name)
    loaded = p2p.load_model(path)
    assert loaded.config == trained.config
    assert loaded.history.steps_done == trained.history.steps_done
    image = held_out_pair[0]
    np.testing.assert_array_equal(
        p2p.predict(loaded, image, device="cpu"), p2p.predict(trained, image, device="cpu")
    )
    # predict also takes the path itself
    np.testing.assert_array_equal(
        p2p.predict(path, image, device="cpu"), p2p.predict(trained, image, device="cpu")
    )


def test_saved_model_contains_no_pickle(trained, tmp_path, monkeypatch):
    path = trained.save(tmp_path / "m.safetensors")
    raw = path.read_bytes()
    # safetensors layout: 8-byte header length, JSON header, then raw tensor bytes only
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    assert 8 + n + end == len(raw)
    assert raw[8 + n : 8 + n + 2] != b"\x80\x04"  # no pickle protocol marker
    meta = json.loads(header["__metadata__"]["napari_pix2pix"])
    assert meta["format"] == "napari-pix2pix-model" and meta["config"]["depth"] == 4

    # loading works with every unpickling path disabled
    def refuse(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert p2p.load_model(path).config == trained.config


def test_folder_model_has_readable_config(trained, tmp_path):
    folder = trained.save(tmp_path / "model")
    doc = json.loads((folder / "config.json").read_text())
    assert doc["format_version"] == 1
    assert doc["versions"]["napari_pix2pix"] == p2p.__version__
    assert doc["config"]["target_low"] == trained.config.target_low
    assert "losses" in doc["history"]


def test_pickle_file_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps(Payload()))
    legacy = tmp_path / "model.pth"
    torch.save({"x": torch.zeros(1)}, legacy)
    for bad in (path, legacy):
        with pytest.raises(
            p2p.ModelFileError, match="not a safetensors|not opened because unpickling"
        ):
            p2p.load_model(bad)
    assert not marker.exists()


def test_save_is_atomic_and_keeps_the_previous_file(trained, tmp_path, monkeypatch):
    path = trained.save(tmp_path / "m.safetensors")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(OSError):
        trained.save(path, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


def test_a_checkpoint_or_run_folder_opens_as_a_model(tiny, tmp_path):
    """A run stopped before it saved a model still gives one: its checkpoint's generator."""
    from napari_pix2pix.engine.sample_data import make_pair

    source, target = make_pair((64, 64), seed=2, nucleus_radius=5.0)
    run = tmp_path / "run"
    trained = p2p.train(source, target, steps=3, val_fraction=0, checkpoint_dir=run, **tiny)
    assert not (run / "model.safetensors").exists() and not (run / "best.safetensors").exists()
    expected = p2p.predict(trained, source, device="cpu")
    for path in (run, run / "checkpoint.safetensors"):
        model = p2p.load_model(path)
        assert model.history.steps_done == 3 and model.history.kept == "last"
        np.testing.assert_array_equal(p2p.predict(model, source, device="cpu"), expected)
    trained.history.steps_done = 99
    trained.save(run / "model.safetensors")  # a run folder's own model comes first
    assert p2p.load_model(run).history.steps_done == 99
    with pytest.raises(p2p.ModelFileError, match="nor a run folder"):
        p2p.load_model(tmp_path)


def test_a_folder_model_is_replaced_whole_or_not_at_all(trained, pair, tmp_path, monkeypatch):
    source, target = pair
    folder = trained.save(tmp_path / "model")
    before = p2p.predict(folder, source[:64, :64])
    other = p2p.train(source, target * 2.0, **{**FAST, "seed": 1})
    real = Path.write_bytes

    def full_disk(self, data):
        if self.name.startswith(".config.json."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(p2p.OutputError, match="no space left .* nothing was replaced"):
        other.save(folder, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.safetensors"]
    np.testing.assert_array_equal(p2p.predict(folder, source[:64, :64]), before)
    # weights from another save beside this config (a save cut between its two renames)
    other.save(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "weights.safetensors", folder / "weights.safetensors")
    with pytest.raises(p2p.ModelFileError, match="not those its config.json was saved with"):
        p2p.load_model(folder)


def test_a_malformed_history_is_ignored_not_fatal(trained, pair, tmp_path):
    """The history only describes the model: the card and the pixel-size check must not
    break on a hand-edited or damaged one."""
    folder = trained.save(tmp_path / "model")
    doc = json.loads((folder / "config.json").read_text())
    doc["history"].update(pixel_size=["0.5um"], best="x", steps_done="many", recipe="auto")
    (folder / "config.json").write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="malformed entries .*best.*pixel_size"):
        model = p2p.load_model(folder)
    assert model.history.steps_done == 0 and model.history.losses == trained.history.losses
    assert model.history.best is None and model.history.pixel_size == []
    assert model.card()[2].startswith("Trained: 0 steps")
    image = write_image(tmp_path / "x.tif", pair[0][:64, :64], "YX", {"Y": 0.5, "X": 0.5}, "µm")
    assert p2p.predict(model, image, tile_size=32).shape == (64, 64)


@pytest.mark.parametrize("name", ["m.safetensors", "m_folder"])
def test_the_input_profile_and_error_calibration_are_stored_and_read(trained, tmp_path, name):
    """Both optional: a model without them (one trained before they were recorded) has
    neither key in its file and reads back None; a malformed one is dropped, not fatal."""
    plain = p2p.Pix2PixModel(trained.config, trained.generator, trained.history)
    assert plain.input_profile is None and plain.error_calibration is None
    old = p2p.load_model(plain.save(tmp_path / f"old_{name}"))
    assert old.input_profile is None and old.error_calibration is None
    assert not {"input_profile", "error_calibration"} & set(plain.document())
    profile, calibration = {"tiles": [1.5, 2.0], "unit": "x"}, {"spread": [0.0, 1.0]}
    plain.input_profile, plain.error_calibration = profile, calibration
    path = plain.save(tmp_path / name)
    again = p2p.load_model(path)
    assert again.input_profile == profile and again.error_calibration == calibration
    assert model_from_bytes(plain.to_bytes()).error_calibration == calibration  # dask's form
    if path.is_dir():  # hand-edited: not a dict
        doc = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**doc, "input_profile": [1, 2]}))
        with pytest.warns(UserWarning, match="the input profile in .* is malformed"):
            damaged = p2p.load_model(path)
        assert damaged.input_profile is None and damaged.error_calibration == calibration


@pytest.mark.parametrize("keep, said", [(0, "too short .*empty or cut off"), (100, "is cut off")])
def test_a_cut_off_model_file_is_called_cut_off(trained, tmp_path, keep, said):
    """An interrupted copy, not a pickle: the message says what happened and the fix."""
    whole = trained.save(tmp_path / "m.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(whole.read_bytes()[:keep])
    with pytest.raises(p2p.ModelFileError, match=said):
        p2p.load_model(cut)
