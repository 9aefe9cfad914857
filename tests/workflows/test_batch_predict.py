"""predict_many / `napari-pix2pix predict MODEL FOLDER -o FOLDER`: one output per input,
named predictably, the same as predicting each alone; failures recorded, reruns skip
what is finished, Ctrl-C leaves what a rerun continues, memory flat across files."""

import gc
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

import napari_pix2pix as p2p
from napari_pix2pix.cli import main
from napari_pix2pix.engine.sample_data import make_pair


@pytest.fixture(scope="module")
def model_file(trained, tmp_path_factory):
    return trained.save(tmp_path_factory.mktemp("model") / "model.safetensors")


def sources(folder, n=3, size=(48, 64), slices=0):
    """n simulated phase-contrast fields (stacks of ``slices``), 0.5 µm pixels."""
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        planes = [make_pair(size, seed=30 + i + z, nucleus_radius=5.0)[0] for z in range(slices)]
        image = np.stack(planes) if slices else make_pair(size, seed=30 + i, nucleus_radius=5.0)[0]
        axes = "ZYX" if slices else "YX"
        paths.append(
            p2p.write_image(folder / f"field{i}.ome.tif", image, axes, {"Y": 0.5, "X": 0.5})
        )
    return paths


def test_a_folder_gives_one_output_each_and_a_broken_file_does_not_stop_it(model_file, tmp_path):
    inputs = sources(tmp_path / "in")
    (tmp_path / "in" / "broken.tif").write_bytes(b"II*\0 cut short")
    (tmp_path / "in" / "notes.txt").write_text("not an image: left out")
    result = p2p.predict_many(model_file, tmp_path / "in", tmp_path / "out", device="cpu")
    assert [o.status for o in result.outcomes] == ["failed", "done", "done", "done"]
    assert "broken.tif" in result.failed[0].input and result.failed[0].reason
    for path, outcome in zip(inputs, result.done):
        assert outcome.output == str(tmp_path / "out" / path.name.replace(".ome", "_pix2pix.ome"))
        alone = p2p.predict(model_file, path, device="cpu")
        written = p2p.read_image(outcome.output)
        np.testing.assert_allclose(written.array, alone, atol=1e-5)
        assert written.scale == pytest.approx({"Y": 0.5, "X": 0.5})
    summary = json.loads(result.summary.read_text())
    assert summary["counts"] == {
        "done": 3,
        "skipped": 0,
        "failed": 1,
        "interrupted": 0,
        "pending": 0,
    }
    assert (tmp_path / "out" / "pix2pix-summary.csv").read_text().count("\n") == 5

    times = {o.output: os.stat(o.output).st_mtime_ns for o in result.done}
    again = p2p.predict_many(model_file, tmp_path / "in", tmp_path / "out", device="cpu")
    assert [o.status for o in again.outcomes] == ["failed", "skipped", "skipped", "skipped"]
    assert times == {o.output: os.stat(o.output).st_mtime_ns for o in again.skipped}
    redo = p2p.predict_many(model_file, [inputs[0]], tmp_path / "out", overwrite=True, device="cpu")
    assert redo.outcomes[0].status == "done"
    assert os.stat(redo.outcomes[0].output).st_mtime_ns != times[redo.outcomes[0].output]


@pytest.mark.parametrize("fmt", ["ome.tif", "zarr", "nii.gz"])
def test_a_rerun_with_another_model_does_not_take_the_old_outputs_as_done(
    model_file, tmp_path, fmt
):
    from tiny_options import untrained_model

    inputs = sources(tmp_path / "in", n=1)
    out = tmp_path / "out"
    first = p2p.predict_many(model_file, inputs, out, format=fmt, device="cpu")
    assert first.outcomes[0].status == "done"
    other = untrained_model(tmp_path / "other.safetensors")  # retrained, say
    stale = p2p.predict_many(other, inputs, out, format=fmt, device="cpu")
    assert stale.outcomes[0].status == "failed"
    assert "predicted by another model" in stale.outcomes[0].reason
    assert "overwrite=True" in stale.outcomes[0].reason
    redo = p2p.predict_many(other, inputs, out, format=fmt, overwrite=True, device="cpu")
    assert redo.outcomes[0].status == "done"
    again = p2p.predict_many(other, inputs, out, format=fmt, device="cpu")
    assert again.outcomes[0].status == "skipped"  # this model's own output


