"""The command line, and a GUI-free import of the library."""

import subprocess
import sys

import numpy as np
import pytest
from tiny_options import untrained_model

import napari_pix2pix as p2p
from napari_pix2pix import read_image, write_image
from napari_pix2pix.cli import main


def test_import_does_not_pull_qt_or_napari():
    code = (
        "import sys, napari_pix2pix; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('qtpy', 'napari', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_train_predict_info_keep_scale(pair, tmp_path, capsys):
    source, target = pair
    scale = {"Y": 0.65, "X": 0.65}
    write_image(tmp_path / "s.tif", source, "YX", scale, "µm")
    write_image(tmp_path / "t.tif", target, "YX", scale, "µm")
    stack = np.stack([source, source[::-1]])
    write_image(tmp_path / "stack.tif", stack, "ZYX", {"Z": 2.0, **scale}, "µm")
    model = tmp_path / "model.safetensors"
    assert (
        main(
            [
                "train",
                str(tmp_path / "s.tif"),
                str(tmp_path / "t.tif"),
                "-o",
                str(model),
                "--steps",
                "3",
                "--patch-size",
                "32",
                "--depth",
                "4",
                "--base-channels",
                "8",
                "--disc-layers",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert p2p.load_model(model).history.steps_done == 3
    out = tmp_path / "pred.ome.tif"
    assert (
        main(
            [
                "predict",
                str(model),
                str(tmp_path / "stack.tif"),
                "-o",
                str(out),
                "--tile-size",
                "64",
            ]
        )
        == 0
    )
    result = read_image(out)
    assert result.array.shape == stack.shape and result.array.dtype == np.float32
    assert result.axes == "ZYX" and result.scale == pytest.approx({"Z": 2.0, **scale})
    assert main(["info", str(model)]) == 0
    assert '"steps trained": 3' in capsys.readouterr().out


def test_cli_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "napari_pix2pix.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "train" in result.stdout and "predict" in result.stdout


@pytest.mark.parametrize("command", ["train", "predict", "info", "export", "demo"])
def test_every_command_prints_its_help(command, capsys):
    """Each option's help is made from its declaration: a '%' in one once broke --help."""
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("option", [["--steps", "0"], ["--device", "gpu"]])
def test_the_demo_checks_its_options_before_writing(option, tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path / "demo"), *option]) == 2
    assert "napari-pix2pix: error:" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_a_budget_out_of_range_is_said_in_minutes(capsys):
    with pytest.raises(SystemExit):
        main(["train", "a.tif", "b.tif", "-o", "m.safetensors", "--time-budget", "-1"])
    err = capsys.readouterr().err
    assert "--time-budget is in minutes" in err and "got -1" in err and "-60" not in err


@pytest.fixture
def small_files(tmp_path):
    """An untrained tiny model file (normalization set) and a small input image."""
    model = untrained_model(tmp_path / "m.safetensors")
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    write_image(tmp_path / "in.tif", image, "YX")
    (tmp_path / "empty.tif").write_bytes(b"")
    (tmp_path / "cut.safetensors").write_bytes(model.read_bytes()[:100])
    return tmp_path


@pytest.mark.parametrize(
    "model, image, extra",
    [
        ("m.safetensors", "in.tif", ["--tile-size", "0"]),
        ("m.safetensors", "in.tif", ["--overlap", "1.5"]),
        ("m.safetensors", "empty.tif", []),
        ("m.safetensors", ".", []),
        ("cut.safetensors", "in.tif", []),
    ],
)
def test_no_progress_bar_is_printed_before_an_argument_error(
    small_files, model, image, extra, capsys
):
    folder = small_files
    argv = ["predict", str(folder / model), str(folder / image), "-o", str(folder / "o.tif")]
    assert main([*argv, "--device", "cpu", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("napari-pix2pix: error:") and "predicting" not in err, err


def test_the_progress_bar_appears_when_prediction_starts(small_files, capsys):
    folder = small_files
    argv = ["predict", str(folder / "m.safetensors"), str(folder / "in.tif")]
    assert main([*argv, "-o", str(folder / "o.tif"), "--device", "cpu"]) == 0
    assert "predicting" in capsys.readouterr().err


def test_warnings_print_as_one_line_of_their_own(small_files, capsys):
    """Once: 'cli.py:289: UserWarning: ... _, out_axes = predict(' inside the bar."""
    folder = small_files
    argv = ["predict", str(folder / "m.safetensors"), str(folder / "in.tif")]
    assert main([*argv, "-o", str(folder / "o.tif"), "--overlap", "0.8", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    lines = err.replace("\r", "\n").splitlines()
    said = [line for line in lines if line.startswith("napari-pix2pix: warning: overlap=0.8")]
    assert len(said) == 1 and "computes every pixel about 25 times" in said[0], err
    assert "UserWarning" not in err and "cli.py" not in err and "predict(" not in err, err
