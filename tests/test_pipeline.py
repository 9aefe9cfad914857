"""The pipeline of the README and docs/scripting.md, on small generated data: a folder of
OME-TIFFs -> OME-Zarr predictions (`predict MODEL incoming/ -o predictions/ --format
ome.zarr`) -> a CSV of scores (`evaluate predictions/ held_out_dapi/ -o scores.csv`)."""

import csv
import json

import numpy as np
import pytest

import napari_pix2pix as p2p
from napari_pix2pix.cli import main
from napari_pix2pix.engine.sample_data import make_pair


def test_a_folder_of_ome_tiffs_to_ome_zarr_predictions_to_a_csv_of_scores(
    trained, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # the docs' relative paths
    model = trained.save(tmp_path / "phase2dapi.safetensors")
    incoming, targets = tmp_path / "incoming", tmp_path / "held_out_dapi"
    incoming.mkdir()
    targets.mkdir()
    scale = {"Y": 0.65, "X": 0.65}
    for i in range(2):  # two fields, and a stack of two slices
        source, target = make_pair((64, 80), seed=40 + i, nucleus_radius=5.0)
        p2p.write_image(incoming / f"field{i}.ome.tif", source, "YX", scale, "µm")
        p2p.write_image(targets / f"field{i}.tif", target, "YX")
    pairs = [make_pair((64, 80), seed=50 + z, nucleus_radius=5.0) for z in range(2)]
    stack = np.stack([s for s, _ in pairs])
    p2p.write_image(incoming / "stack.ome.tif", stack, "ZYX", {"Z": 2.0, **scale}, "µm")
    p2p.write_image(targets / "stack.tif", np.stack([t for _, t in pairs]), "ZYX")

    predict = ["predict", model.name, "incoming/", "-o", "predictions/", "--format", "ome.zarr"]
    assert main([*predict, "--device", "cpu"]) == 0
    assert "3 done, 0 skipped, 0 failed" in capsys.readouterr().out
    written = p2p.read_image("predictions/stack_pix2pix.ome.zarr")
    assert written.axes == "ZYX" and written.scale == pytest.approx({"Z": 2.0, **scale})
    metadata = json.loads((tmp_path / "predictions/stack_pix2pix.ome.zarr/zarr.json").read_text())
    assert metadata["attributes"]["ome"]["multiscales"]  # OME-Zarr (NGFF) readers see it
    np.testing.assert_allclose(
        written.array, p2p.predict(trained, stack, axes="ZYX", device="cpu"), atol=1e-5
    )
    assert main([*predict, "--device", "cpu"]) == 0  # run again: nothing to do
    assert "0 done, 3 skipped, 0 failed" in capsys.readouterr().out

    assert main(["evaluate", "predictions/", "held_out_dapi/", "-o", "scores.csv"]) == 0
    with open("scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["target"], r["slice"]) for r in rows] == [
        ("held_out_dapi/field0.tif", "all"),
        ("held_out_dapi/field1.tif", "all"),
        ("held_out_dapi/stack.tif", "Z=0"),
        ("held_out_dapi/stack.tif", "Z=1"),
        ("held_out_dapi/stack.tif", "all"),
    ]
    assert all(r["status"] == "ok" for r in rows)
    assert all(float(r["pearson_r"]) > 0.5 for r in rows)  # a trained model, not noise
    # the Python side of the docs gives the same numbers
    scores = p2p.evaluate_files("predictions/", "held_out_dapi/")
    assert [float(r["mae"]) for r in rows] == pytest.approx([r["mae"] for r in scores.rows])
    document = json.loads((tmp_path / "scores.json").read_text())
    assert document["mean"]["ssim"] == pytest.approx(scores.mean["ssim"])
