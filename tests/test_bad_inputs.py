"""Every input a user can get wrong gets one of our exceptions with a message naming the
problem and the fix, raised before long work starts: through the API and the CLI (the
widget's cases are in test_napari_plugin.py). The table doubles as the list of bad
inputs reported for the reliability issue."""

import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from tiny_options import FAST

import napari_pix2pix as p2p
from napari_pix2pix import StepEvent
from napari_pix2pix.cli import main
from napari_pix2pix.engine.inference import TiledPredictor
from napari_pix2pix.io.model_file import Pix2PixModel


def read_only_folder(tmp: Path) -> Path:
    """A folder nobody may write to; root ignores permission bits, /sys refuses it too."""
    folder = tmp / "read-only"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except OSError:
        return folder
    (folder / "probe").unlink()
    return Path("/sys")


@pytest.fixture(scope="module")
def files(tmp_path_factory, pair):
    """Broken and valid files of every kind a user might hand over."""
    tmp = tmp_path_factory.mktemp("bad")
    source, target = pair
    f = {"tmp": tmp}
    f["ok_tif"] = tmp / "ok.tif"
    tifffile.imwrite(f["ok_tif"], source)
    raw = f["ok_tif"].read_bytes()
    (tmp / "truncated.tif").write_bytes(raw[: len(raw) // 2])
    (tmp / "text.tif").write_text("not a tiff")
    (tmp / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    model = p2p.train(source, target, **FAST)
    f["model"] = model
    good = model.save(tmp / "model.safetensors").read_bytes()
    (tmp / "truncated.safetensors").write_bytes(good[:-1000])
    (tmp / "random.safetensors").write_bytes(np.random.default_rng(0).bytes(5000))
    torch.save({"w": torch.zeros(1)}, tmp / "legacy.pth")
    (tmp / "pickle.safetensors").write_bytes(pickle.dumps({"a": 1}))
    folder = model.save(tmp / "folder_model")
    doc = json.loads((folder / "config.json").read_text())
    for name, change in (
        ("newer", {"format_version": 99}),
        ("mismatch", {"config": {**doc["config"], "base_channels": 16}}),
        ("foreign", {"format": "something-else"}),
        ("bad_axes", {"config": {**doc["config"], "source_axes": "QQ"}}),
    ):
        model.save(tmp / name)
        (tmp / name / "config.json").write_text(json.dumps({**doc, **change}))
    model.save(tmp / "corrupt")
    (tmp / "corrupt" / "config.json").write_text("{not json")
    (tmp / "empty_folder").mkdir()
    (tmp / "dir.tif").mkdir()
    f["plain"] = tmp / "plain"
    f["plain"].write_text("a plain file where a model folder would go")
    f["empty_axis"] = tmp / "empty_axis.tif"
    tifffile.imwrite(f["empty_axis"], np.zeros((0, 8, 8), np.uint16))
    # a stack cut short at its end (an interrupted copy): tifffile alone shows its
    # first plane as the whole file
    stack = np.stack([source[:96, :96]] * 6)
    for kind, options in (("ome", {"ome": True}), ("imagej", {"imagej": True})):
        tifffile.imwrite(tmp / "whole.tif", stack, metadata={"axes": "ZYX"}, **options)
        (tmp / f"cut_{kind}.tif").write_bytes((tmp / "whole.tif").read_bytes()[:-2000])
    # a multi-file OME-TIFF copied without its second file: half its planes are missing
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/'
        'Schemas/OME/2016-06" UUID="urn:uuid:1"><Image ID="Image:0"><Pixels ID="Pixels:0" '
        'DimensionOrder="XYZCT" SizeX="96" SizeY="96" SizeC="1" SizeZ="6" SizeT="1" '
        'Type="uint16"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
        '<TiffData FirstZ="0" IFD="0" PlaneCount="3"><UUID FileName="part1.ome.tif">'
        'urn:uuid:1</UUID></TiffData><TiffData FirstZ="3" IFD="0" PlaneCount="3"><UUID '
        'FileName="part2.ome.tif">urn:uuid:2</UUID></TiffData></Pixels></Image></OME>'
    )
    tifffile.imwrite(
        tmp / "part1.ome.tif", stack[:3], description=xml, metadata=None, photometric="minisblack"
    )
    # cut inside a page directory, or inside where a plane's tiles are said to lie, or
    # before the first directory (a partial download of a file whose directories follow
    # its pixels)
    whole = tmp / "whole.tif"
    tifffile.imwrite(whole, stack, tile=(32, 32), compression="zlib", metadata={"axes": "ZYX"})
    with tifffile.TiffFile(whole) as tif:
        in_directory = tif.pages[4].offset + 1
        in_tile_offsets = tif.pages[5].tags["TileOffsets"].valueoffset + 4
    for name, cut in (("in_ifd", in_directory), ("in_tiles", in_tile_offsets), ("header", 8)):
        (tmp / f"cut_{name}.tif").write_bytes(whole.read_bytes()[:cut])
    # compressed planes with their data scrambled (a bad disk sector, a damaged transfer)
    f["damaged"] = tmp / "damaged.tif"
    tifffile.imwrite(f["damaged"], stack, compression="zlib", metadata={"axes": "ZYX"})
    with tifffile.TiffFile(f["damaged"]) as tif:
        offset, count = tif.pages[3].dataoffsets[0], tif.pages[3].databytecounts[0]
    raw = bytearray(f["damaged"].read_bytes())
    raw[offset : offset + count] = np.random.default_rng(1).bytes(count)
    f["damaged"].write_bytes(bytes(raw))
    for name, change in (
        ("nan_norm", {"source_low": [float("nan")]}),
        ("huge_norm", {"target_low": [-1e308], "target_high": [1e308]}),
    ):
        model.save(tmp / name)
        (tmp / name / "config.json").write_text(
            json.dumps({**doc, "config": {**doc["config"], **change}})
        )
    f["positions"] = tmp / "positions.ome.tif"
    with tifffile.TiffWriter(f["positions"], ome=True) as writer:
        writer.write(source[:64, :64], metadata={"axes": "YX"})
        writer.write(source[64:, 64:], metadata={"axes": "YX"})
    return f


def _nan(a, value=np.nan):
    a = a.astype(np.float32)
    a[3, 3] = value
    return a


S = (128, 128)
# (case, call(source, target, files), exception, message pattern)
CASES = [
    # images and axes
    ("shapes differ", lambda s, t, f: p2p.train(s, t[:100], **FAST), p2p.InputError, "not aligned"),
    (
        "only the axis order differs",
        lambda s, t, f: p2p.train(s[:, :100], t[:100, :], **FAST),
        p2p.InputError,
        "another order",
    ),
    (
        "empty array",
        lambda s, t, f: p2p.train(np.zeros((0, 64)), np.zeros((0, 64)), **FAST),
        p2p.InputError,
        "empty",
    ),
    ("NaN in the source", lambda s, t, f: p2p.train(_nan(s), t, **FAST), p2p.InputError, "NaN"),
    (
        "inf in the target",
        lambda s, t, f: p2p.train(s, _nan(t, np.inf), **FAST),
        p2p.InputError,
        "NaN or infinite",
    ),
    (
        "NaN in a predicted image",
        lambda s, t, f: p2p.predict(f["model"], _nan(s)),
        p2p.InputError,
        "NaN",
    ),
    (
        "constant image",
        lambda s, t, f: p2p.train(np.ones_like(s), t, **FAST),
        p2p.InputError,
        "constant",
    ),
    (
        "complex dtype",
        lambda s, t, f: p2p.predict(f["model"], s.astype(complex)),
        p2p.InputError,
        "dtype complex128",
    ),
    (
        "axes length != ndim",
        lambda s, t, f: p2p.train(s, t, axes="ZYX", **FAST),
        p2p.InputError,
        "has 3 letters but the source has 2",
    ),
    (
        "axes repeat a letter",
        lambda s, t, f: p2p.predict(f["model"], s[None], axes="YYX"),
        p2p.InputError,
        "repeats",
    ),
    (
        "unknown axes letter",
        lambda s, t, f: p2p.train(s, t, axes="QX", **FAST),
        p2p.InputError,
        "unknown letters",
    ),
    (
        "axes without Y and X",
        lambda s, t, f: p2p.predict(f["model"], s[None], axes="CZX"),
        p2p.InputError,
        "must contain Y and X",
    ),
    (
        "RGB image given as YX",
        lambda s, t, f: p2p.train(np.stack([s] * 3, -1), t, axes="YX", **FAST),
        p2p.InputError,
        "has 2 letters but the source has 3",
    ),
    (
        "RGB image, no axes",
        lambda s, t, f: p2p.train(np.stack([s] * 3, -1), t, axes=None, **FAST),
        p2p.InputError,
        "say what they are with axes",
    ),
    (
        "RGB image on a 1-channel model",
        lambda s, t, f: p2p.predict(f["model"], np.stack([s] * 3, -1), axes="YXC"),
        p2p.InputError,
        "3 channel.* model expects 1",
    ),
    (
        "3D training on a 2D image",
        lambda s, t, f: p2p.train(s, t, spatial_dims=3, **FAST),
        p2p.InputError,
        "spatial_dims=3\\) needs a Z axis",
    ),
    (
        "2D image on a 3D model",
        lambda s, t, f: p2p.predict(
            Pix2PixModel(
                f["model"].config.replace(
                    spatial_dims=3, source_axes="ZYX", target_axes="ZYX", patch_size=(32, 32, 32)
                )
            ),
            s,
        ),
        p2p.InputError,
        "trained on 'ZYX'",
    ),
    # options
    (
        "steps 0",
        lambda s, t, f: p2p.train(s, t, **{**FAST, "steps": 0}),
        p2p.InputError,
        "steps must be a positive integer",
    ),
    (
        "batch size negative",
        lambda s, t, f: p2p.train(s, t, **{**FAST, "batch_size": -1}),
        p2p.InputError,
        "batch_size must be a positive integer",
    ),
    (
        "patch size 0",
        lambda s, t, f: p2p.train(s, t, **{**FAST, "patch_size": 0}),
        p2p.InputError,
        "multiple of 2\\*\\*depth",
    ),
    (
        "patch size not a multiple of 2**depth",
        lambda s, t, f: p2p.train(s, t, **{**FAST, "patch_size": 40}),
        p2p.InputError,
        "Use patch_size=16 .*or depth=3",
    ),
    (
        "unknown gan_mode",
        lambda s, t, f: p2p.train(s, t, **{**FAST, "gan_mode": "wgan"}),
        p2p.InputError,
        "gan_mode must be one of",
    ),
    (
        "checkpoint_every 0",
        lambda s, t, f: p2p.train(s, t, checkpoint_every=0, **FAST),
        p2p.InputError,
        "checkpoint_every must be a positive integer",
    ),
    (
        "tile size 0",
        lambda s, t, f: p2p.predict(f["model"], s, tile_size=0),
        p2p.InputError,
        "tile_size must be a positive integer",
    ),
    (
        "overlap 1",
        lambda s, t, f: p2p.predict(f["model"], s, overlap=1.0),
        p2p.InputError,
        "overlap must be at least 0 and below 1; got 1.0",
    ),
    (
        "overlap negative",
        lambda s, t, f: p2p.predict(f["model"], s, overlap=-0.1),
        p2p.InputError,
        "overlap must be at least 0 and below 1; got -0.1",
    ),
    (
        "predict batch size 0",
        lambda s, t, f: p2p.predict(f["model"], s, batch_size=0),
        p2p.InputError,
        "batch_size must be a positive integer",
    ),
    (
        "unknown device",
        lambda s, t, f: p2p.predict(f["model"], s, device="gpu"),
        p2p.InputError,
        "device must be one of",
    ),
    # image files
    (
        "image path missing",
        lambda s, t, f: p2p.predict(f["model"], f["tmp"] / "nope.tif"),
        p2p.ImageFileError,
        "does not exist",
    ),
    (
        "image path is a directory",
        lambda s, t, f: p2p.train(f["tmp"], t, **FAST),
        p2p.ImageFileError,
        "is a directory",
    ),
    (
        "not a TIFF, named .tif",
        lambda s, t, f: p2p.predict(f["model"], f["tmp"] / "text.tif"),
        p2p.ImageFileError,
        "cannot read .* as a TIFF",
    ),
    (
        "not a TIFF suffix",
        lambda s, t, f: p2p.predict(f["model"], f["tmp"] / "image.png"),
        p2p.ImageFileError,
        "not a TIFF file",
    ),
    (
        "truncated TIFF (predict)",
        lambda s, t, f: p2p.predict(f["model"], f["tmp"] / "truncated.tif"),
        p2p.ImageFileError,
        "truncated",
    ),
    (
        "truncated TIFF (train)",
        lambda s, t, f: p2p.train(f["tmp"] / "truncated.tif", t, **FAST),
        p2p.ImageFileError,
        "truncated",
    ),
    (
        "float64 training image beyond float32's range",
        lambda s, t, f: p2p.train(s.astype(np.float64) * 1e300, t, **FAST),
        p2p.InputError,
        "holds values up to .* beyond float32's range",
    ),
    (
        "OME-TIFF stack cut short",
        lambda s, t, f: p2p.read_image(f["tmp"] / "cut_ome.tif"),
        p2p.ImageFileError,
        "truncated: its list of planes goes on past the end of the file, after the 1 that",
    ),
    (
        "ImageJ stack cut short (train)",
        lambda s, t, f: p2p.train(f["tmp"] / "cut_imagej.tif", t, **FAST),
        p2p.ImageFileError,
        "is truncated: its list of planes",
    ),
    (
        "TIFF stack cut inside a page directory",
        lambda s, t, f: p2p.predict(f["model"], f["tmp"] / "cut_in_ifd.tif"),
        p2p.ImageFileError,
        "is truncated: its list of planes goes on past the end of the file, after the",
    ),
    (
        "TIFF stack cut where its last plane's tiles are listed",
        lambda s, t, f: p2p.predict(f["model"], f["tmp"] / "cut_in_tiles.tif"),
        p2p.ImageFileError,
        "truncated or damaged: a plane's data cannot be located|is damaged",
    ),
    (
        "TIFF cut before its first page",
        lambda s, t, f: p2p.read_image(f["tmp"] / "cut_header.tif"),
        p2p.ImageFileError,
        "holds no readable image",
    ),
    (
        "multi-file OME-TIFF without its companion file",
        lambda s, t, f: p2p.predict(f["model"], f["tmp"] / "part1.ome.tif"),
        p2p.ImageFileError,
        "declares 6 planes but 3 of them are not there",
    ),
    (
        "damaged compressed TIFF (read)",
        lambda s, t, f: p2p.read_image(f["damaged"]),
        p2p.ImageFileError,
        "is damaged: its image data cannot be read",
    ),
    (
        "damaged compressed TIFF (train, read as needed)",
        lambda s, t, f: p2p.train(f["damaged"], f["damaged"], axes="ZYX", **FAST),
        p2p.ImageFileError,
        "is damaged: its image data cannot be read",
    ),
    # model files
    (
        "model normalization not a number",
        lambda s, t, f: p2p.load_model(f["tmp"] / "nan_norm"),
        p2p.ModelFileError,
        r"source_low must hold finite numbers, got \[nan\]",
    ),
    (
        "model normalization spanning more than a float",
        lambda s, t, f: p2p.load_model(f["tmp"] / "huge_norm"),
        p2p.ModelFileError,
        "finite, and their span too",
    ),
    (
        "model axes of unknown letters",
        lambda s, t, f: p2p.load_model(f["tmp"] / "bad_axes"),
        p2p.ModelFileError,
        "is invalid: axes 'QQ' for the model's source uses unknown letters",
    ),
    (
        "model path missing",
        lambda s, t, f: p2p.load_model(f["tmp"] / "nope.safetensors"),
        p2p.ModelFileError,
        "does not exist",
    ),
    (
        "folder that is not a model",
        lambda s, t, f: p2p.load_model(f["tmp"] / "empty_folder"),
        p2p.ModelFileError,
        "neither a napari-pix2pix model folder .* nor a run folder",
    ),
    (
        "a TIFF given as the model",
        lambda s, t, f: p2p.load_model(f["ok_tif"]),
        p2p.ModelFileError,
        "not a safetensors model file",
    ),
    (
        "random bytes as a model",
        lambda s, t, f: p2p.load_model(f["tmp"] / "random.safetensors"),
        p2p.ModelFileError,
        "not a safetensors model file",
    ),
    (
        "pickle named .safetensors",
        lambda s, t, f: p2p.load_model(f["tmp"] / "pickle.safetensors"),
        p2p.ModelFileError,
        "not a safetensors model file",
    ),
    (
        "legacy .pth",
        lambda s, t, f: p2p.load_model(f["tmp"] / "legacy.pth"),
        p2p.ModelFileError,
        "not opened because unpickling can run arbitrary code",
    ),
    (
        "truncated weights",
        lambda s, t, f: p2p.load_model(f["tmp"] / "truncated.safetensors"),
        p2p.ModelFileError,
        "truncated or corrupted",
    ),
    (
        "corrupted config JSON",
        lambda s, t, f: p2p.load_model(f["tmp"] / "corrupt"),
        p2p.ModelFileError,
        "not valid JSON",
    ),
    (
        "config from a newer format",
        lambda s, t, f: p2p.load_model(f["tmp"] / "newer"),
        p2p.ModelFileError,
        "newer napari-pix2pix .*upgrade",
    ),
    (
        "another program's JSON",
        lambda s, t, f: p2p.load_model(f["tmp"] / "foreign"),
        p2p.ModelFileError,
        "format tag missing",
    ),
    (
        "weights don't match the config",
        lambda s, t, f: p2p.load_model(f["tmp"] / "mismatch"),
        p2p.ModelFileError,
        "do not match the architecture",
    ),
    (
        "resume from a folder without checkpoint",
        lambda s, t, f: p2p.train(s, t, resume=f["tmp"] / "empty_folder", **FAST),
        p2p.ModelFileError,
        "no checkpoint at .*pass the checkpoint_dir of an earlier run",
    ),
    # outputs
    (
        "output folder missing",
        lambda s, t, f: p2p.predict(f["model"], s, out=f["tmp"] / "no" / "x.tif"),
        p2p.InputError,
        "output folder .* does not exist",
    ),
    (
        "output folder read-only",
        lambda s, t, f: p2p.predict(f["model"], s, out=read_only_folder(f["tmp"]) / "x.tif"),
        p2p.InputError,
        "is not writable",
    ),
    (
        "output path is a directory",
        lambda s, t, f: p2p.predict(f["model"], s, out=f["tmp"] / "dir.tif"),
        p2p.InputError,
        "is a directory",
    ),
    (
        "output of an unknown type",
        lambda s, t, f: p2p.predict(f["model"], s, out=f["tmp"] / "x.png"),
        p2p.InputError,
        "out must end in .tif",
    ),
    # found by trying hostile inputs (the trust issue): each once raised a raw error
    (
        "device 'cpu:abc'",
        lambda s, t, f: p2p.predict(f["model"], s, device="cpu:abc"),
        p2p.InputError,
        "device must be one of",
    ),
    (
        "seed -1",
        lambda s, t, f: p2p.train(s, t, **{**FAST, "seed": -1}),
        p2p.InputError,
        "seed must be between 0 and 2147483647, or None for random; got -1",
    ),
    (
        "seed 2**64",
        lambda s, t, f: p2p.train(s, t, **{**FAST, "seed": 2**64}),
        p2p.InputError,
        "seed=18446744073709551616 is beyond",
    ),
    (
        "dask array of unknown size",
        lambda s, t, f: p2p.predict(f["model"], unknown_chunks(s), axes="YX"),
        p2p.InputError,
        "unknown size .*compute_chunk_sizes",
    ),
    (
        "read-only out array",
        lambda s, t, f: p2p.predict(f["model"], s, out=read_only(s)),
        p2p.InputError,
        "read-only",
    ),
    (
        "output name too long",
        lambda s, t, f: p2p.predict(f["model"], s, out=f["tmp"] / ("a" * 300 + ".tif")),
        p2p.InputError,
        "too long",
    ),
    (
        "save into a missing folder",
        lambda s, t, f: f["model"].save(f["tmp"] / "no" / "m.safetensors"),
        p2p.InputError,
        "output folder .* does not exist",
    ),
    (
        "save onto a directory",
        lambda s, t, f: f["model"].save(f["tmp"] / "dir.tif" / ".."),
        p2p.InputError,
        "exists|directory",
    ),
    (
        "save a folder model onto a file",
        lambda s, t, f: f["model"].save(f["plain"]),
        p2p.InputError,
        "exists|is a file",
    ),
    (
        "TIFF with an empty axis",
        lambda s, t, f: p2p.read_image(f["empty_axis"]),
        p2p.ImageFileError,
        "empty axis",
    ),
    (
        "TIFF of several positions",
        lambda s, t, f: p2p.predict(f["model"], f["positions"]),
        p2p.ImageFileError,
        "holds 2 images .* series=N",
    ),
    (
        "series that does not exist",
        lambda s, t, f: p2p.read_image(f["positions"], series=5),
        p2p.ImageFileError,
        "series=5 does not exist",
    ),
]


def unknown_chunks(image):
    import dask.array as da

    x = da.from_array(image, chunks=32)
    return x[x[:, 0] >= 0]  # boolean indexing: dask cannot know the rows


def read_only(image):
    out = np.zeros(image.shape, np.float32)
    out.flags.writeable = False
    return out


@pytest.mark.parametrize("case, call, error, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(case, call, error, message, pair, files):
    source, target = pair
    with pytest.raises(error, match=message):
        call(source, target, files)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu(pair, files):
    source, target = pair
    with pytest.raises(p2p.DeviceError, match="no usable CUDA GPU"):
        p2p.train(source, target, **{**FAST, "device": "cuda"})
    with pytest.raises(p2p.DeviceError, match="no usable CUDA GPU"):
        p2p.predict(files["model"], source, device="cuda")
    with pytest.raises(p2p.DeviceError, match="no usable CUDA GPU"):
        p2p.load_model(files["tmp"] / "model.safetensors", device="cuda")


def test_errors_come_before_long_work(pair, files, monkeypatch):
    """Output checks happen before any tile is computed, input checks before any step."""
    source, target = pair
    calls = []
    monkeypatch.setattr(TiledPredictor, "_launch", lambda self, tiles: calls.append(1))
    with pytest.raises(p2p.InputError):
        p2p.predict(files["model"], source, out=files["tmp"] / "no" / "x.tif")
    events = p2p.train_iter(source, _nan(target), **FAST)
    with pytest.raises(p2p.InputError):
        next(events)
    assert calls == []


def test_error_classes_fit_the_standard_hierarchy():
    assert issubclass(p2p.InputError, ValueError) and issubclass(p2p.ModelFileError, OSError)
    assert issubclass(p2p.ImageFileError, OSError) and issubclass(p2p.TrainingError, RuntimeError)
    for cls in (
        p2p.InputError,
        p2p.ModelFileError,
        p2p.ImageFileError,
        p2p.DeviceError,
        p2p.TrainingError,
    ):
        assert issubclass(cls, p2p.Pix2PixError)


def test_tile_size_is_rounded_with_a_warning(pair, files):
    source, _ = pair
    with pytest.warns(UserWarning, match="not a multiple of 2\\*\\*depth = 16; using \\(64, 64\\)"):
        rounded = p2p.predict(files["model"], source, tile_size=50)
    np.testing.assert_array_equal(rounded, p2p.predict(files["model"], source, tile_size=64))


def test_small_training_image_is_padded_and_said(pair):
    source, target = pair
    events = list(p2p.train_iter(source[:20, :24], target[:20, :24], **FAST))
    warnings = [e.message for e in events if not isinstance(e, StepEvent) and hasattr(e, "message")]
    assert any("smaller than patch_size" in m and "reflect-padded" in m for m in warnings)
    assert events[-1].model.history.steps_done == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["predict", "{tmp}/nope.safetensors", "{tmp}/ok.tif", "-o", "{tmp}/out.tif"],
            "model path .* does not exist",
        ),
        (
            ["predict", "{tmp}/model.safetensors", "{tmp}/ok.tif", "-o", "{tmp}/no/such/out.tif"],
            "output folder .* does not exist",
        ),
        (["predict", "{tmp}/legacy.pth", "{tmp}/ok.tif", "-o", "{tmp}/out.tif"], "unpickling"),
        (
            ["predict", "{tmp}/model.safetensors", "{tmp}/truncated.tif", "-o", "{tmp}/out.tif"],
            "truncated",
        ),
        (
            [
                "predict",
                "{tmp}/model.safetensors",
                "{tmp}/ok.tif",
                "-o",
                "{tmp}/out.tif",
                "--overlap",
                "1",
            ],
            "overlap must be at least 0 and below 1",
        ),
        (
            [
                "predict",
                "{tmp}/model.safetensors",
                "{tmp}/ok.tif",
                "-o",
                "{tmp}/out.tif",
                "--axes",
                "ZYX",
            ],
            "has 3 letters but the image has 2",
        ),
        (["predict", "{tmp}/newer", "{tmp}/ok.tif", "-o", "{tmp}/out.tif"], "newer napari-pix2pix"),
        (["train", "{tmp}/ok.tif", "{tmp}/text.tif", "-o", "{tmp}/m.safetensors"], "as a TIFF"),
        (
            [
                "train",
                "{tmp}/ok.tif",
                "{tmp}/ok.tif",
                "-o",
                "{tmp}/m.safetensors",
                "--patch-size",
                "40",
                "--depth",
                "8",  # without a depth, preset auto picks one that divides 40
            ],
            "multiple of 2\\*\\*depth",
        ),
        (
            [
                "train",
                "{tmp}/ok.tif",
                "{tmp}/ok.tif",
                "-o",
                "{tmp}/m.safetensors",
                "--device",
                "cuda",
            ]
            if not torch.cuda.is_available()
            else ["info", "{tmp}/nope"],
            "CUDA|does not exist",
        ),
        (["info", "{tmp}/corrupt"], "not valid JSON"),
        (  # a folder named like a model file: its first checkpoint would have failed
            ["train", "{tmp}/ok.tif", "{tmp}/ok.tif", "-o", "{tmp}/m.safetensors"]
            + ["--checkpoint-dir", "{tmp}/run.safetensors"],
            "names a folder, but ends like a model file",
        ),
        (  # the model would have collided with the run's own checkpoint at the end
            ["train", "{tmp}/ok.tif", "{tmp}/ok.tif", "-o", "{tmp}/checkpoint.safetensors"]
            + ["--checkpoint-dir", "{tmp}"],
            "is the run folder's own checkpoint.safetensors",
        ),
        (  # the same, with the run named by its checkpoint file
            ["train", "{tmp}/ok.tif", "{tmp}/ok.tif", "-o", "{tmp}/best.safetensors"]
            + ["--resume", "{tmp}/checkpoint.safetensors"],
            "is the run folder's own best.safetensors",
        ),
    ],
)
def test_cli_reports_bad_input_without_traceback(argv, message, files, capsys):
    code = main([a.format(tmp=files["tmp"]) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert "napari-pix2pix: error:" in err and "Traceback" not in err
    assert re.search(message, err), err


def test_cli_refuses_non_positive_numbers(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "a.tif", "b.tif", "-o", "m.safetensors", "--steps", "0"])
    assert exit_info.value.code == 2
    assert "must be a positive integer" in capsys.readouterr().err


def test_arrays_of_every_kind_are_taken(files, pair):
    """Big-endian arrays, torch tensors, numpy scalars for numbers: what once read as a
    contradictory error ("dtype >u2; use ... uint16") now just works."""
    source = pair[0]
    expected = p2p.predict(files["model"], source, device="cpu")
    for image in (source.astype(">u2"), torch.from_numpy(source.astype(np.float32))):
        np.testing.assert_allclose(
            p2p.predict(files["model"], image, device="cpu"), expected, rtol=1e-5
        )
    for size in (64.0, np.int64(64), np.float32(64)):
        assert (
            p2p.predict(files["model"], source, tile_size=size, device="cpu").shape == source.shape
        )


def test_one_position_of_a_multi_position_file(files):
    image = p2p.read_image(files["positions"], series=1)
    assert image.array.shape == (64, 64)
    assert p2p.predict(files["model"], image, device="cpu").shape == (64, 64)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_files_follow_the_umask(files, tmp_path, umask):
    old = os.umask(umask)
    try:
        path = files["model"].save(tmp_path / "m.safetensors")
        written = p2p.write_image(tmp_path / "x.ome.tif", np.zeros((8, 8), np.uint16), "YX")
    finally:
        os.umask(old)
    for p in (path, written):
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask
