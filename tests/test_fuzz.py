"""Property-based fuzzing of everything a user hands over: random shapes, dtypes, axes
strings and option values for train/predict, random and mutated bytes and configs for the
model loader. Every outcome must be a success or one of our exceptions.

CI runs a bounded number of examples; for a long run by hand:
    HYPOTHESIS_PROFILE=fuzz python -m pytest tests/test_fuzz.py
"""

import json
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import napari_pix2pix as p2p
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
        assert result.history["steps_done"] == steps


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
