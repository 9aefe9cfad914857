"""The run history's stored form is the JSON model files have always held: a trained
model's history goes out and comes back as it was, a malformed entry is dropped with a
warning, and what a newer version wrote is kept."""

import json

import pytest

from napari_pix2pix.engine.run_history import RunHistory, Validation, ValidationRecord


def test_a_trained_history_round_trips_through_json(trained):
    stored = json.loads(json.dumps(trained.history.to_dict()))
    assert RunHistory.from_dict(stored, "m") == trained.history
    assert stored["best"].keys() == {"step", "metric", "value", "metrics"}
    assert stored["validation"][0]["step"] == trained.history.validation[0].step
    assert "mae" in stored["validation"][0] and "kept" in stored and "extra" not in stored


def test_the_stored_form_is_the_old_dict():
    """The keys and values a run wrote before the history was typed, for one with two
    validations that kept the first: files from both versions read alike."""
    old = {
        "steps_done": 4,
        "losses": {"step": [2, 4], "g_l1": [0.5, 0.25]},
        "validation": [{"step": 2, "mae": 3.0}, {"step": 4, "mae": 4.0}],
        "train_seconds": 1.5,
        "device": "cpu",
        "recipe": None,
        "split": "last 1 of 2 pairs held out",
        "train_pairs": ["array 0"],
        "val_pairs": ["array 1"],
        "pixel_size": [{"Y": 0.5, "X": 0.5, "unit": "µm"}],
        "data": {"train": []},
        "time_budget": None,
        "final_metrics": {"mae": 4.0},
        "best": {"step": 2, "metric": "mae", "value": 3.0, "metrics": {"mae": 3.0}},
        "most_accurate": {"step": 2, "metric": "mae", "value": 3.0, "metrics": {"mae": 3.0}},
        "kept": "best",
    }
    history = RunHistory.from_dict(old, "m")
    assert history.validation[1] == Validation(4, {"mae": 4.0})
    assert history.best == ValidationRecord(2, "mae", 3.0, {"mae": 3.0})
    assert history.kept_record() is history.best
    assert history.to_dict() == old
    assert RunHistory().to_dict()["time_budget"] is None  # "none given", as always written
    assert "kept" not in RunHistory().to_dict()  # older readers refuse a kept of None


def test_malformed_entries_are_dropped_and_unknown_ones_kept():
    stored = {"steps_done": "many", "validation": [{"mae": 1.0}], "kept": "best", "new": [1]}
    with pytest.warns(UserWarning, match=r"in 'm' has malformed entries \(steps_done, validat"):
        history = RunHistory.from_dict(stored, "m")
    assert history.steps_done == 0 and history.validation == [] and history.kept == "best"
    assert history.extra == {"new": [1]} and history.to_dict()["new"] == [1]


def test_scripts_that_read_it_as_a_dict_keep_working_with_a_pointer(trained):
    history = trained.history
    with pytest.warns(DeprecationWarning, match=r"read model.history.steps_done instead"):
        assert history["steps_done"] == history.steps_done
    with pytest.warns(DeprecationWarning):
        assert history.get("best") == history.best.to_dict()  # the stored, plain form
    assert history.get("no such entry", 7) == 7 and "losses" in history
    with pytest.raises(KeyError):
        history["no such entry"]
