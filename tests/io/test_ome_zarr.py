"""OME-Zarr in and out: NGFF 0.4 and 0.5 images read lazily with axes, scale and units
(any level of their pyramid); predictions written as NGFF 0.5 with a pyramid, chunk by
chunk, resumable, opened with the right scale by napari-ome-zarr and by yaozarrs."""

import json
import sys

import numpy as np
import pytest
import zarr
from tiny_options import TINY

import napari_pix2pix as p2p
from napari_pix2pix.engine.sample_data import make_pair
from napari_pix2pix.io.images import ImageData
from napari_pix2pix.plugin.reader import napari_get_reader

yaozarrs = pytest.importorskip("yaozarrs")
from yaozarrs import v04


@pytest.fixture(scope="module")
def model():
    source, target = make_pair((64, 64), seed=1, nucleus_radius=5.0)
    return p2p.train(source, target, axes="YX", steps=2, seed=0, **TINY)


@pytest.fixture(scope="module")
def stack():
    return np.stack([make_pair((96, 80), seed=s, nucleus_radius=5.0)[0] for s in (3, 4)])


def ngff_04(path, array, axes, scale, unit="nanometer", levels=2):
    """An NGFF 0.4 image as other software writes it: zarr format 2, metadata at the top
    (the metadata made with yaozarrs' 0.4 models)."""
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    datasets = []
    for k in range(levels):
        factor = [2**k if a in "yx" else 1 for a in axes]
        data = array[tuple(slice(None, None, f) for f in factor)]
        group.create_array(str(k), data=data, chunks=data.shape)
        datasets.append(
            v04.Dataset(
                path=str(k),
                coordinateTransformations=[
                    v04.ScaleTransformation(scale=[s * f for s, f in zip(scale, factor)])
                ],
            )
        )
    kinds = {"c": v04.ChannelAxis, "t": v04.TimeAxis}
    models = [kinds[a](name=a) if a in kinds else v04.SpaceAxis(name=a, unit=unit) for a in axes]
    image = v04.Image(multiscales=[v04.Multiscale(version="0.4", axes=models, datasets=datasets)])
    group.attrs.update(image.model_dump(mode="json", exclude_none=True))
    return path


def test_a_prediction_is_an_ngff_image_with_scale_units_and_pyramid(model, stack, tmp_path):
    image = ImageData(stack, "ZYX", {"Z": 2.0, "Y": 0.5, "X": 0.5}, "µm")
    out = p2p.predict(model, image, out=tmp_path / "p.ome.zarr", device="cpu")
    expected = p2p.predict(model, stack, axes="ZYX", device="cpu")
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    multiscale = attrs["ome"]["multiscales"][0]
    assert attrs["ome"]["version"] == "0.5" and attrs["napari_pix2pix"]["complete"] is True
    assert [(a["name"], a["unit"]) for a in multiscale["axes"]] == [
        ("z", "micrometer"),
        ("y", "micrometer"),
        ("x", "micrometer"),
    ]
    scales = [d["coordinateTransformations"][0]["scale"] for d in multiscale["datasets"]]
    assert scales == [[2.0, 0.5, 0.5], [2.0, 1.0, 1.0]]  # 96 x 80, then 48 x 40 (no 24 x 20)
    group = zarr.open_group(str(out), mode="r")
    np.testing.assert_array_equal(group["0"][:], expected)
    np.testing.assert_allclose(
        group["1"][:], expected.reshape(2, 48, 2, 40, 2).mean(axis=(2, 4)), rtol=1e-6
    )
    # the library itself: metadata and structure are valid NGFF
    assert yaozarrs.validate_zarr_store(str(out)).ome_version() == "0.5"
    # and our reader brings the sizes back, so they survive the next step too
    back = p2p.read_image(out)
    assert (back.axes, back.scale, back.unit) == ("ZYX", {"Z": 2.0, "Y": 0.5, "X": 0.5}, "µm")
    level = p2p.read_image(out, level=1)
    assert level.array.shape == (2, 48, 40) and level.scale == {"Z": 2.0, "Y": 1.0, "X": 1.0}
    with pytest.raises(p2p.ImageFileError, match="2 resolution level.*level=2 does not exist"):
        p2p.read_image(out, level=2)


