"""An empty path ('' or blanks, as an unset shell variable gives) is refused up front,
naming the argument: Path('') is Path('.'), the current folder, which was once read as
a folder of images (training on whatever the current folder held) or said to be
"'.' is a directory"."""

import numpy as np
import pytest
import tifffile
from tiny_options import FAST, untrained_model

import napari_pix2pix as p2p
from napari_pix2pix.cli import main


@pytest.fixture
def images_here(tmp_path, monkeypatch):
    """The current folder holds images (a folder '' would once have trained on), and a
    target folder beside it."""
    image = np.random.default_rng(0).integers(0, 1000, (64, 64), dtype=np.uint16)
    for name in ("a.tif", "b.tif"):
        tifffile.imwrite(tmp_path / name, image)
    (tmp_path / "targets").mkdir()
    for name in ("a.tif", "b.tif"):
        tifffile.imwrite(tmp_path / "targets" / name, image)
    monkeypatch.chdir(tmp_path)
    return image


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: p2p.train("", "targets", **FAST), "source"),
        (lambda: p2p.train("a.tif", "  ", **FAST), "target"),
        (lambda: p2p.train(["a.tif", ""], ["a.tif", "b.tif"], **FAST), "source"),
        (
            lambda: p2p.train("a.tif", "b.tif", val_source="", val_target="targets", **FAST),
            "val_source",
        ),
        (lambda: p2p.train("a.tif", "b.tif", checkpoint_dir="", **FAST), "checkpoint_dir"),
        (lambda: p2p.train("a.tif", "b.tif", init_model=" ", **FAST), "init_model"),
        (lambda: p2p.read_image(""), "image file"),
        (lambda: p2p.load_model(""), "model path"),
        (lambda: p2p.write_image("", np.zeros((8, 8)), "YX"), "image path"),
    ],
)
def test_an_empty_path_is_refused_naming_the_argument(images_here, call, name):
    with pytest.raises(p2p.InputError, match=f"{name} is an empty path"):
        call()


def test_predict_refuses_an_empty_image_or_output(images_here, tmp_path):
    model = untrained_model(tmp_path / "m.safetensors")
    with pytest.raises(p2p.InputError, match="image file is an empty path"):
        p2p.predict(model, "", device="cpu")
    with pytest.raises(p2p.InputError, match="out is an empty path"):
        p2p.predict(model, images_here, axes="YX", out="", device="cpu")
    with pytest.raises(p2p.InputError, match="model path is an empty path"):
        p2p.load_model(model).save("")


@pytest.mark.parametrize(
    "argv, name",
    [
        (["train", "", "targets", "-o", "m2.safetensors"], "SOURCE"),
        (["train", "a.tif", "", "-o", "m2.safetensors"], "TARGET"),
        (["train", "a.tif", "b.tif", "-o", ""], "-o/--output"),
        (["train", "a.tif", "b.tif", "-o", "m2.safetensors", "--resume", ""], "--resume"),
        (["predict", "m.safetensors", "", "-o", "o.tif"], "INPUT"),
        (["predict", "", "a.tif", "-o", "o.tif"], "MODEL"),
        (["predict", "m.safetensors", "a.tif", "-o", ""], "-o/--output"),
        (["info", ""], "MODEL"),
        (["demo", "-o", " ", "--steps", "2"], "-o/--output"),
    ],
)
def test_the_cli_refuses_an_empty_path_naming_the_argument(images_here, argv, name, capsys):
    untrained_model("m.safetensors")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"napari-pix2pix: error: {name} is an empty path" in err, err
    assert "'.'" not in err


def test_a_symbolic_link_loop_is_called_one(tmp_path, monkeypatch, capsys):
    """Two links pointing at each other: a message naming the link, not a traceback."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loop2.tif").symlink_to("loop1.tif")
    (tmp_path / "loop1.tif").symlink_to("loop2.tif")
    model = untrained_model(tmp_path / "m.safetensors")
    p2p.write_image(tmp_path / "in.tif", np.zeros((64, 64), np.float32), "YX")
    with pytest.raises(p2p.Pix2PixError, match="'loop1.tif'"):
        p2p.predict(p2p.load_model(model), "in.tif", out="loop1.tif", device="cpu")
    assert main(["predict", str(model), "loop1.tif", "-o", "o.tif", "--device", "cpu"]) != 0
    assert "Traceback" not in capsys.readouterr().err


def test_a_missing_folder_beside_a_real_one_is_called_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "B").mkdir()
    with pytest.raises(p2p.ImageFileError, match="'A ' does not exist"):
        p2p.train("A ", "B", **FAST)
