"""Vendors' formats through bioio (the [bioio] extra). A real CZI is made here with
pylibCZIrw (bioio-czi's own library); ND2 and LIF have no writer, so for them only the
table, the clear error without the extra and the refusal of a damaged file are tested."""

import sys

import numpy as np
import pytest
from tiny_options import TINY

import napari_pix2pix as p2p
from napari_pix2pix.engine.sample_data import make_pair
from napari_pix2pix.io.formats import format_of
from napari_pix2pix.plugin.reader import napari_get_reader


@pytest.fixture
def czi(tmp_path):
    pytest.importorskip("bioio_czi")
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    planes = [make_pair((64, 72), seed=s, nucleus_radius=5.0)[0] for s in (1, 2)]
    path = tmp_path / "stack.czi"
    with pyczi.create_czi(str(path)) as writer:
        for z, plane in enumerate(planes):
            writer.write(data=plane, plane={"Z": z, "C": 0, "T": 0})
        writer.write_metadata(
            document_name="stack", scale_x=0.325e-6, scale_y=0.325e-6, scale_z=2e-6
        )
    return path, np.stack(planes)


def test_a_czi_reads_with_its_sizes_and_predicts_keeping_them(czi, tmp_path):
    path, planes = czi
    image = p2p.read_image(path)
    assert (image.axes, image.unit) == ("ZYX", "µm")
    assert image.scale == pytest.approx({"Z": 2.0, "Y": 0.325, "X": 0.325})
    np.testing.assert_array_equal(image.array, planes)
    assert type(p2p.read_image(path, lazy=True).array).__module__.startswith("dask")
    model = p2p.train(planes[0], planes[1], axes="YX", steps=2, seed=0, **TINY)
    out = p2p.predict(model, path, out=tmp_path / "p.ome.tif", device="cpu")
    assert p2p.read_image(out).scale == pytest.approx(image.scale)
    [(data, meta, _)] = napari_get_reader(str(path))(str(path))
    assert meta["scale"] == pytest.approx([2.0, 0.325, 0.325]) and data.shape == (2, 64, 72)
    with pytest.raises(p2p.ImageFileError, match="1 scene.*series=1 does not exist"):
        p2p.read_image(path, series=1)


@pytest.mark.parametrize("name", ["a.czi", "a.nd2", "a.lif"])
def test_without_the_extra_the_fix_is_named(tmp_path, monkeypatch, name):
    (tmp_path / name).write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, format_of(name).module, None)  # import fails
    with pytest.raises(p2p.ImageFileError, match=r'pip install "napari-pix2pix\[bioio\]"'):
        p2p.read_image(tmp_path / name)


@pytest.mark.parametrize("name", ["a.czi", "a.nd2", "a.lif"])
def test_a_damaged_file_is_refused_naming_it(tmp_path, name):
    pytest.importorskip(format_of(name).module)
    (tmp_path / name).write_bytes(b"\0" * 512)
    with pytest.raises(p2p.ImageFileError, match=f"cannot read .*{name}"):
        p2p.read_image(tmp_path / name)