def test_napari_ome_zarr_opens_the_prediction_with_its_scale(model, stack, tmp_path):
    reader = pytest.importorskip("napari_ome_zarr._reader")
    image = ImageData(stack[0], "YX", {"Y": 0.325, "X": 0.325}, "µm")
    out = p2p.predict(model, image, out=tmp_path / "p.ome.zarr", device="cpu")
    [(data, kwargs, kind)] = reader.napari_get_reader(str(out))(str(out))
    assert kind == "image" and [d.shape for d in data] == [(96, 80), (48, 40)]
    assert list(kwargs["scale"]) == [0.325, 0.325]
    assert list(kwargs["units"]) == ["micrometer", "micrometer"]


def test_ngff_04_and_05_inputs_predict_and_train_with_their_sizes(model, stack, tmp_path):
    old = ngff_04(tmp_path / "old.ome.zarr", stack, "zyx", [500.0, 250.0, 250.0])
    read = p2p.read_image(old)
    assert (read.axes, read.scale, read.unit) == ("ZYX", {"Z": 500.0, "Y": 250.0, "X": 250.0}, "nm")
    assert isinstance(read.array, np.ndarray)
    assert isinstance(p2p.read_image(old, lazy=True).array, zarr.Array)  # chunk by chunk
    assert p2p.read_image(old, level=1).array.shape == (2, 48, 40)
    # predict from 0.4 into 0.5: the sizes pass through
    new = p2p.predict(model, old, out=tmp_path / "new.ome.zarr", device="cpu")
    np.testing.assert_array_equal(
        p2p.read_image(new).array, p2p.predict(model, stack, axes="ZYX", device="cpu")
    )
    assert p2p.read_image(new).scale == {"Z": 500.0, "Y": 250.0, "X": 250.0}
    # train on folders of OME-Zarr images (0.4 beside 0.5), paired by name
    for side in ("phase", "dapi"):
        (tmp_path / side).mkdir()
    ngff_04(tmp_path / "phase" / "a.ome.zarr", stack, "zyx", [500.0, 250.0, 250.0])
    p2p.predict(model, old, out=tmp_path / "dapi" / "a.ome.zarr", device="cpu")
    trained = p2p.train(tmp_path / "phase", tmp_path / "dapi", steps=2, seed=0, **TINY)
    assert trained.history.pixel_size == [{"Z": 500.0, "Y": 250.0, "X": 250.0, "unit": "nm"}]


def test_samples_in_another_order_land_where_ngff_puts_them(model, tmp_path):
    # Z before T is not NGFF's order (t, c, z, y, x): the store is TZYX
    zt = np.stack(
        [np.stack([make_pair((64, 64), seed=10 * z + t)[0] for t in range(3)]) for z in range(2)]
    )
    out = p2p.predict(model, zt, axes="ZTYX", out=tmp_path / "p.ome.zarr", device="cpu")
    expected = p2p.predict(model, zt, axes="ZTYX", device="cpu")
    back = p2p.read_image(out)
    assert back.axes == "TZYX"
    np.testing.assert_array_equal(back.array, expected.transpose(1, 0, 2, 3))


def test_an_interrupted_prediction_resumes_and_is_not_an_image_meanwhile(model, stack, tmp_path):
    out = tmp_path / "p.ome.zarr"

    def stop(done, total):
        if done >= total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        p2p.predict(model, stack, axes="ZYX", out=out, device="cpu", batch_size=1, progress=stop)
    with pytest.raises(p2p.ImageFileError, match="unfinished prediction"):
        p2p.read_image(out)
    with pytest.raises(p2p.ImageFileError, match="unfinished prediction"):
        napari_get_reader(str(out))(str(out))
    p2p.predict(model, stack, axes="ZYX", out=out, device="cpu", if_exists="resume")
    expected = p2p.predict(model, stack, axes="ZYX", device="cpu")
    np.testing.assert_array_equal(p2p.read_image(out).array, expected)
    assert zarr.open_group(str(out), mode="r")["1"].shape == (2, 48, 40)
    with pytest.raises(p2p.InputError, match="exists"):
        p2p.predict(model, stack, axes="ZYX", out=out, device="cpu")