def test_a_users_file_is_never_replaced_and_outputs_are_not_taken_as_inputs(model_file, tmp_path):
    inputs = sources(tmp_path / "in", n=2)
    mine = tmp_path / "in" / "field0_pix2pix.tif"
    p2p.write_image(mine, np.zeros((8, 8), np.float32), "YX")  # the user's own image
    before = mine.read_bytes()
    # the output folder is the input folder: field0_pix2pix.tif is an input too
    result = p2p.predict_many(
        model_file, tmp_path / "in", tmp_path / "in", format="tif", device="cpu", overwrite=True
    )
    by_name = {os.path.basename(o.input): o for o in result.outcomes}
    assert by_name["field0.ome.tif"].status == "failed"
    assert "not written by napari-pix2pix" in by_name["field0.ome.tif"].reason
    assert by_name["field0_pix2pix.tif"].status == "skipped"  # an output of this batch
    assert by_name["field1.ome.tif"].status == "done"
    assert mine.read_bytes() == before
    again = p2p.predict_many(model_file, inputs, tmp_path / "in", format="tif", device="cpu")
    assert [o.status for o in again.outcomes] == ["failed", "skipped"]
    with pytest.raises(p2p.InputError, match=r"<name>_pix2pix\.png"):  # before any work
        p2p.predict_many(model_file, inputs, tmp_path / "new" / "out", format="png")
    assert not (tmp_path / "new" / "out").exists()


def test_ctrl_c_keeps_what_is_finished_and_a_rerun_continues(model_file, tmp_path):
    sources(tmp_path / "in", slices=3)
    finished = []

    def ctrl_c_in_the_second_file(done, total):  # once its first slice is written
        if len(finished) == 1 and total // 3 <= done < total:
            raise KeyboardInterrupt

    options = dict(format="zarr", device="cpu", tile_size=32)
    with pytest.raises(KeyboardInterrupt):
        p2p.predict_many(
            model_file,
            str(tmp_path / "in" / "*.tif"),
            tmp_path / "out",
            progress=ctrl_c_in_the_second_file,
            file_progress=lambda i, n, outcome: finished.append(outcome),
            **options,
        )
    summary = json.loads((tmp_path / "out" / "pix2pix-summary.json").read_text())
    assert [f["status"] for f in summary["files"]] == ["done", "interrupted", "pending"]
    result = p2p.predict_many(model_file, tmp_path / "in", tmp_path / "out", **options)
    assert [o.status for o in result.outcomes] == ["skipped", "done", "done"]
    alone = p2p.predict(model_file, tmp_path / "in" / "field1.ome.tif", device="cpu", tile_size=32)
    resumed = p2p.read_image(tmp_path / "out" / "field1_pix2pix.zarr").array
    np.testing.assert_allclose(resumed, alone, atol=1e-5)


def test_memory_does_not_grow_with_the_number_of_files(model_file, tmp_path):
    """The model is loaded once and each file streamed: from the second file to the
    last, what stays allocated grows by less than half of one image (dask's bounded
    caches), where keeping each file's input or output would add a whole one per file."""
    size = (256, 256)
    sources(tmp_path / "in", n=5, size=size)
    model = p2p.load_model(model_file)
    traced = []

    def measure(i, n, outcome):
        gc.collect()  # what is still referenced, not garbage waiting for a collection
        traced.append(tracemalloc.get_traced_memory()[0])

    tracemalloc.start()
    try:
        p2p.predict_many(
            model, tmp_path / "in", tmp_path / "out", device="cpu", file_progress=measure
        )
    finally:
        tracemalloc.stop()
    image_bytes = size[0] * size[1] * 4  # one output, float32
    assert len(traced) == 5
    assert traced[-1] - traced[1] < image_bytes / 2, traced


