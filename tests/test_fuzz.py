"""Property-based fuzzing of everything a user hands over: random shapes, dtypes, axes
strings and option values for train/predict, random and mutated bytes and configs for the
model loader. Every outcome must be a success or one of our exceptions.

CI runs a bounded number of examples; for a long run by hand:
    HYPOTHESIS_PROFILE=fuzz python -m pytest tests/test_fuzz.py
"""

import hashlib
import json
import os
import shutil
import signal
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import napari_pix2pix as p2p
from napari_pix2pix.io.checkpoint import load_checkpoint
from napari_pix2pix.io.model_file import model_from_bytes

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DTYPES = [
    "uint8",
    "uint16",
    "int16",
    "int32",
    "float16",
    "float32",
    "float64",
    "bool",
    "complex64",
    "object",
]
AXES = st.one_of(
    st.none(),
    st.just("YX"),
    st.sampled_from(["ZYX", "CYX", "YXC", "TZYX"]),
    st.text(alphabet="TZCYXQyx ", min_size=0, max_size=5),
)
SMALL_INT = st.one_of(st.sampled_from([8, 16, 32]), st.integers(-3, 4))
ANY_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5),
    st.none(),
    st.text(max_size=3),
    st.booleans(),
)


@st.composite
def images(draw, max_ndim=4):
    ndim = draw(st.one_of(st.just(2), st.integers(0, max_ndim)))
    size = st.one_of(st.integers(8, 40), st.integers(0, 40))
    shape = tuple(draw(st.lists(size, min_size=ndim, max_size=ndim)))
    dtype = draw(st.one_of(st.sampled_from(DTYPES[:7]), st.sampled_from(DTYPES)))
    kind = draw(st.one_of(st.just("random"), st.sampled_from(["random", "constant", "nan"])))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = np.asarray(rng.random(shape) * 1000) if kind != "constant" else np.full(shape, 3.0)
    if kind == "nan" and values.size:
        values.flat[0] = np.nan
    if dtype == "object":
        return values.astype(object)
    with np.errstate(invalid="ignore"):
        return values.astype(dtype)


def outcome(call):
    """Run ``call``; a success or a Pix2PixError passes, anything else fails the test.
    The outcome is recorded for --hypothesis-show-statistics."""
    try:
        result = call()
    except p2p.Pix2PixError as exc:
        assert str(exc), "errors must say something"
        event(f"outcome: {type(exc).__name__}")
        return exc
    event("outcome: success")
    return result


@st.composite
def pairs(draw):
    """Mostly aligned pairs (so that training often starts), sometimes anything."""
    source = draw(images())
    if draw(st.booleans()):
        return source, draw(images())
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return source, (rng.random(source.shape) * 100).astype(draw(st.sampled_from(DTYPES[:7])))


@given(
    pair=pairs(),
    axes=AXES,
    target_axes=AXES,
    patch_size=SMALL_INT,
    depth=st.one_of(st.integers(1, 3), st.integers(-1, 5)),
    batch_size=st.one_of(st.integers(1, 3), SMALL_INT),
    steps=st.one_of(st.integers(1, 2), st.integers(-1, 2)),
    gan_mode=st.sampled_from(["vanilla", "none", "hinge", "GAN", ""]),
    lambda_l1=st.one_of(st.just(100.0), ANY_NUMBER),
    val_fraction=st.one_of(st.just(0.1), ANY_NUMBER),
    spatial_dims=st.sampled_from([2, 2, 3, 1]),
    lr=st.one_of(st.just(2e-4), ANY_NUMBER),
    percentiles=st.one_of(st.just((1, 99)), st.tuples(ANY_NUMBER, ANY_NUMBER)),
)
def test_train_accepts_or_explains(
    pair,
    axes,
    target_axes,
    patch_size,
    depth,
    batch_size,
    steps,
    gan_mode,
    lambda_l1,
    val_fraction,
    spatial_dims,
    lr,
    percentiles,
):
    source, target = pair
    result = outcome(
        lambda: p2p.train(
            source,
            target,
            axes=axes,
            target_axes=target_axes,
            patch_size=patch_size,
            depth=depth,
            batch_size=batch_size,
            steps=steps,
            gan_mode=gan_mode,
            lambda_l1=lambda_l1,
            val_fraction=val_fraction,
            spatial_dims=spatial_dims,
            lr=lr,
            percentiles=percentiles,
            base_channels=2,
            disc_channels=2,
            disc_layers=1,
            device="cpu",
        )
    )
    if isinstance(result, p2p.Pix2PixModel):
        assert result.history.steps_done == steps


