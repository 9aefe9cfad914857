"""predict_many's summary lists each file's input score and whether it is above the
model's threshold (the input check of predict)."""

import csv
import json

import numpy as np
import tifffile

import napari_pix2pix as p2p


def test_the_summary_lists_each_files_input_score(trained, held_out_pair, tmp_path):
    source = held_out_pair[0]
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "like.tif", source)
    tifffile.imwrite(folder / "bright.tif", source.astype(np.float32) * 3)
    result = p2p.predict_many(trained, folder, tmp_path / "out", device="cpu")
    by_name = {o.input.rsplit("/", 1)[-1]: o for o in result.outcomes}
    assert by_name["like.tif"].input_score < by_name["like.tif"].input_threshold
    assert by_name["bright.tif"].input_score > by_name["bright.tif"].input_threshold
    assert any("differs from what the model" in w for w in by_name["bright.tif"].warnings)
    document = json.loads(result.summary.read_text())
    assert {f["input_score"] is not None for f in document["files"]} == {True}
    with open(result.summary.with_suffix(".csv"), newline="") as fh:
        rows = {r["input"].rsplit("/", 1)[-1]: r for r in csv.DictReader(fh)}
    assert rows["bright.tif"]["input_flag"] == "above" and rows["like.tif"]["input_flag"] == ""
