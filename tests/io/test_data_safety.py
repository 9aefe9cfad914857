"""Nothing a user owns is ever overwritten or deleted unless they asked for exactly that:
an output is never an input, an existing path is replaced only when napari-pix2pix
wrote it and overwrite was asked, temporary files are unique, a checkpoint folder is a
folder, and a trained model that cannot be saved where asked is saved elsewhere."""

import hashlib
import os
import threading

import numpy as np
import pytest
import tifffile
import zarr

import napari_pix2pix as p2p
from napari_pix2pix.cli import main
from napari_pix2pix.engine.axes import AxesLayout
from napari_pix2pix.io.model_file import save_or_rescue
from napari_pix2pix.io.tiff_output import TiffOutput


def digest(path):
    """A hash of a file, or of every file in a folder."""
    if path.is_dir():
        return sorted((str(p.relative_to(path)), digest(p)) for p in path.rglob("*") if p.is_file())
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def world(tmp_path, trained, pair):
    """An input image, its links, a foreign file and folder, a model file."""
    source = pair[0]
    (tmp_path / "in.tif").write_bytes(b"")
    tifffile.imwrite(tmp_path / "in.tif", source)
    os.link(tmp_path / "in.tif", tmp_path / "hard.tif")
    os.symlink(tmp_path / "in.tif", tmp_path / "soft.tif")
    tifffile.imwrite(tmp_path / "foreign.tif", source)  # not written by napari-pix2pix
    (tmp_path / "mydata.zarr").mkdir()
    (tmp_path / "mydata.zarr" / "notes.txt").write_text("a year of work")
    store = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=source.shape, dtype="u2")
    store[:] = source
    trained.save(tmp_path / "m.safetensors")
    return tmp_path


@pytest.mark.parametrize(
    "image, out",
    [
        ("in.tif", "in.tif"),  # the input itself
        ("in.tif", "hard.tif"),  # the same file under another name
        ("in.tif", "soft.tif"),  # a link to it
        ("soft.tif", "in.tif"),
        ("in.zarr", "in.zarr"),  # a zarr input and the same store as output
        ("in.zarr", "in.zarr/out.zarr"),  # inside the input's store
        ("in.tif", "m.safetensors"),  # the model
    ],
)
@pytest.mark.parametrize("if_exists", ["error", "overwrite", "resume"])
def test_an_output_is_never_an_input(world, image, out, if_exists):
    before = {p: digest(world / p) for p in ("in.tif", "in.zarr", "m.safetensors")}
    source = (
        zarr.open_array(str(world / image), mode="r") if image.endswith(".zarr") else world / image
    )
    with pytest.raises(p2p.InputError, match="is also an input|must end in"):
        p2p.predict(
            world / "m.safetensors", source, out=world / out, if_exists=if_exists, device="cpu"
        )
    assert {p: digest(world / p) for p in before} == before


def test_the_cli_refuses_to_write_over_its_input(world, capsys):
    before = digest(world / "in.tif")
    for flags in ([], ["--overwrite"]):
        code = main(
            [
                "predict",
                str(world / "m.safetensors"),
                str(world / "in.tif"),
                "-o",
                str(world / "in.tif"),
                *flags,
            ]
        )
        assert code == 2 and "is also an input" in capsys.readouterr().err
    assert digest(world / "in.tif") == before


@pytest.mark.parametrize("out", ["foreign.tif", "mydata.zarr"])
@pytest.mark.parametrize("if_exists", ["error", "overwrite", "resume"])
def test_what_napari_pix2pix_did_not_write_is_never_replaced(world, pair, out, if_exists):
    before = digest(world / out)
    with pytest.raises(p2p.InputError, match="exists|not written by napari-pix2pix|needs a .zarr"):
        p2p.predict(
            world / "m.safetensors", pair[0], out=world / out, if_exists=if_exists, device="cpu"
        )
    assert digest(world / out) == before


def test_a_result_of_ours_is_replaced_only_when_asked(world, pair):
    out = world / "result.ome.tif"
    first = p2p.predict(world / "m.safetensors", pair[0], out=out, device="cpu")
    kept = digest(first)
    with pytest.raises(p2p.InputError, match="exists; choose another name, or pass if_exists"):
        p2p.predict(world / "m.safetensors", pair[0][::-1], out=out, device="cpu")
    assert digest(out) == kept
    p2p.predict(
        world / "m.safetensors", pair[0][::-1], out=out, if_exists="overwrite", device="cpu"
    )
    assert digest(out) != kept


def test_models_are_replaced_only_when_asked_and_only_models(world, trained):
    path = world / "m.safetensors"
    kept = digest(path)
    with pytest.raises(p2p.InputError, match="exists; choose another name, or pass overwrite=True"):
        trained.save(path)
    assert digest(path) == kept
    trained.save(path, overwrite=True)
    before = digest(world / "foreign.tif")
    with pytest.raises(p2p.InputError, match="is a file; a model path without .safetensors"):
        trained.save(world / "foreign.tif", overwrite=True)
    (world / "notes.safetensors").write_text("not a model")
    with pytest.raises(p2p.InputError, match="not written by napari-pix2pix"):
        trained.save(world / "notes.safetensors", overwrite=True)
    with pytest.raises(p2p.InputError, match="not written by napari-pix2pix"):
        trained.save(world / "mydata.zarr", overwrite=True)  # a folder model onto a folder
    assert digest(world / "foreign.tif") == before
    assert (world / "notes.safetensors").read_text() == "not a model"
    assert (world / "mydata.zarr" / "notes.txt").read_text() == "a year of work"


