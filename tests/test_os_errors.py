"""Real operating-system failures, not simulated ones: a full disk (a small tmpfs,
mounted when the tests run as root), permission denied (root's override capabilities
dropped with setpriv), names too long, paths through a file, outputs onto a folder.
Each must end in one of our exceptions (a Pix2PixError) whose message names the path,
and no file the user had may change."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_options import FAST

import napari_pix2pix as p2p
from napari_pix2pix.cli import main
from napari_pix2pix.engine.run_history import RunHistory
from napari_pix2pix.errors import OutputError
from napari_pix2pix.io.model_file import Pix2PixModel, save_or_rescue

CLI_FAST = (
    "--steps 2 --patch-size 32 --depth 4 --base-channels 8 --batch-size 2 --disc-layers 2 "
    "--disc-channels 8 --device cpu --val-fraction 0"
).split()
ENV = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}


def snapshot(*roots: Path) -> dict:
    """Every file under ``roots`` with its size, time and content hash (None where this
    process cannot read it): compared before and after, any change shows."""
    files = {}
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                info = path.lstat()
                try:
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                except OSError:
                    digest = None
                files[str(path)] = (info.st_size, info.st_mtime_ns, info.st_mode, digest)
    return files


@pytest.fixture(scope="module")
def model(pair):
    source, target = pair
    return p2p.train(source, target, **FAST)


@pytest.fixture(scope="module")
def noise_stack(tmp_path_factory):
    """A 6 x 320 x 320 stack of noise: its prediction (2.4 MB of float32) barely
    compresses, so it cannot fit on a 1 MB disk, as TIFF or as zarr."""
    path = tmp_path_factory.mktemp("noise") / "noise.tif"
    stack = (np.random.default_rng(0).random((6, 320, 320)) * 1000).astype(np.uint16)
    p2p.write_image(path, stack, "ZYX")
    return path


# --- a full disk -------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size)`` mounts a tmpfs of that size in tmp_path (root only; skipped
    where mounting is not allowed) and unmounts it after the test."""
    mounted = []

    def mount(size: str, name: str = "small") -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs (a full disk) needs root")
        where = tmp_path / name
        where.mkdir()
        try:
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot mount a tmpfs here ({exc})")
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (no CAP_SYS_ADMIN?): {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def test_streamed_tiff_on_a_full_disk(model, noise_stack, small_disk):
    disk = small_disk("1m")
    before = snapshot(noise_stack.parent)
    out = disk / "prediction.ome.tif"
    with pytest.raises(OutputError) as caught:
        p2p.predict(model, noise_stack, out=out, tile_size=128)
    message = str(caught.value)
    assert str(out) in message and ".partial" in message, message
    assert not out.exists()  # nothing that looks complete
    partials = [p.name for p in disk.iterdir()]
    assert len(partials) == 1 and partials[0].endswith(".partial")  # named as what it is
    assert partials[0] in message
    assert snapshot(noise_stack.parent) == before  # the input untouched


def test_streamed_tiff_on_a_full_disk_says_no_space(model, noise_stack, small_disk):
    disk = small_disk("1m")
    with pytest.raises(OutputError, match="(?i)no space left"):
        p2p.predict(model, noise_stack, out=disk / "prediction.ome.tif", tile_size=128)


def test_zarr_on_a_full_disk_keeps_what_was_finished_and_resumes(model, noise_stack, small_disk):
    import zarr

    disk = small_disk("1m")
    before = snapshot(noise_stack.parent)
    out = disk / "prediction.zarr"
    with pytest.raises(OutputError, match="(?i)no space left") as caught:
        p2p.predict(model, noise_stack, out=out, tile_size=128)
    assert str(out) in str(caught.value) and "resume" in str(caught.value)
    store = zarr.open_array(str(out), mode="r")
    record = store.attrs["napari_pix2pix"]
    done = record["done_samples"]
    assert not record["complete"] and 1 <= done < 6
    assert np.isfinite(store[:done]).all()  # the finished slices are kept, whole
    assert snapshot(noise_stack.parent) == before

    # more space (the same tmpfs, grown), then resume: the same result as in one go
    grown = subprocess.run(
        ["mount", "-o", "remount,size=16m", str(disk)], capture_output=True, text=True
    )
    assert grown.returncode == 0, grown.stderr
    p2p.predict(model, noise_stack, out=out, tile_size=128, if_exists="resume")
    resumed = zarr.open_array(str(out), mode="r")
    assert resumed.attrs["napari_pix2pix"]["complete"]
    np.testing.assert_allclose(
        resumed[:], p2p.predict(model, noise_stack, tile_size=128), rtol=1e-5, atol=1e-4
    )


def big_model(model: Pix2PixModel) -> Pix2PixModel:
    """An untrained model of the same kind with 4x the channels: a 6 MB file."""
    return Pix2PixModel(model.config.replace(base_channels=32), history=RunHistory())


def test_model_save_on_a_full_disk_keeps_the_previous_file(model, small_disk):
    disk = small_disk("1m")
    path = disk / "model.safetensors"
    model.save(path)
    model.save(path, overwrite=True)  # the previous file, replaced on purpose once
    before = snapshot(disk)
    with pytest.raises(OutputError, match="(?i)no space left") as caught:
        big_model(model).save(path, overwrite=True)
    assert str(path) in str(caught.value) and "nothing was replaced" in str(caught.value)
    assert snapshot(disk) == before  # intact, and no temporary file left behind
    assert p2p.load_model(path).config == model.config


def test_save_or_rescue_saves_a_model_that_does_not_fit(model, small_disk, tmp_path, monkeypatch):
    disk = small_disk("1m")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    big = big_model(model)
    path, note = save_or_rescue(big, disk / "model.safetensors")
    assert path.parent == tmp_path / "home" / "napari-pix2pix" / "rescued"
    assert path.name.startswith("model-") and path.suffix == ".safetensors"
    assert str(path) in note and str(disk / "model.safetensors") in note
    assert "no space left" in note.lower()
    assert list(disk.iterdir()) == []
    rescued = p2p.load_model(path)
    for key, value in big.generator.state_dict().items():
        assert rescued.generator.state_dict()[key].equal(value)


def test_a_run_folder_that_fills_up_does_not_end_the_run(pair, small_disk, tmp_path):
    """Checkpoints, the best model and the log go to a full disk: the run warns, goes
    on, and the model is saved where asked."""
    source, target = pair
    disk = small_disk("200k")  # smaller than one checkpoint
    options = {**FAST, "steps": 6, "val_fraction": 0.25, "val_every": 3, "checkpoint_every": 3}
    with pytest.warns(UserWarning, match="could not be written .*no space left.* training goes on"):
        model = p2p.train(source, target, checkpoint_dir=disk / "run", **options)
    assert model.history.steps_done == 6
    path = model.save(tmp_path / "m.safetensors")
    assert p2p.load_model(path).history.steps_done == 6


def test_cli_train_onto_a_full_disk_rescues_the_model(
    pair, small_disk, tmp_path, monkeypatch, capsys
):
    source, target = pair
    data = tmp_path / "data"
    data.mkdir()
    p2p.write_image(data / "source.tif", source, "YX")
    p2p.write_image(data / "target.tif", target, "YX")
    disk = small_disk("256k")  # the tiny model takes about 400 kB
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    before = snapshot(data)
    out = disk / "model.safetensors"
    code = main(
        ["train", str(data / "source.tif"), str(data / "target.tif"), "-o", str(out)] + CLI_FAST
    )
    captured = capsys.readouterr()
    assert code != 0
    assert "Traceback" not in captured.err
    assert "no space left" in captured.err.lower() and str(out) in captured.err
    rescued = list((tmp_path / "home" / "napari-pix2pix" / "rescued").glob("*.safetensors"))
    assert len(rescued) == 1
    assert str(rescued[0]) in captured.err and str(rescued[0]) in captured.out
    assert p2p.load_model(rescued[0]).history.steps_done == 2
    assert list(disk.iterdir()) == []
    assert snapshot(data) == before


# --- permission denied ---------------------------------------------------------------

DROP = "-dac_override,-dac_read_search"


@pytest.fixture(scope="module")
def unprivileged(tmp_path_factory):
    """The command prefix that runs a process without root's permission override
    (setpriv drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH); checked to take effect."""
    if os.geteuid() != 0:
        prefix = []  # permission bits apply already
    elif shutil.which("setpriv") is None:
        pytest.skip("running as root and setpriv (util-linux) is missing")
    else:
        prefix = ["setpriv", f"--bounding-set={DROP}", f"--inh-caps={DROP}", "--"]
    probe = tmp_path_factory.mktemp("probe") / "locked"
    probe.write_text("secret")
    probe.chmod(0)
    check = f"""
try:
    open({str(probe)!r}).read()
except PermissionError:
    raise SystemExit(0)
raise SystemExit(1)
"""
    try:
        done = subprocess.run(
            prefix + [sys.executable, "-c", check], capture_output=True, text=True, timeout=60
        )
    except OSError as exc:
        pytest.skip(f"cannot run without the override capabilities ({exc})")
    if done.returncode != 0:
        pytest.skip(
            "the capability drop did not take effect (a mode-000 file is still readable, "
            f"or setpriv failed: {done.stderr.strip()!r})"
        )
    return prefix


@pytest.fixture(scope="module")
def locked(tmp_path_factory, pair, model):
    """Files and folders a user may not read or write: a model and an image of mode
    000, a checkpoint of mode 000, an image inside a folder of mode 000, read-only
    folders; beside readable ones."""
    tmp = tmp_path_factory.mktemp("locked")
    source, target = pair
    f = {"tmp": tmp}
    f["model"] = model.save(tmp / "model.safetensors")
    f["model_000"] = model.save(tmp / "model_000.safetensors")
    f["image"] = p2p.write_image(tmp / "image.tif", source, "YX")
    f["target"] = p2p.write_image(tmp / "target.tif", target, "YX")
    f["image_000"] = p2p.write_image(tmp / "image_000.tif", source, "YX")
    (tmp / "closed").mkdir()
    f["image_in_closed"] = p2p.write_image(tmp / "closed" / "image.tif", source, "YX")
    p2p.train(source, target, checkpoint_dir=tmp / "run", **FAST)
    f["run"] = tmp / "run"
    f["read_only"] = tmp / "read-only"
    f["read_only"].mkdir()
    (f["read_only"] / "kept.txt").write_text("the user's")
    for key in ("model_000", "image_000"):
        f[key].chmod(0)
    (tmp / "run" / "checkpoint.safetensors").chmod(0)
    (tmp / "closed").chmod(0)
    f["read_only"].chmod(0o555)
    return f


PERMISSION_SCRIPT = """
import json, sys
import napari_pix2pix as p2p
from pathlib import Path
f = {k: Path(v) for k, v in json.loads(sys.argv[1]).items()}
fast = json.loads(sys.argv[2])
steps = []

def first_event(**options):
    events = p2p.train_iter(f["image"], f["target"], **{**fast, **options})
    steps.append(next(events).step)

cases = {
    "model of mode 000": lambda: p2p.load_model(f["model_000"]),
    "model of mode 000 (predict)": lambda: p2p.predict(f["model_000"], f["image"]),
    "image of mode 000 (predict)": lambda: p2p.predict(f["model"], f["image_000"]),
    "image of mode 000 (train)": lambda: p2p.train(f["image_000"], f["target"], **fast),
    "image of mode 000 (read_image)": lambda: p2p.read_image(f["image_000"]),
    "image in a folder of mode 000": lambda: p2p.predict(f["model"], f["image_in_closed"]),
    "checkpoint of mode 000 (resume)": lambda: p2p.train(
        f["image"], f["target"], resume=f["run"], **{**fast, "steps": 4}),
    "TIFF output in a read-only folder": lambda: p2p.predict(
        f["model"], f["image"], out=f["read_only"] / "out.ome.tif"),
    "zarr output in a read-only folder": lambda: p2p.predict(
        f["model"], f["image"], out=f["read_only"] / "out.zarr"),
    "write_image into a read-only folder": lambda: p2p.write_image(
        f["read_only"] / "out.tif", p2p.read_image(f["image"]).array, "YX"),
    "model.save into a read-only folder": lambda: p2p.load_model(f["model"]).save(
        f["read_only"] / "m.safetensors"),
    "checkpoint_dir read-only": lambda: first_event(checkpoint_dir=f["read_only"]),
    "checkpoint_dir inside a read-only folder": lambda: first_event(
        checkpoint_dir=f["read_only"] / "run"),
}
results = {}
for name, call in cases.items():
    try:
        call()
        results[name] = {"type": None, "ours": False, "message": ""}
    except BaseException as exc:
        results[name] = {
            "type": type(exc).__name__,
            "ours": isinstance(exc, p2p.Pix2PixError),
            "message": str(exc),
        }
results["steps run"] = steps
print("RESULTS" + json.dumps(results))
"""


@pytest.fixture(scope="module")
def permission_results(unprivileged, locked):
    """The cases above, run once in a process without the override capabilities."""
    before = snapshot(locked["tmp"])
    paths = {k: str(v) for k, v in locked.items()}
    fast = dict(FAST)
    done = subprocess.run(
        unprivileged
        + [sys.executable, "-c", PERMISSION_SCRIPT, json.dumps(paths), json.dumps(fast)],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULTS")), None)
    assert line is not None, done.stdout + done.stderr
    return json.loads(line[len("RESULTS") :]), before


PERMISSION_CASES = [
    # case, error class, message pattern, the path it must name
    ("model of mode 000", "ModelFileError", "permission denied", "model_000"),
    ("model of mode 000 (predict)", "ModelFileError", "permission denied", "model_000"),
    ("image of mode 000 (predict)", "ImageFileError", "permission denied", "image_000"),
    ("image of mode 000 (train)", "ImageFileError", "permission denied", "image_000"),
    ("image of mode 000 (read_image)", "ImageFileError", "permission denied", "image_000"),
    ("image in a folder of mode 000", "ImageFileError", "permission denied", "image_in_closed"),
    ("checkpoint of mode 000 (resume)", "ModelFileError", "permission denied", "run"),
    ("TIFF output in a read-only folder", "InputError", "not writable", "read_only"),
    ("zarr output in a read-only folder", "InputError", "not writable", "read_only"),
    ("write_image into a read-only folder", "InputError", "not writable", "read_only"),
    ("model.save into a read-only folder", "InputError", "not writable", "read_only"),
    ("checkpoint_dir read-only", "InputError", "not writable", "read_only"),
    ("checkpoint_dir inside a read-only folder", "InputError", "permission denied", "read_only"),
]


@pytest.mark.parametrize(
    "case, error, pattern, path", PERMISSION_CASES, ids=[c[0] for c in PERMISSION_CASES]
)
def test_permission_denied_is_explained(case, error, pattern, path, permission_results, locked):
    results, _ = permission_results
    result = results[case]
    assert result["type"] == error and result["ours"], result
    assert pattern in result["message"].lower(), result["message"]
    assert str(locked[path]) in result["message"], result["message"]


def test_permission_denied_changes_nothing(permission_results, locked):
    results, before = permission_results
    assert results["steps run"] == []  # the checkpoint folder is checked before step 1
    assert snapshot(locked["tmp"]) == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "{model_000}", "{image}", "-o", "{tmp}/out.ome.tif"], "permission denied"),
        (["predict", "{model}", "{image_000}", "-o", "{tmp}/out.ome.tif"], "permission denied"),
        (["train", "{image}", "{target}", "-o", "{read_only}/m.safetensors"], "not writable"),
    ],
    ids=["model of mode 000", "image of mode 000", "model into a read-only folder"],
)
def test_cli_permission_denied(argv, message, unprivileged, locked):
    before = snapshot(locked["tmp"])
    args = [a.format(**locked) for a in argv] + (CLI_FAST if argv[0] == "train" else [])
    done = subprocess.run(
        unprivileged + [sys.executable, "-m", "napari_pix2pix.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    assert done.returncode == 2, done.stderr
    assert "napari-pix2pix: error:" in done.stderr and "Traceback" not in done.stderr
    assert message in done.stderr.lower(), done.stderr
    assert not (locked["tmp"] / "out.ome.tif").exists()
    assert snapshot(locked["tmp"]) == before


# --- names, folders and files in the wrong places -----------------------------------


@pytest.fixture
def place(tmp_path, pair):
    """A user's folder: an image, a file that is not a folder, a folder named like an
    output."""
    source, _ = pair
    p2p.write_image(tmp_path / "image.tif", source, "YX")
    (tmp_path / "notes.txt").write_text("the user's notes")
    (tmp_path / "other.tif").write_bytes((tmp_path / "image.tif").read_bytes())
    for name in ("folder.tif", "folder.safetensors", "folder.zarr"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "inside.txt").write_text("kept")
    return tmp_path


LONG = "x" * 300


def _predict(out, **kw):
    return lambda m, t: p2p.predict(m, t / "image.tif", out=t / out, **kw)


def _save(out, **kw):
    return lambda m, t: m.save(t / out, **kw)


def _write(out, **kw):
    return lambda m, t: p2p.write_image(t / out, np.zeros((8, 8), np.float32), "YX", **kw)


def _train(pair, **kw):
    return lambda m, t: next(p2p.train_iter(*pair, **{**FAST, **kw}))


PLACE_CASES = [
    # case, call(model, folder), error, message pattern, what the message names
    ("name too long, TIFF", _predict(LONG + ".tif"), p2p.InputError, "too long", LONG[:40]),
    ("name too long, zarr", _predict(LONG + ".zarr"), p2p.InputError, "too long", LONG[:40]),
    ("name too long, write_image", _write(LONG + ".tif"), p2p.InputError, "too long", LONG[:40]),
    ("name too long, model", _save(LONG + ".safetensors"), p2p.InputError, "too long", LONG[:40]),
    (
        "name too long, input",
        lambda m, t: p2p.predict(m, t / (LONG + ".tif")),
        p2p.ImageFileError,
        "too long",
        LONG,
    ),
    (
        "name too long, model to load",
        lambda m, t: p2p.load_model(t / (LONG + ".safetensors")),
        p2p.ModelFileError,
        "too long",
        LONG,
    ),
    (
        "TIFF output through a file",
        _predict("notes.txt/out.tif"),
        p2p.InputError,
        "",
        "notes.txt",
    ),
    (
        "zarr output through a file",
        _predict("other.tif/out.zarr"),
        p2p.InputError,
        "",
        "other.tif",
    ),
    (
        "model.save through a file",
        _save("notes.txt/m.safetensors"),
        p2p.InputError,
        "",
        "notes.txt",
    ),
    ("write_image through a file", _write("notes.txt/x.tif"), p2p.InputError, "", "notes.txt"),
    (
        "input through a file",
        lambda m, t: p2p.predict(m, t / "notes.txt" / "x.tif"),
        p2p.ImageFileError,
        "is a file, not a folder",
        "notes.txt",
    ),
    (
        "model through a file",
        lambda m, t: p2p.load_model(t / "notes.txt" / "m.safetensors"),
        p2p.ModelFileError,
        "is a file, not a folder",
        "notes.txt",
    ),
    (
        "TIFF output onto a folder",
        _predict("folder.tif"),
        p2p.InputError,
        "is a directory",
        "folder.tif",
    ),
    (
        "TIFF output onto a folder, overwrite",
        _predict("folder.tif", if_exists="overwrite"),
        p2p.InputError,
        "is a directory",
        "folder.tif",
    ),
    (
        "zarr output onto a foreign folder, overwrite",
        _predict("folder.zarr", if_exists="overwrite"),
        p2p.InputError,
        "not written by napari-pix2pix",
        "folder.zarr",
    ),
    (
        "write_image onto a folder, overwrite",
        _write("folder.tif", overwrite=True),
        p2p.InputError,
        "is a directory",
        "folder.tif",
    ),
    (
        "model.save onto a folder, overwrite",
        _save("folder.safetensors", overwrite=True),
        p2p.InputError,
        "is a directory",
        "folder.safetensors",
    ),
    (
        "model.save into a missing folder",
        _save("missing/m.safetensors"),
        p2p.InputError,
        "does not exist",
        "missing",
    ),
    (
        "model folder into a missing folder",
        _save("missing/model"),
        p2p.InputError,
        "does not exist",
        "missing",
    ),
    (
        "model folder onto a plain file",
        _save("notes.txt", overwrite=True),
        p2p.InputError,
        "is a file",
        "notes.txt",
    ),
]


@pytest.mark.parametrize(
    "case, call, error, pattern, named", PLACE_CASES, ids=[c[0] for c in PLACE_CASES]
)
def test_wrong_places_are_explained(case, call, error, pattern, named, model, place):
    before = snapshot(place)
    with pytest.raises(error) as caught:
        call(model, place)
    assert pattern in str(caught.value), str(caught.value)
    assert named in str(caught.value), str(caught.value)
    assert snapshot(place) == before
    assert not (place / "missing").exists()


LONG_FOLDER_CASES = [
    ("TIFF output in a folder with a too long name", _predict(LONG + "/out.tif")),
    ("write_image in a folder with a too long name", _write(LONG + "/out.tif")),
    ("model folder with a too long name", _save(LONG)),
    ("model file in a folder with a too long name", _save(LONG + "/m.safetensors")),
]


@pytest.mark.parametrize("case, call", LONG_FOLDER_CASES, ids=[c[0] for c in LONG_FOLDER_CASES])
def test_too_long_folder_names_are_explained(case, call, model, place):
    with pytest.raises(p2p.Pix2PixError, match="too long"):
        call(model, place)


def test_too_long_checkpoint_dir_is_explained(model, place, pair):
    with pytest.raises(p2p.Pix2PixError, match="too long"):
        _train(pair, checkpoint_dir=place / LONG)(model, place)


def test_checkpoint_dir_through_a_file_is_explained(model, place, pair):
    before = snapshot(place)
    with pytest.raises(p2p.InputError, match="is a file, not a folder") as caught:
        _train(pair, checkpoint_dir=place / "notes.txt" / "run")(model, place)
    assert "notes.txt" in str(caught.value)
    with pytest.raises(p2p.InputError, match="is a file, not a folder"):
        _train(pair, checkpoint_dir=place / "notes.txt")(model, place)
    assert snapshot(place) == before


def test_cli_long_name_and_path_through_a_file(model, place, capsys):
    model_path = model.save(place / "model.safetensors")
    before = snapshot(place)
    for out in (place / (LONG + ".ome.tif"), place / "notes.txt" / "out.ome.tif"):
        code = main(["predict", str(model_path), str(place / "image.tif"), "-o", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and "napari-pix2pix: error:" in err and "Traceback" not in err
    assert snapshot(place) == before
