"""Run configs (issue 25, item 3): ``train --config`` and ``predict --config`` read
their section of a YAML or JSON file, flags override it, ``--print-config`` prints one
loadable back, every run folder holds its resolved config, and the shipped JSON Schema
is the one the option declarations make."""

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
import yaml
from tiny_options import TINY, untrained_model

import napari_pix2pix as p2p
from napari_pix2pix import write_image
from napari_pix2pix.cli import main
from napari_pix2pix.errors import InputError, OutputError
from napari_pix2pix.io.run_config import (
    CONFIG_NAME,
    SECTIONS,
    defaults,
    read_run_config,
    save_run_config,
    section_options,
)
from napari_pix2pix.io.run_config_schema import run_config_schema

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_SCHEMA = ROOT / "docs" / "run_config.schema.json"


def printed_config(capsys, *args) -> str:
    assert main(["train", *args, "--print-config"]) == 0
    return capsys.readouterr().out


def write(tmp_path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def files(tmp_path, pair) -> list[str]:
    source, target = pair
    write_image(tmp_path / "s.tif", source, "YX")
    write_image(tmp_path / "t.tif", target, "YX")
    return [str(tmp_path / "s.tif"), str(tmp_path / "t.tif")]


def validator():
    return jsonschema.Draft202012Validator(json.loads(SHIPPED_SCHEMA.read_text("utf-8")))


# ------------------------------------------------------------------ round trip
def test_printed_defaults_load_back_as_the_defaults(tmp_path, capsys):
    path = write(tmp_path, printed_config(capsys))
    loaded = read_run_config(path)
    assert loaded == {section: defaults(section) for section in SECTIONS}
    # what the recipe or the data decide is left out, so the file changes nothing
    assert not {"depth", "patch_size", "base_channels", "steps", "axes"} & set(loaded["train"])
    assert printed_config(capsys, "--config", str(path)) == path.read_text("utf-8")


def test_print_config_holds_the_file_and_flags_in_library_units(tmp_path, capsys):
    path = write(tmp_path, "train:\n  lr: 1e-4\n  depth: 5\npredict:\n  overlap: 0.5\n")
    text = printed_config(capsys, "--config", str(path), "--depth", "6", "--time-budget", "2")
    loaded = read_run_config(write(tmp_path, text, "printed.yaml"))
    assert loaded["train"]["lr"] == 1e-4  # from the file (YAML 1.2: 1e-4 is a number)
    assert loaded["train"]["depth"] == 6  # the flag wins
    assert loaded["train"]["time_budget"] == 120.0  # minutes on the command line, seconds here
    assert loaded["predict"]["overlap"] == 0.5


def test_flags_override_the_file_and_the_run_folder_holds_the_resolved_config(
    tmp_path, pair, capsys
):
    """The file's options train (a 4-level U-Net), a flag wins over it (steps), and
    the run folder's run_config.yaml, every value explicit, trains the same model again."""
    source, target = files(tmp_path, pair)
    options = {**TINY, "steps": 50, "batch_size": 2, "val_fraction": 0.0}
    config = write(tmp_path, yaml.safe_dump({"train": options}))
    first = tmp_path / "first.safetensors"
    args = [source, target, "--config", str(config), "--steps", "3"]
    assert main(["train", *args, "-o", str(first), "--checkpoint-dir", str(tmp_path / "a")]) == 0
    model = p2p.load_model(first)
    assert model.history.steps_done == 3 and model.config.depth == 4
    resolved = tmp_path / "a" / CONFIG_NAME
    train = read_run_config(resolved, "train")
    assert train["steps"] == 3 and train["depth"] == 4 and train["patch_size"] == (32, 32)
    assert train["checkpoint_dir"] == (tmp_path / "a").absolute()
    assert set(train) == {o.keyword for o in section_options("train")}
    validator().validate(yaml.safe_load(resolved.read_text("utf-8")))

    again = tmp_path / "again.safetensors"
    args = ["--config", str(resolved), "--checkpoint-dir", str(tmp_path / "b")]
    assert main(["train", source, target, "-o", str(again), *args]) == 0
    weights = p2p.load_model(again).generator.state_dict()
    for name, value in model.generator.state_dict().items():
        assert torch.equal(value, weights[name]), name


def test_the_resolved_config_holds_what_the_recipe_chose(tmp_path, pair):
    source, target = pair
    run = tmp_path / "run"
    small = dict(steps=2, batch_size=2, val_fraction=0.0, device="cpu", disc_layers=2)
    model = p2p.train(source[:64, :64], target[:64, :64], checkpoint_dir=run, **small)
    train = read_run_config(run / CONFIG_NAME, "train")
    assert model.history.recipe["preset"] == "auto"
    for key in ("depth", "base_channels", "disc_channels", "patch_size"):
        assert train[key] == getattr(model.config, key), key
    assert train["patch_size"] == (64, 64)  # fitted to the 64 px image, not the default 128


def test_a_users_file_named_like_the_resolved_config_is_left_alone(tmp_path, pair):
    source, target = pair
    run = tmp_path / "run"
    run.mkdir()
    mine = write(run, "train:\n  steps: 2\n", CONFIG_NAME)
    with pytest.warns(UserWarning, match="left alone"):
        p2p.train(source, target, checkpoint_dir=run, **{**TINY, "steps": 2, "val_fraction": 0})
    assert mine.read_text("utf-8") == "train:\n  steps: 2\n"


def test_predict_reads_its_section(tmp_path, pair):
    model = untrained_model(tmp_path / "model.safetensors")
    image = tmp_path / "image.tif"
    write_image(image, pair[0][:64, :64], "YX")
    out = tmp_path / "out.tif"
    base = ["predict", str(model), str(image), "-o", str(out), "--device", "cpu"]
    assert main(base) == 0
    assert main(base) == 2  # the output exists
    config = write(tmp_path, "predict:\n  if_exists: overwrite\n  tile_size: 32\n")
    assert main([*base, "--config", str(config)]) == 0  # the file's if_exists


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "text, said",
    [
        ("train:\n  stpes: 3\n", "the train section has no option 'stpes'. Did you mean 'steps'?"),
        ("train:\n  steps: many\n", "steps has an invalid value 'many' (int expected)"),
        ("train:\n  lr: 0\n", "allowed: (0, 10]"),
        ("train:\n  patch_size: [32, 100000]\n", "beyond what napari-pix2pix supports"),
        ("predict:\n  overlap: 1.0\n", "overlap must be"),
        ("predict:\n  amp: fast\n", "amp must be one of"),
        ("steps: 3\n", "'steps' is an option, and options go under a section: indent it under"),
        ("trian:\n  steps: 3\n", "Did you mean 'train'?"),
        ("train: [steps, 3]\n", "must hold 'option: value' lines"),
        ("- 1\n", "a run config holds sections"),
        ("train:\n  steps: [3\n", "is not valid YAML (line 3"),
        (
            "train:\n  steps: 3\n  lr: 0.1\n  steps: 30\n",
            "line 4, column 3: 'steps' is given twice",
        ),
        ("train:\n  steps: 3\ntrain:\n  lr: 0.1\n", "'train' is given twice"),
    ],
)
def test_bad_configs_are_refused_naming_the_file_the_key_and_the_fix(tmp_path, text, said):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        read_run_config(path)
    assert said in str(caught.value) and str(path) in str(caught.value)


