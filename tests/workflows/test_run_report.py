"""The run report (workflows/run_report.py) that every run with a run folder ends with:
written at the end and after a stop, scoring the kept model, never costing the model."""

import json
import warnings

import numpy as np
import pytest
from tiny_options import TINY

from napari_pix2pix.cli import main
from napari_pix2pix.engine.events import StepEvent
from napari_pix2pix.io.images import write_image
from napari_pix2pix.io.report_page import REPORT_JSON, REPORT_NAME
from napari_pix2pix.workflows import run_report
from napari_pix2pix.workflows.run_setup import set_up_run
from napari_pix2pix.workflows.training import train, train_iter

RUN = {**TINY, "steps": 24, "val_every": 6, "val_fraction": 0.25, "seed": 0}


def report_of(folder) -> dict:
    return json.loads((folder / REPORT_JSON).read_text(encoding="utf-8"))


def test_a_run_ends_with_a_report_of_its_kept_model_against_the_baselines(pair, tmp_path):
    source, target = pair
    folder = tmp_path / "run"
    model = train(source, target, checkpoint_dir=folder, **RUN)
    doc = report_of(folder)
    kept = model.history.kept_record()
    assert kept is not None and doc["kept_step"] == kept.step and doc["kept"] == "best"
    assert doc["card"] == model.card() and doc["steps_done"] == 24
    assert [v["step"] for v in doc["curves"]["validation"]] == [6, 12, 18, 24]
    assert len(doc["curves"]["losses"]["g_l1"]) == len(doc["curves"]["losses"]["step"])
    held = doc["held_out"]
    assert set(held["scores"]) == {"model", "constant mean", "rescaled source"}
    assert held["unit"] == "tile" and held["units"] == 4  # a 32 x 128 strip: 32 px tiles
    # the kept validation's own predictions were scored (equal tiles: MAE averages alike)
    assert held["scores"]["model"]["mae"]["mean"] == pytest.approx(kept.metrics["mae"], rel=1e-4)
    assert held["scores"]["constant mean"]["mae"]["mean"] > 0
    page = (folder / REPORT_NAME).read_text(encoding="utf-8")
    examples = 1 if kept.step == 24 else 2  # the kept validation's, and the last one's
    assert page.count('src="data:image/png') == 4 * examples
    assert f"step {kept.step:,}" in page

    # the same report for a model and its data, its kept predictions made anew (the
    # kept validation came before a resume): the same scores
    setup = set_up_run(source, target, None, None, (None, None), dict(RUN))
    (tmp_path / "again").mkdir()
    again = run_report.write_run_report(tmp_path / "again", model, setup.split)
    assert again.name == REPORT_NAME
    model_mae = report_of(tmp_path / "again")["held_out"]["scores"]["model"]["mae"]["mean"]
    assert model_mae == pytest.approx(held["scores"]["model"]["mae"]["mean"], rel=1e-4)


def test_a_stopped_run_writes_its_report_and_a_failing_report_costs_nothing(
    pair, tmp_path, monkeypatch
):
    source, target = pair
    folder = tmp_path / "stopped"
    events = train_iter(source, target, checkpoint_dir=folder, **RUN)
    for event in events:
        if isinstance(event, StepEvent) and event.step == 14:
            break
    events.close()  # the Stop button, Ctrl-C
    doc = report_of(folder)
    assert doc["steps_done"] == 14 and doc["kept_step"] in (6, 12)
    # resumed: its report replaces the first; a kept validation from before the resume is
    # predicted anew, one from after it reused: the kept model's scores either way
    model = train(source, target, resume=folder, **RUN)
    doc, kept = report_of(folder), model.history.kept_record()
    assert doc["steps_done"] == 24 and doc["kept_step"] == kept.step
    scored = doc["held_out"]["scores"]["model"]["mae"]["mean"]
    assert scored == pytest.approx(kept.metrics["mae"], rel=1e-4)

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(run_report, "write_report", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = train(source, target, checkpoint_dir=tmp_path / "broken", **{**RUN, "steps": 6})
    assert model.history.steps_done == 6
    assert any("run report could not be written" in str(w.message) for w in caught)
    assert not (tmp_path / "broken" / REPORT_NAME).exists()
    assert (tmp_path / "broken" / "checkpoint.safetensors").is_file()


def test_the_cli_prints_where_the_report_is(pair, tmp_path, capsys):
    source, target = pair
    write_image(tmp_path / "s.tif", source, "YX")
    write_image(tmp_path / "t.tif", target, "YX")
    common = ["train", str(tmp_path / "s.tif"), str(tmp_path / "t.tif"), "--steps", "4"]
    common += ["--patch-size", "32", "--depth", "4", "--base-channels", "8"]
    common += ["--disc-layers", "2", "--device", "cpu", "--val-fraction", "0.25"]
    folder = tmp_path / "run"
    assert (
        main([*common, "-o", str(tmp_path / "m.safetensors"), "--checkpoint-dir", str(folder)]) == 0
    )
    assert f"report: {(folder / REPORT_NAME).resolve()}" in capsys.readouterr().out
    assert main([*common, "-o", str(tmp_path / "n.safetensors")]) == 0
    assert "report:" not in capsys.readouterr().out  # no run folder, no report
    assert np.isfinite(report_of(folder)["held_out"]["scores"]["model"]["psnr"]["mean"])