@pytest.fixture(scope="module")
def small_model(pair):
    source, target = pair
    return p2p.train(
        source,
        target,
        steps=1,
        patch_size=16,
        depth=2,
        base_channels=2,
        disc_layers=1,
        disc_channels=2,
        batch_size=1,
        device="cpu",
        val_fraction=0,
    )


@given(
    image=images(max_ndim=5),
    axes=AXES,
    tile_size=st.one_of(st.none(), SMALL_INT),
    overlap=st.one_of(st.just(0.25), ANY_NUMBER),
    batch_size=st.one_of(st.just(2), ANY_NUMBER),
)
def test_predict_accepts_or_explains(small_model, image, axes, tile_size, overlap, batch_size):
    result = outcome(
        lambda: p2p.predict(
            small_model,
            image,
            axes=axes,
            tile_size=tile_size,
            overlap=overlap,
            batch_size=batch_size,
            device="cpu",
        )
    )
    if isinstance(result, np.ndarray):
        assert result.dtype == np.float32 and np.isfinite(result).all()


@pytest.fixture(scope="module")
def model_bytes(small_model):
    return small_model.to_bytes()


@given(data=st.data())
def test_loader_survives_mutated_and_random_bytes(model_bytes, tmp_path_factory, data):
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "random", "header"]))
    raw = bytearray(model_bytes)
    header_end = 8 + int.from_bytes(raw[:8], "little")
    if kind == "flip":
        for i in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[i] ^= data.draw(st.integers(1, 255))
    elif kind == "header":  # the JSON part, where a parser is most exposed
        for i in data.draw(st.lists(st.integers(0, header_end - 1), min_size=1, max_size=8)):
            raw[i] = data.draw(st.integers(0, 255))
    elif kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "insert":
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    else:
        raw = bytearray(data.draw(st.binary(max_size=4096)))
    path = tmp_path_factory.mktemp("fuzz") / "m.safetensors"
    path.write_bytes(bytes(raw))
    for load in (lambda: p2p.load_model(path), lambda: model_from_bytes(bytes(raw))):
        result = outcome(load)
        if isinstance(result, p2p.Pix2PixModel):  # a harmless flip in the weights
            assert result.generator(torch.zeros(1, 1, 16, 16)).shape == (1, 1, 16, 16)


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(data=st.data())
def test_loader_survives_altered_configs(small_model, tmp_path_factory, data):
    folder = small_model.save(tmp_path_factory.mktemp("fuzz") / "model")
    doc = json.loads((folder / "config.json").read_text())
    target = data.draw(st.sampled_from(["config", "document"]))
    where = doc["config"] if target == "config" else doc
    key = data.draw(st.sampled_from(sorted(where)))
    where[key] = data.draw(st.one_of(JSON, st.integers(-(10**12), 10**12)))
    (folder / "config.json").write_text(json.dumps(doc))
    outcome(lambda: p2p.load_model(folder))


# --- the output-path layer: what may be read, written and replaced --------------------


