"""Resume continues only the very same work: a zarr output records the model, the input
and the tiling and refuses a rerun that differs; a damaged checkpoint is refused with a
message instead of crashing a recovery."""

import json
import struct

import numpy as np
import pytest
import zarr
from tiny_options import FAST

import napari_pix2pix as p2p
from napari_pix2pix.io.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def stack(held_out_pair):
    source = held_out_pair[0][:64, :64]
    return np.stack([np.roll(source, 5 * i, axis=1) for i in range(4)])


def interrupted(trained, image, store, **options):
    """A prediction into ``store`` stopped after its first slice."""

    def stop(done, total):
        if done >= total // 4 + 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        p2p.predict(
            trained,
            image,
            axes="ZYX",
            out=store,
            progress=stop,
            device="cpu",
            batch_size=1,
            **options,
        )
    assert zarr.open_array(str(store), mode="r").attrs["napari_pix2pix"]["done_samples"] >= 1


def test_the_same_work_resumes(trained, stack, tmp_path):
    store = tmp_path / "p.zarr"
    interrupted(trained, stack, store, tile_size=32)
    p2p.predict(
        trained, stack, axes="ZYX", out=store, if_exists="resume", device="cpu", tile_size=32
    )
    expected = p2p.predict(trained, stack, axes="ZYX", device="cpu", tile_size=32)
    np.testing.assert_allclose(zarr.open_array(str(store), mode="r")[:], expected, rtol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        ("model", "another model"),
        ("input", "another input"),
        ("tiling", "other tiling options"),
    ],
)
def test_other_work_is_refused_naming_what_differs(trained, stack, tmp_path, change, message):
    store = tmp_path / "p.zarr"
    interrupted(trained, stack, store, tile_size=32)
    before = zarr.open_array(str(store), mode="r")[:]
    model, image, tile = trained, stack, 32
    if change == "model":
        model = p2p.load_model(trained.save(tmp_path / "other.safetensors"))
        model.generator.down[0].conv.weight.data += 0.01  # retrained, say
    elif change == "input":
        image = stack[:, ::-1].copy()  # same shape, other content
    else:
        tile = 64
    with pytest.raises(p2p.InputError, match=message):
        p2p.predict(
            model, image, axes="ZYX", out=store, if_exists="resume", device="cpu", tile_size=tile
        )
    np.testing.assert_array_equal(zarr.open_array(str(store), mode="r")[:], before)


def test_a_file_input_is_identified_by_path_size_and_time(trained, stack, tmp_path):
    path = p2p.write_image(tmp_path / "in.ome.tif", stack, "ZYX")
    store = tmp_path / "p.zarr"
    interrupted(trained, path, store)
    path.unlink()  # the user's own image, replaced by them (no overwrite option replaces it)
    p2p.write_image(path, stack[::-1].copy(), "ZYX")
    with pytest.raises(p2p.InputError, match="another input"):
        p2p.predict(trained, path, out=store, if_exists="resume", device="cpu")


@pytest.fixture(scope="module")
def run_folder(pair, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    p2p.train(
        *pair,
        checkpoint_dir=folder,
        seed=0,
        **{**FAST, "steps": 3},
    )
    return folder


def rewrite(path, change):
    """Apply ``change`` to the checkpoint's JSON document and write it back."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    doc = json.loads(header["__metadata__"]["napari_pix2pix"])
    change(doc)
    header["__metadata__"]["napari_pix2pix"] = json.dumps(doc)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])


def pop(key):
    return lambda doc: doc.pop(key)


def setitem(*keys, value):
    def change(doc):
        target = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("optimizer state missing", pop("opt_g"), "'opt_g' is missing"),
        ("step missing", pop("step"), "'step' is missing"),
        ("sampler state garbage", setitem("sampler", value={"rng": 5}), "sampler's random state"),
        (
            "old sampler keys garbage",
            setitem("sampler", value={"rng": {}, "transforms": [["MT19937", [1, 2], 0, 0, 0]]}),
            "random state of the crop sampler",
        ),
        ("sampler batch negative", setitem("sampler", "batch", value=-1), "sampler's state"),
        ("sampler seed garbage", setitem("sampler", "seed", value="x"), "sampler's state"),
        ("config edited: depth", setitem("config", "depth", value=5), "weight .* wrong shape"),
        ("config edited: channels", setitem("config", "base_channels", value=16), "wrong shape"),
        ("config edited: no GAN", setitem("config", "gan_mode", value="none"), "GAN mode"),
        ("param groups edited", setitem("opt_g", "param_groups", value=[]), "parameter groups"),
        ("step beyond the run", setitem("step", value=10**6), "outside"),
        ("config not a dict", setitem("config", value=[1]), "invalid"),
    ],
)
def test_a_damaged_checkpoint_is_refused_before_resume(
    run_folder, pair, tmp_path, name, change, message
):
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "checkpoint.safetensors").write_bytes(
        (run_folder / "checkpoint.safetensors").read_bytes()
    )
    rewrite(folder / "checkpoint.safetensors", change)
    with pytest.raises(p2p.ModelFileError, match=message):
        load_checkpoint(folder)
    with pytest.raises(p2p.ModelFileError, match=message):
        p2p.train(
            *pair,
            resume=folder,
            **{**FAST, "steps": 5},
        )


def test_a_truncated_checkpoint_is_refused(run_folder, tmp_path):
    folder = tmp_path / "cut"
    folder.mkdir()
    raw = (run_folder / "checkpoint.safetensors").read_bytes()
    (folder / "checkpoint.safetensors").write_bytes(raw[: len(raw) - 100])
    with pytest.raises(p2p.ModelFileError, match="truncated or corrupted"):
        load_checkpoint(folder)
