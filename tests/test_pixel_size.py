"""The physical pixel size a model was trained at: recorded from the training images,
shown in its card, and checked against the images it predicts."""

import warnings

import pytest
from tiny_options import FAST

import napari_pix2pix as p2p
from napari_pix2pix.io.images import ImageData, write_image


def _tiff(path, array, size, unit="µm"):
    write_image(path, array, "YX", {"Y": size, "X": size}, unit)
    return path


def _warnings(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught]


def test_pixel_size_is_recorded_shown_and_checked(pair, tmp_path):
    source, target = pair
    s = _tiff(tmp_path / "s.tif", source, 0.65)
    t = _tiff(tmp_path / "t.tif", target, 0.65)
    model = p2p.train(s, t, **FAST)
    assert model.history.pixel_size == [{"Y": 0.65, "X": 0.65, "unit": "µm"}]
    saved = p2p.load_model(model.save(tmp_path / "m.safetensors"))
    assert "Pixel size trained at: 0.65 x 0.65 µm (Y x X)" in saved.card()

    finer = _tiff(tmp_path / "finer.tif", source, 0.325)
    said = _warnings(lambda: p2p.predict(saved, finer, tile_size=32))
    assert any("0.325 x 0.325 µm" in w and "Resample" in w for w in said)
    for same in (s, _tiff(tmp_path / "nm.tif", source, 650.0, "nm"), source):
        # the same size (in µm once read), and an array with no size: nothing to say
        said = _warnings(lambda image=same: p2p.predict(saved, image, tile_size=32))
        assert not any("pixel size" in w for w in said)


@pytest.mark.parametrize("unit", [None, "pixel"])
def test_images_without_a_physical_size_record_none(pair, tmp_path, unit):
    source, target = pair
    s = tmp_path / "s.tif"
    write_image(s, source, "YX", {"Y": 2.0, "X": 2.0} if unit else None, unit)
    model = p2p.train(s, target, **FAST)
    assert model.history.pixel_size == []
    assert "Pixel size" not in "\n".join(model.card())


@pytest.mark.parametrize("bad", [0.0, -0.65, float("nan")])
def test_a_bad_recorded_pixel_size_is_ignored_not_divided_by(pair, tmp_path, bad):
    """A model recorded at size 0 (older versions accepted it) made every predict raise
    ZeroDivisionError; in memory and in a saved file the bad size now says nothing."""
    source, target = pair
    model = p2p.train(source, target, **FAST)
    model.history.pixel_size = [{"Y": bad, "X": bad, "unit": "µm"}]
    image = _tiff(tmp_path / "s.tif", source, 0.65)
    said = _warnings(lambda: p2p.predict(model, image, tile_size=32))
    assert not any("pixel size" in w for w in said)
    saved = model.save(tmp_path / "m.safetensors")
    with pytest.warns(UserWarning, match=r"\(pixel_size\), which are ignored"):
        loaded = p2p.load_model(saved)
    assert "Pixel size" not in loaded.card()
    assert p2p.predict(loaded, image, tile_size=32).shape == source.shape


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_a_users_invalid_pixel_size_is_refused_before_training_or_predicting(pair, bad):
    source, target = pair
    image = ImageData(source, "YX", {"Y": 0.5, "X": bad}, "µm")
    with pytest.raises(p2p.InputError, match=f"axis X is {bad}"):
        p2p.train(image, target, **FAST)
    model = p2p.train(source, target, **FAST)
    with pytest.raises(p2p.InputError, match=f"axis X is {bad}"):
        p2p.predict(model, image, tile_size=32)


def test_an_image_in_another_length_unit_is_checked_in_micrometres(pair):
    """0.5 inch is not 0.5 µm: the sizes were compared only when the units were equal."""
    source, target = pair
    trained = ImageData(source, "YX", {"Y": 0.5, "X": 0.5}, "µm")
    model = p2p.train(trained, target, **FAST)
    inches = ImageData(source, "YX", {"X": 0.5, "Y": 0.5}, "inch")
    said = _warnings(lambda: p2p.predict(model, inches, tile_size=32))
    assert any("0.5 x 0.5 inch" in w and "Resample" in w for w in said)
    nanometres = ImageData(source, "YX", {"X": 500.0, "Y": 500.0}, "nm")
    said = _warnings(lambda: p2p.predict(model, nanometres, tile_size=32))
    assert not any("pixel size" in w for w in said)