def _digest(path: Path):
    """What a path is, without opening anything that could block (a FIFO) or following
    a link: (kind, content hash or link target)."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return ("link", os.readlink(path))
    if stat.S_ISDIR(info.st_mode):
        return ("dir", None)
    if stat.S_ISREG(info.st_mode):
        return ("file", hashlib.sha256(path.read_bytes()).hexdigest(), info.st_ino)
    return ("other", stat.S_IFMT(info.st_mode))


def _tree(root: Path) -> dict:
    entries = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder) / name
            entries[str(path.relative_to(root))] = _digest(path)
    return entries


ODD = "ünï cödé ☃ -x\t.tif"


@pytest.fixture(scope="module")
def world_template(small_model, tmp_path_factory):
    """What an earlier session of napari-pix2pix left, made once: a prediction as zarr
    and as OME-TIFF, and a saved model (bytes, copied into each example's world)."""
    tmp = tmp_path_factory.mktemp("template")
    source = (np.random.default_rng(3).random((32, 32)) * 1000).astype(np.uint16)
    tifffile.imwrite(tmp / "input.tif", source)
    p2p.predict(small_model, tmp / "input.tif", out=tmp / "ours.zarr")
    p2p.predict(small_model, tmp / "input.tif", out=tmp / "ours.ome.tif")
    small_model.save(tmp / "ours.safetensors")
    return tmp


def make_world(template: Path, root: Path) -> set:
    """A user's folder of every kind of thing an output may meet; returns the names of
    what napari-pix2pix wrote there (only those may ever be replaced)."""
    import zarr

    shutil.copy2(template / "input.tif", root / "input.tif")
    tifffile.imwrite(root / "foreign.tif", np.arange(64, dtype=np.uint8).reshape(8, 8))
    (root / "folder").mkdir()
    (root / "folder" / "inside.txt").write_text("the user's")
    shutil.copytree(template / "ours.zarr", root / "ours.zarr")
    shutil.copy2(template / "ours.ome.tif", root / "ours.ome.tif")
    shutil.copy2(template / "ours.safetensors", root / "ours.safetensors")
    zarr.open_array(str(root / "foreign.zarr"), mode="w", shape=(4, 4), dtype="f4")[:] = 1.0
    (root / "link.tif").symlink_to(root / "input.tif")
    (root / "dangling.tif").symlink_to(root / "nowhere.tif")
    os.link(root / "input.tif", root / "hard.tif")
    os.mkfifo(root / "pipe.tif")
    (root / "notes.txt").write_text("not a folder")
    (root / ODD).write_bytes((root / "foreign.tif").read_bytes())
    (root / ("y" * 240 + ".tif")).write_bytes((root / "foreign.tif").read_bytes())
    return {"ours.zarr", "ours.ome.tif", "ours.safetensors"}


EXISTING = [
    "input.tif",
    "foreign.tif",
    "folder",
    "folder/inside.txt",
    "ours.zarr",
    "ours.ome.tif",
    "ours.safetensors",
    "foreign.zarr",
    "link.tif",
    "dangling.tif",
    "hard.tif",
    "pipe.tif",
    "notes.txt",
    ODD,
    "y" * 240 + ".tif",
]
STEMS = [
    "out",
    "missing/out",
    "notes.txt/out",
    "folder/out",
    "folder/../out",
    "ours.zarr/out",
    "foreign.zarr/out",
    "input.tif/out",
    "pipe.tif/out",
    "link.tif/out",
    "x" * 230,
    "x" * 300,
    "☃ snow",
    "new\nline",
    " ",
    "-o",
    "..",
    ".",
    "",
    "a:b*?<>|",
    "back\\slash",
]
SUFFIXES = ["", ".tif", ".ome.tif", ".TIFF", ".zarr", ".safetensors", ".partial", "/"]
OUT_NAMES = st.one_of(
    st.sampled_from(EXISTING),
    st.builds(lambda a, b: a + b, st.sampled_from(STEMS), st.sampled_from(SUFFIXES)),
    st.builds(
        lambda a, b: a + b,
        st.text(alphabet="ab./ ~☃\\-_\n", max_size=12),
        st.sampled_from(SUFFIXES),
    ),
)


class Hang(Exception):
    """An example ran past its time: something blocked (an open FIFO?) or ran away."""


@contextmanager
def time_limit(seconds: int):
    def alarm(signum, frame):
        raise Hang(f"no outcome after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@given(
    api=st.sampled_from(["predict", "predict", "write_image", "save"]),
    out=OUT_NAMES,
    relative=st.booleans(),
    as_path=st.booleans(),
    if_exists=st.one_of(
        st.sampled_from(["error", "overwrite", "resume"]), st.sampled_from(["", "replace", None])
    ),
    overwrite=st.booleans(),
    source=st.sampled_from(["input.tif", "link.tif", "hard.tif"]),
    model_path=st.booleans(),
)
def test_outputs_never_replace_what_is_not_ours(
    small_model,
    world_template,
    api,
    out,
    relative,
    as_path,
    if_exists,
    overwrite,
    source,
    model_path,
):
    root = Path(tempfile.mkdtemp(prefix="world-"))
    cwd = os.getcwd()
    try:
        ours = make_world(world_template, root)
        before = _tree(root)
        if relative:
            os.chdir(root)
            target = out
        else:
            target = str(root) + "/" + out
        target = Path(target) if as_path else target
        model = root / "ours.safetensors" if model_path else small_model
        asked = {
            "predict": if_exists in ("overwrite", "resume"),
            "write_image": overwrite,
            "save": overwrite,
        }[api]
        event(f"api: {api}")
        with time_limit(60):
            if api == "predict":
                call = lambda: p2p.predict(model, root / source, out=target, if_exists=if_exists)  # noqa: E731
            elif api == "write_image":
                array = np.zeros((8, 8), np.float32)
                call = lambda: p2p.write_image(target, array, "YX", overwrite=overwrite)  # noqa: E731
            else:
                call = lambda: small_model.save(target, overwrite=overwrite)  # noqa: E731
            result = outcome(call)
        after = _tree(root)
        changed = {k for k in before if after.get(k) != before[k]}
        for name in changed:
            top = name.split("/")[0]
            assert top in ours, f"{name!r} changed but napari-pix2pix did not write it"
            assert asked, f"{name!r} was replaced without being asked to"
        if not isinstance(result, p2p.Pix2PixError):
            assert Path(result).exists() if api != "predict" else True
        else:  # a refused output leaves no temporary file behind
            assert not [k for k in set(after) - set(before) if k.endswith(".tmp")]
    finally:
        os.chdir(cwd)
        shutil.rmtree(root, ignore_errors=True)


# --- the checkpoint layer: damaged checkpoints are refused, never half-loaded ----------

CKPT_TINY = dict(
    patch_size=16,
    depth=2,
    base_channels=2,
    disc_layers=1,
    disc_channels=2,
    batch_size=1,
    device="cpu",
    val_fraction=0,
)


@pytest.fixture(scope="module")
def checkpoint_bytes(pair, tmp_path_factory):
    """A real checkpoint of a tiny 2-step run."""
    source, target = pair
    run = tmp_path_factory.mktemp("run")
    p2p.train(source, target, steps=2, seed=0, checkpoint_dir=run, **CKPT_TINY)
    return (run / "checkpoint.safetensors").read_bytes()


def _paths(value, prefix=()):
    """Every place in a JSON document, as key paths."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:8]):
            yield from _paths(v, prefix + (i,))


def _set(doc, path, value=None, delete=False):
    where = doc
    for key in path[:-1]:
        where = where[key]
    if delete:
        del where[path[-1]]
    else:
        where[path[-1]] = value


INTERESTING = st.one_of(
    JSON,
    st.sampled_from([0, 1, -1, 2, 3, 16, 2**32, 2**64, -(2**63), 1e300, 0.5, float("nan")]),
    st.sampled_from(["none", "lsgan", "hinge", "instance", "ZYX", "CYX", "", "MT19937", "PCG64"]),
    st.lists(st.integers(-(2**40), 2**40), min_size=0, max_size=3),
)
CONFIG_VALUES = {
    "depth": [0, 1, 3, 8, 100, "2", 2.0, True],
    "base_channels": [0, 1, 4, 3, 2**20, 2.5],
    "gan_mode": ["none", "lsgan", "hinge", "", None],
    "patch_size": [[16], [16, 16, 16], [32, 32], [0, 0], 16, "16", [17, 16]],
    "in_channels": [0, 2, 3],
    "out_channels": [2, 0],
    "norm": ["instance", "group", None],
    "spatial_dims": [3, 1, 2.0],
    "disc_layers": [0, 2, 3, 5],
    "disc_channels": [4, 0],
    "steps": [1, 0, 3, 2**40, -5],
    "batch_size": [0, 2, 2**30],
    "betas": [[2, 0], [0.5], [], [0.5, 0.999, 1]],
    "lr": [-1, 0, 1e300, "x"],
    "source_low": [[], [1.0, 2.0], ["a"], [float("nan")]],
    "target_high": [[0.0], [1e38]],
    "seed": [-1, 2**64, None],
    "amp": ["fp16", "bf16", "gpu"],
    "source_axes": ["ZYX", "CYX", "", "YX"],
    "dropout": [2.0, -1.0],
}


@st.composite
def damaged(draw, original: bytes) -> bytes:
    """A checkpoint changed the ways a disk, a copy or a hand-edit change one: raw bytes
    (header or tensor data flipped, truncated), or its document or tensors edited and
    written back with safetensors' own writer (parseable, so the deeper checks run)."""
    from safetensors.torch import load, save

    kind = draw(
        st.sampled_from(
            ["header", "data", "truncate", "document", "config", "sampler", "optimizer", "tensor"]
        )
    )
    event(f"mutation: {kind}")
    raw = bytearray(original)
    header_end = 8 + int.from_bytes(raw[:8], "little")
    if kind in ("header", "data"):
        low, high = (8, header_end - 1) if kind == "header" else (header_end, len(raw) - 1)
        for i in draw(st.lists(st.integers(low, high), min_size=1, max_size=8)):
            raw[i] ^= draw(st.integers(1, 255))
        return bytes(raw)
    if kind == "truncate":
        return bytes(raw[: draw(st.integers(0, len(raw) - 1))])
    tensors = load(original)
    header = json.loads(raw[8:header_end])
    doc = json.loads(header["__metadata__"]["napari_pix2pix"])
    if kind == "document":
        path = draw(st.sampled_from([p for p in _paths(doc) if p]))
        if draw(st.booleans()):
            _set(doc, path, delete=True)
        else:
            _set(doc, path, draw(INTERESTING))
    elif kind == "config":
        key = draw(st.sampled_from(sorted(doc["config"])))
        values = CONFIG_VALUES.get(key, [])
        value = draw(st.sampled_from(values) if values else INTERESTING)
        if draw(st.integers(0, 4)) == 0:
            value = draw(INTERESTING)
        doc["config"][key] = value
    elif kind == "sampler":
        sampler = doc["sampler"]
        part = draw(st.sampled_from(["seed", "batch", "whole"]))
        if part != "whole":
            sampler[part] = draw(st.one_of(INTERESTING, st.sampled_from([-1, 2**64, 1.5, "x"])))
        else:
            doc["sampler"] = draw(INTERESTING)
    elif kind == "optimizer":
        opt = doc[draw(st.sampled_from(["opt_g", "opt_d"]))]
        group = opt["param_groups"][0]
        part = draw(st.sampled_from(["field", "params", "groups", "state"]))
        if part == "field":
            group[draw(st.sampled_from(sorted(group)))] = draw(
                st.one_of(INTERESTING, st.sampled_from([[2, 0], [0.5], -1.0, True, "adam"]))
            )
        elif part == "params":
            group["params"] = draw(
                st.sampled_from(
                    [
                        list(reversed(group["params"])),
                        group["params"][:-1],
                        group["params"] + [len(group["params"])],
                        [str(p) for p in group["params"]],
                        [],
                    ]
                )
            )
        elif part == "groups":
            opt["param_groups"] = draw(
                st.sampled_from([[], [group, group], [dict(group, params=[])], "x", None])
            )
        else:
            opt["state"][draw(st.sampled_from(["0", "99", "-1", "a", "1.5"]))] = draw(INTERESTING)
    else:
        name = draw(st.sampled_from(sorted(tensors)))
        value = tensors[name]
        change = draw(
            st.sampled_from(
                ["drop", "nan", "negative", "huge", "dtype", "shape", "extra", "random"]
            )
        )
        if change == "drop":
            del tensors[name]
        elif change in ("nan", "negative", "huge") and value.is_floating_point():
            fill = {"nan": float("nan"), "negative": -1.0, "huge": 3e38}[change]
            tensors[name] = torch.full_like(value, fill)
        elif change == "dtype":
            tensors[name] = value.to(
                draw(st.sampled_from([torch.float16, torch.float64, torch.int64, torch.uint8]))
            )
        elif change == "shape":
            tensors[name] = value.reshape(-1) if value.dim() != 1 else value[:-1].clone()
        elif change == "extra":
            tensors[name.rsplit(".", 1)[0] + ".extra"] = torch.zeros(2)
        else:
            tensors[name] = torch.from_numpy(
                np.frombuffer(draw(st.binary(min_size=4, max_size=64)), np.uint8).copy()
            )
    return save(tensors, metadata={"napari_pix2pix": json.dumps(doc)})


class Enough(Exception):
    """A resumed run that goes on (a mutated config asked for many steps) is stopped
    after a few steps: it started, which is all this test asks."""


@given(data=st.data())
def test_damaged_checkpoints_are_refused_or_resumed(pair, checkpoint_bytes, data):
    source, target = pair
    raw = data.draw(damaged(checkpoint_bytes))
    folder = Path(tempfile.mkdtemp(prefix="ckpt-"))
    try:
        (folder / "checkpoint.safetensors").write_bytes(raw)
        outcome(lambda: load_checkpoint(folder))
        seen = []

        def progress(e):
            seen.append(e)
            if len(seen) > 5:
                raise Enough

        def resume():
            try:
                return p2p.train(
                    source, target, resume=folder, steps=3, progress=progress, **CKPT_TINY
                )
            except Enough:
                return seen[-1].model

        with time_limit(120):
            result = outcome(resume)
        if isinstance(result, p2p.Pix2PixModel):  # a resumed model is never silently broken
            for name, value in result.generator.state_dict().items():
                if value.is_floating_point():
                    assert torch.isfinite(value).all(), f"{name} is not finite after resume"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