def test_two_writers_of_one_output_never_share_a_temporary_file(tmp_path):
    """Two predictions streaming to the same -o: each has its own .partial, and the one
    that finishes second does not replace the first one's result: it is kept beside."""
    layout = AxesLayout("YX", (64, 64), 2)
    path = tmp_path / "same.tif"
    a = TiffOutput(path, layout, 1, False, {}, None)
    b = TiffOutput(path, layout, 1, False, {}, None)
    assert a.partial != b.partial and a.partial.exists() and b.partial.exists()
    for output, value in ((a, 1.0), (b, 2.0)):
        output.write(0, slice(0, 64), np.full((1, 64, 64), value, np.float32))
        output.sample_done(0)
    a.finish()
    with pytest.raises(
        p2p.OutputError, match="appeared while napari-pix2pix was writing it.*saved as"
    ):
        b.finish()
    assert tifffile.imread(path).max() == 1.0  # the first result, untouched
    others = [p for p in tmp_path.iterdir() if p.name.startswith("same-")]
    assert len(others) == 1 and tifffile.imread(others[0]).max() == 2.0  # nothing lost
    assert not list(tmp_path.glob("*.partial"))


def test_concurrent_predictions_to_one_path_lose_nothing(world, pair):
    results, errors = [], []

    def run(image):
        try:
            results.append(
                p2p.predict(
                    world / "m.safetensors", image, device="cpu", out=world / "race.ome.tif"
                )
            )
        except p2p.Pix2PixError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(img,)) for img in (pair[0], pair[0][::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    files = sorted(world.glob("race*.tif"))
    assert len(results) + len(errors) == 2 and len(files) == 2 - sum(
        "exists" in str(e) for e in errors
    )  # refused up front, or kept beside
    assert not list(world.glob("*.partial"))


def test_a_checkpoint_folder_must_be_a_folder_of_its_run(world, pair, tiny):
    source, target = pair
    before = digest(world / "in.tif")
    with pytest.raises(p2p.InputError, match="is a file, not a folder"):
        p2p.train(source, target, steps=2, checkpoint_dir=world / "in.tif", **tiny)
    assert digest(world / "in.tif") == before
    p2p.train(source, target, steps=2, checkpoint_dir=world / "run", val_fraction=0, **tiny)
    kept = digest(world / "run")
    with pytest.raises(p2p.InputError, match="already holds a checkpoint of another run"):
        p2p.train(source, target, steps=2, checkpoint_dir=world / "run", val_fraction=0, **tiny)
    assert digest(world / "run") == kept
    # what a run killed while writing its checkpoint leaves goes when the run resumes
    (world / "run" / ".checkpoint.safetensors.0123abcd.tmp").write_bytes(b"half a checkpoint")
    (world / "run" / "notes.tmp").write_text("the user's")
    resumed = p2p.train(source, target, steps=4, resume=world / "run", val_fraction=0, **tiny)
    assert resumed.history.steps_done == 4  # its own run continues into the same folder
    assert sorted(p.name for p in (world / "run").glob("*tmp")) == ["notes.tmp"]


def test_a_run_never_writes_over_another_runs_files(world, pair, tiny, trained):
    """A folder holding a run's best model and log whose checkpoint was deleted, or a
    user's own log.csv: the new run would have replaced them."""
    source, target = pair
    folder = world / "analysis"
    folder.mkdir()
    trained.save(folder / "best.safetensors")
    (folder / "log.csv").write_text("sample,value\nA,1\n")
    before = digest(folder)
    with pytest.raises(p2p.InputError, match="holds best.safetensors, log.csv of another run"):
        p2p.train(source, target, steps=2, checkpoint_dir=folder, **tiny)
    assert digest(folder) == before
    # a run killed before it left a model leaves only its own log: the same command runs
    killed = world / "killed"
    p2p.train(source, target, steps=2, checkpoint_dir=killed, val_fraction=0, **tiny)
    for name in ("checkpoint.safetensors", "best.safetensors"):
        (killed / name).unlink(missing_ok=True)
    assert p2p.train(source, target, steps=2, checkpoint_dir=killed, **tiny).history.steps_done == 2


def test_a_trained_model_is_never_lost(world, trained, monkeypatch, capsys, pair):
    monkeypatch.setenv("HOME", str(world / "home"))
    (world / "home").mkdir()
    path, note = save_or_rescue(trained, world / "gone" / "m.safetensors")  # folder missing
    assert path.parent == world / "home" / "napari-pix2pix" / "rescued"
    assert str(path) in note and p2p.load_model(path).history == trained.history
    # the CLI checks the output before training, so a run is not wasted on a bad path
    before = digest(world / "foreign.tif")
    code = main(
        [
            "train",
            str(world / "in.tif"),
            str(world / "in.tif"),
            "-o",
            str(world / "foreign.tif"),
            "--steps",
            "1",
        ]
    )
    assert code == 2 and "is a file" in capsys.readouterr().err
    assert digest(world / "foreign.tif") == before


def test_the_demo_keeps_to_its_own_folder(world, capsys):
    before = digest(world / "mydata.zarr")
    assert main(["demo", "--output", str(world / "mydata.zarr"), "--steps", "1"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert digest(world / "mydata.zarr") == before


def test_names_starting_with_a_tilde_are_names(world, pair, trained, monkeypatch):
    """'~notes.tif' is a file name (pathlib's expanduser raises for it); '~/x' is home."""
    monkeypatch.chdir(world)
    monkeypatch.setenv("HOME", str(world / "home"))
    (world / "home").mkdir()
    p2p.predict(trained, pair[0], out="~odd.ome.tif")
    p2p.write_image("~/result.tif", pair[0], "YX")
    trained.save("~model.safetensors")
    assert {"~odd.ome.tif", "~model.safetensors"} <= {p.name for p in world.iterdir()}
    assert (world / "home" / "result.tif").is_file()
