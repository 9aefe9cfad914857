"""A zarr store as an input image (io/zarr_input.py): chunks that were never written
are named as the cause, not found later as NaN pixels."""

import numpy as np
import pytest
import zarr

import napari_pix2pix as p2p


def store(path, fill, written_rows):
    array = zarr.create_array(
        str(path), shape=(64, 48), chunks=(16, 16), dtype="f4", fill_value=fill
    )
    array[:written_rows] = 1.0
    return path


@pytest.mark.parametrize("lazy", [True, False])
def test_chunks_never_written_are_named_as_an_unfinished_store(tmp_path, lazy):
    path = store(tmp_path / "copy.zarr", np.nan, 32)  # a copy cut halfway: 6 of 12 chunks
    with pytest.raises(p2p.ImageFileError, match="6 of its 12 chunks hold no data"):
        p2p.read_image(path, lazy=lazy)


def test_a_complete_store_and_unwritten_zero_chunks_read(tmp_path):
    whole = p2p.read_image(store(tmp_path / "whole.zarr", np.nan, 64))
    assert whole.array.shape == (64, 48) and np.isfinite(whole.array).all()
    # zarr leaves out chunks equal to a 0 fill value: background, not damage
    sparse = p2p.read_image(store(tmp_path / "sparse.zarr", 0.0, 16))
    assert np.asarray(sparse.array)[16:].max() == 0 and np.asarray(sparse.array)[:16].min() == 1