def test_a_json_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"train": {"steps": 3, "steps": 30}}')
    with pytest.raises(InputError, match="'steps' given twice in one object; keep one"):
        read_run_config(path)


def test_the_cli_refuses_a_bad_config_before_anything_runs(tmp_path, capsys):
    path = write(tmp_path, '{"train": {"batch_size": 0}}', "run.json")
    assert main(["train", "a.tif", "b.tif", "-o", str(tmp_path / "m"), "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert str(path) in error and "batch_size must be a positive integer" in error
    assert "remove the line for the default (4)" in error
    assert not (tmp_path / "m").exists()
    bad_json = write(tmp_path, '{"train": {"steps": 3,}}', "bad.json")
    with pytest.raises(InputError, match=r"not valid JSON \(line 1"):
        read_run_config(bad_json)
    for path in (tmp_path, tmp_path / "missing.yaml"):
        with pytest.raises(InputError, match="run config|directory"):
            read_run_config(path)


def test_yaml_reads_off_and_exponents_as_yaml_1_2_does(tmp_path):
    path = write(tmp_path, "train:\n  amp: off\n  lr: 1e-4\n  resume_other_data: true\n")
    assert read_run_config(path, "train") == {"amp": "off", "lr": 1e-4, "resume_other_data": True}
    with pytest.raises(InputError, match="resume_other_data has an invalid value 'yes'"):
        read_run_config(write(tmp_path, "train:\n  resume_other_data: yes\n"))


# ------------------------------------------------------------------ saving
def test_saving_a_section_keeps_the_others_and_never_replaces_other_files(tmp_path):
    path = write(tmp_path, "predict:\n  overlap: 0.5\n")
    save_run_config(path, "train", {"steps": 7})
    assert read_run_config(path) == {"train": {"steps": 7}, "predict": {"overlap": 0.5}}
    notes = write(tmp_path, "my notes: not a config\n", "notes.yaml")
    with pytest.raises(OutputError, match="was not replaced"):
        save_run_config(notes, "train", {"steps": 7})
    assert notes.read_text("utf-8") == "my notes: not a config\n"
    as_json = save_run_config(tmp_path / "run.json", "train", {"patch_size": (64, 64)})
    assert json.loads(as_json.read_text("utf-8")) == {"train": {"patch_size": [64, 64]}}


# ------------------------------------------------------------------ schema
def test_the_shipped_schema_is_the_one_the_declarations_make():
    assert json.loads(SHIPPED_SCHEMA.read_text("utf-8")) == run_config_schema(), (
        "docs/run_config.schema.json is stale: run python docs/make_options.py"
    )


def test_the_schema_accepts_real_configs_and_refuses_bad_ones(tmp_path, capsys):
    check = validator()
    check.validate(yaml.safe_load(printed_config(capsys)))
    good = {
        "$schema": "../docs/run_config.schema.json",
        "train": {"patch_size": 64, "betas": [0.5, 0.99], "device": "cuda:1", "seed": None},
        "predict": {"tile_size": [64, 128], "overlap": 0.5},
    }
    check.validate(good)
    read_run_config(write(tmp_path, json.dumps(good), "good.json"))  # the library agrees
    bad = [
        {"train": {"stpes": 3}},
        {"train": {"steps": 0}},
        {"train": {"steps": "many"}},
        {"train": {"lr": 0}},
        {"train": {"betas": [0.5]}},
        {"train": {"gan_mode": "wgan"}},
        {"predict": {"overlap": 1.0}},
        {"predict": {"uncertainty": True}},  # not a flag of predict: not in its section
        {"steps": 3},
    ]
    for i, config in enumerate(bad):
        assert not check.is_valid(config), config
        with pytest.raises(InputError):  # the library refuses it too
            read_run_config(write(tmp_path, json.dumps(config), f"bad{i}.json"))


def test_every_option_of_a_section_is_in_the_schema_with_its_help():
    schema = run_config_schema()
    for section in SECTIONS:
        properties = schema["properties"][section]["properties"]
        for option in section_options(section):
            assert option.spec.help in properties[option.keyword]["description"]
    assert "in seconds" in schema["properties"]["train"]["properties"]["time_budget"]["description"]
    assert np.isclose(schema["properties"]["train"]["properties"]["lr"]["default"], 2e-4)