def test_the_command_line_takes_a_folder_a_glob_or_several_files(model_file, tmp_path, capsys):
    inputs = sources(tmp_path / "in")
    out = tmp_path / "out"
    argv = ["predict", str(model_file), str(tmp_path / "in"), "-o", str(out), "--device", "cpu"]
    assert main([*argv, "--format", "zarr", "--suffix", "_dapi"]) == 0
    printed = capsys.readouterr().out
    assert "3 done, 0 skipped, 0 failed" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "field0_dapi.zarr",
        "field1_dapi.zarr",
        "field2_dapi.zarr",
        "pix2pix-summary.csv",
        "pix2pix-summary.json",
    ]
    glob = ["predict", str(model_file), str(tmp_path / "in" / "field[01]*"), "-o", str(out)]
    assert main([*glob, "--format", "zarr", "--suffix", "_dapi", "--device", "cpu"]) == 0
    assert "0 done, 2 skipped" in capsys.readouterr().out
    files = ["predict", str(model_file), str(inputs[0]), str(tmp_path / "gone.tif"), "-o", str(out)]
    assert main([*files, "--device", "cpu"]) == 1  # one of them failed
    printed = capsys.readouterr().out
    assert "failed: " + str(tmp_path / "gone.tif") in printed and "does not exist" in printed
    # one input: -o names the output, as always; batch options are refused for it
    single = ["predict", str(model_file), str(inputs[0]), "-o", str(tmp_path / "one.tif")]
    assert main([*single, "--format", "zarr"]) == 2
    assert "--format name the outputs of several inputs" in capsys.readouterr().err
    assert main([*single, "--device", "cpu"]) == 0 and (tmp_path / "one.tif").is_file()
    assert main([*argv, "--series", "0"]) == 2
    named_like_an_image = [*argv[:3], "-o", str(tmp_path / "out.ome.tif")]
    assert main(named_like_an_image) == 2
    assert "need an output folder" in capsys.readouterr().err
    assert not (tmp_path / "out.ome.tif").exists()


def test_sigterm_or_ctrl_c_stops_the_command_which_a_rerun_finishes(tmp_path):
    """A cluster's time limit (SIGTERM) or Ctrl-C mid-batch: exit 130, the finished
    outputs and the summary stay, the same command again does the rest."""
    from tiny_options import untrained_model

    model = untrained_model(tmp_path / "m.safetensors")
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # a second or two each on 2 cores
        p2p.write_image(folder / f"s{i}.tif", rng.random((4, 128, 128), np.float32), "ZYX")
    argv = ["predict", str(model), str(folder), "-o", str(tmp_path / "out"), "--format", "zarr"]
    argv += ["--device", "cpu", "--tile-size", "32"]
    child = subprocess.Popen(
        [sys.executable, "-m", "napari_pix2pix.cli", *argv],
        env={**os.environ, "OMP_NUM_THREADS": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen, deadline = "", time.monotonic() + 120
    while time.monotonic() < deadline and "1/3" not in seen:  # the first file is done
        seen += child.stderr.read(100)
    child.send_signal(signal.SIGTERM)
    err = child.communicate(timeout=120)[1]
    assert child.returncode == 130, err
    assert "run the same command again to continue" in err
    counts = json.loads((tmp_path / "out" / "pix2pix-summary.json").read_text())["counts"]
    assert 1 <= counts["done"] < 3 and counts["interrupted"] == 1 and counts["failed"] == 0
    assert main(argv) == 0
    after = json.loads((tmp_path / "out" / "pix2pix-summary.json").read_text())["counts"]
    assert (after["skipped"], after["done"], after["failed"]) == (
        counts["done"],
        3 - counts["done"],
        0,
    )


def test_the_printed_config_runs_a_batch(model_file, tmp_path, capsys):
    """--print-config's predict: section holds every default (if_exists: error,
    uncertainty: false), which a batch must take as not given."""
    sources(tmp_path / "in")
    assert main(["train", "--print-config"]) == 0
    config = tmp_path / "run.yaml"
    config.write_text(capsys.readouterr().out)
    argv = ["predict", str(model_file), str(tmp_path / "in"), "-o", str(tmp_path / "out")]
    assert main([*argv, "--config", str(config), "--device", "cpu"]) == 0
    assert "3 done, 0 skipped, 0 failed" in capsys.readouterr().out