def test_a_store_of_someone_else_is_never_replaced(model, stack, tmp_path):
    theirs = ngff_04(tmp_path / "theirs.ome.zarr", stack, "zyx", [1.0, 1.0, 1.0])
    before = zarr.open_group(str(theirs), mode="r")["0"][:]
    for if_exists in ("overwrite", "resume"):
        with pytest.raises(p2p.InputError, match="not written by napari-pix2pix"):
            p2p.predict(model, stack, axes="ZYX", out=theirs, device="cpu", if_exists=if_exists)
    np.testing.assert_array_equal(zarr.open_group(str(theirs), mode="r")["0"][:], before)


def test_the_napari_reader_opens_ome_zarr_lazily_with_scale(stack, tmp_path):
    path = ngff_04(tmp_path / "s.ome.zarr", stack[None], "czyx", [1.0, 2.0, 0.5, 0.5], "micrometer")
    [(data, meta, kind)] = napari_get_reader(str(path))(str(path))
    assert type(data).__module__.startswith("dask") and data.shape == (1, 2, 96, 80)
    assert meta["scale"] == [2.0, 0.5, 0.5] and meta["units"] == ["µm"] * 3
    assert meta["axis_labels"] == ["Z", "Y", "X"] and meta["channel_axis"] == 0


def test_without_the_extra_the_fix_is_named(model, stack, tmp_path, monkeypatch):
    path = ngff_04(tmp_path / "s.ome.zarr", stack, "zyx", [1.0, 1.0, 1.0])
    plain = tmp_path / "s.zarr"
    path.rename(plain)  # an OME-Zarr image without the .ome in its name is one too
    monkeypatch.setitem(sys.modules, "yaozarrs", None)  # import yaozarrs: ImportError
    with pytest.raises(p2p.ImageFileError, match=r"napari-pix2pix\[ome-zarr\]"):
        p2p.read_image(plain)
    with pytest.raises(p2p.InputError, match=r"napari-pix2pix\[ome-zarr\]"):
        p2p.predict(model, stack, axes="ZYX", out=tmp_path / "p.ome.zarr", device="cpu")
    assert not (tmp_path / "p.ome.zarr").exists()


def test_a_collection_is_refused_and_its_images_read(stack, tmp_path):
    root = zarr.open_group(str(tmp_path / "series.ome.zarr"), mode="w", zarr_format=2)
    root.attrs["bioformats2raw.layout"] = 3  # what bioformats2raw writes: images 0, 1, ...
    ngff_04(tmp_path / "series.ome.zarr" / "0", stack, "zyx", [1.0, 0.5, 0.5], "micrometer")
    with pytest.raises(p2p.ImageFileError, match="a collection, not one image"):
        p2p.read_image(tmp_path / "series.ome.zarr")
    image = p2p.read_image(tmp_path / "series.ome.zarr" / "0")
    assert image.array.shape == (2, 96, 80) and image.scale == {"Z": 1.0, "Y": 0.5, "X": 0.5}


def test_invalid_ngff_names_the_entry_and_the_problem(stack, tmp_path):
    path = ngff_04(tmp_path / "bad.ome.zarr", stack, "zyx", [1.0, 0.5, 0.5], levels=1)
    group = zarr.open_group(str(path), mode="r+", zarr_format=2)
    attrs = dict(group.attrs)
    attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] = [0.5]
    group.attrs.update(attrs)
    with pytest.raises(p2p.ImageFileError) as caught:
        p2p.read_image(path)
    said = str(caught.value)
    assert "multiscales[0].datasets[0].coordinateTransformations[0].scale: " in said
    assert "tagged-union" not in said and "pydantic" not in said and "\n" not in said
