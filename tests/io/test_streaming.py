"""Out-of-core prediction: path in, path out, equal to in-memory, bounded memory,
cancel leaves an incomplete output, zarr runs resume."""

import subprocess
import sys

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr

import napari_pix2pix as p2p
from napari_pix2pix import read_image, write_image
from napari_pix2pix.engine.tiling import tile_starts


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory, held_out_pair):
    folder = tmp_path_factory.mktemp("stack")
    source = held_out_pair[0]
    stack = np.stack([np.roll(source, 7 * i, axis=i % 2) for i in range(5)])
    path = write_image(folder / "stack.ome.tif", stack, "ZYX", {"Z": 2.0, "Y": 0.5, "X": 0.5}, "µm")
    return path, stack


def test_tiff_to_tiff_equals_in_memory(trained, stack_file, tmp_path):
    path, stack = stack_file
    in_memory = p2p.predict(trained, stack, axes="ZYX", tile_size=48, overlap=0.5, device="cpu")
    out = p2p.predict(
        trained, path, tile_size=48, overlap=0.5, device="cpu", out=tmp_path / "pred.ome.tif"
    )
    result = read_image(out)
    assert result.axes == "ZYX" and result.scale == pytest.approx({"Z": 2.0, "Y": 0.5, "X": 0.5})
    np.testing.assert_allclose(result.array, in_memory, rtol=0, atol=1e-3)
    assert not list(tmp_path.glob("pred.ome.tif*.partial"))


def test_bands_inside_one_large_image_equal_the_whole(trained, held_out_pair, tmp_path):
    # one 2D image: rows stream band by band; the result equals an explicit blend
    big = np.tile(held_out_pair[0], (2, 2))
    a = p2p.predict(trained, big, tile_size=64, overlap=0.25, device="cpu")
    z = p2p.predict(
        trained, big, tile_size=64, overlap=0.25, device="cpu", out=tmp_path / "big.zarr"
    )
    np.testing.assert_array_equal(zarr.open_array(str(z), mode="r")[:], a)
    # blending with a full-image weight map built the slow way
    from napari_pix2pix.engine.tiling import Geometry

    geo = Geometry.make(big.shape, (64, 64), 0.25)
    weight = np.zeros(big.shape)
    for y in geo.starts[0]:
        for x in geo.starts[1]:
            weight[y : y + 64, x : x + 64] += geo.window
    np.testing.assert_allclose(np.multiply.outer(geo.weight[0], geo.weight[1]), weight, rtol=1e-6)


def test_dask_and_zarr_inputs_and_array_out(trained, stack_file, tmp_path):
    _, stack = stack_file
    expected = p2p.predict(trained, stack, axes="ZYX", device="cpu")
    lazy = da.from_array(stack, chunks=(1, 64, 64))
    np.testing.assert_array_equal(p2p.predict(trained, lazy, axes="ZYX", device="cpu"), expected)
    store = zarr.open_array(
        str(tmp_path / "in.zarr"),
        mode="w",
        shape=stack.shape,
        chunks=(1, 128, 128),
        dtype=stack.dtype,
    )
    store[:] = stack
    np.testing.assert_array_equal(p2p.predict(trained, store, axes="ZYX", device="cpu"), expected)
    target = np.zeros(stack.shape, np.float32)
    assert p2p.predict(trained, stack, axes="ZYX", device="cpu", out=target) is target
    np.testing.assert_array_equal(target, expected)


def test_cancel_leaves_incomplete_output_and_zarr_resumes(trained, stack_file, tmp_path):
    path, stack = stack_file
    expected = p2p.predict(trained, stack, axes="ZYX", device="cpu", batch_size=1)

    def cancel_after(n):
        def progress(done, total):
            if done >= n:
                raise KeyboardInterrupt

        return progress

    tif = tmp_path / "p.ome.tif"
    with pytest.raises(KeyboardInterrupt):
        p2p.predict(trained, path, device="cpu", batch_size=1, out=tif, progress=cancel_after(30))
    assert not tif.exists() and len(list(tmp_path.glob("p.ome.tif.*.partial"))) == 1
    with pytest.raises(p2p.InputError, match="resuming needs a .zarr"):
        p2p.predict(trained, path, device="cpu", out=tif, if_exists="resume")

    store = tmp_path / "p.zarr"
    per_slice = len(tile_starts(128, 32, 0.25)) ** 2
    with pytest.raises(KeyboardInterrupt):
        p2p.predict(
            trained,
            path,
            device="cpu",
            batch_size=1,
            out=store,
            progress=cancel_after(2 * per_slice + 3),
        )
    info = zarr.open_array(str(store), mode="r").attrs["napari_pix2pix"]
    assert info["complete"] is False and info["done_samples"] == 2
    calls = []
    p2p.predict(
        trained,
        path,
        device="cpu",
        batch_size=1,
        out=store,
        if_exists="resume",
        progress=lambda d, t: calls.append(d),
    )
    assert calls[0] > 2 * per_slice  # the first two slices were not computed again
    result = zarr.open_array(str(store), mode="r")
    assert result.attrs["napari_pix2pix"]["complete"] is True
    np.testing.assert_array_equal(result[:], expected)
    with pytest.raises(p2p.InputError, match="exists"):
        p2p.predict(trained, path, device="cpu", out=store, if_exists="error")


def test_streaming_memory_is_bounded(trained, tmp_path):
    """A 64 MB float32 output streams through a child process whose peak RSS grows by far
    less than the stack (measured against the same process predicting one slice)."""
    model = trained.save(tmp_path / "m.safetensors")
    slices = 64
    stack = np.random.default_rng(0).integers(0, 20000, (slices, 512, 512)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", stack, metadata={"axes": "ZYX"})
    code = f"""
import resource, sys, numpy as np, napari_pix2pix as p2p, torch
torch.set_num_threads(1)
model = p2p.load_model({str(model)!r})
p2p.predict(model, np.zeros((1, 512, 512), np.uint16), axes='ZYX', device='cpu', tile_size=128)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
p2p.predict(model, {str(tmp_path / "in.tif")!r}, axes='ZYX', device='cpu', tile_size=128,
            out=sys.argv[1])
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "out.ome.tif")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    base, peak = (int(v) for v in result.stdout.split()[-2:])
    growth_mb = (peak - base) / 1024
    output_mb = slices * 512 * 512 * 4 / 2**20
    print(
        f"\nstreaming 64 slices: peak RSS grew {growth_mb:.1f} MB for a {output_mb:.0f} MB output"
    )
    assert growth_mb < 0.25 * output_mb, (growth_mb, output_mb)
    assert tifffile.imread(tmp_path / "out.ome.tif").shape == stack.shape


def test_tiff_pages_are_not_overwritten_by_the_next_sample_when_the_writer_lags(
    trained, stack_file, tmp_path, monkeypatch
):
    # the writer thread starts late, so every page waits in the queue while later samples
    # are predicted (CI once showed plane 0 carrying plane 1's first rows)
    import time

    real_imwrite = tifffile.imwrite

    def slow_imwrite(*args, **kwargs):
        time.sleep(1.0)
        return real_imwrite(*args, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", slow_imwrite)
    path, stack = stack_file
    in_memory = p2p.predict(trained, stack, axes="ZYX", device="cpu")
    out = p2p.predict(trained, path, device="cpu", out=tmp_path / "slow.ome.tif")
    np.testing.assert_allclose(read_image(out).array, in_memory, rtol=0, atol=1e-3)


def test_an_input_that_breaks_mid_way_names_what_was_written(trained, stack_file, tmp_path):
    _, stack = stack_file
    damaged = tmp_path / "damaged.tif"
    tifffile.imwrite(damaged, stack, compression="zlib", metadata={"axes": "ZYX"})
    with tifffile.TiffFile(damaged) as tif:
        offset, count = tif.pages[3].dataoffsets[0], tif.pages[3].databytecounts[0]
    raw = bytearray(damaged.read_bytes())
    raw[offset : offset + count] = np.random.default_rng(1).bytes(count)
    damaged.write_bytes(bytes(raw))
    out = tmp_path / "pred.ome.tif"
    # lazy, the file is read band by band: the damaged plane is met part-way through
    image = read_image(damaged, lazy=True)
    with pytest.raises(p2p.ImageFileError, match="reading the input failed at sample 3") as info:
        p2p.predict(trained, image, tile_size=48, out=out)
    (partial,) = tmp_path.glob("pred.ome.tif.*.partial")
    assert f"What was written is kept as {str(partial)!r}" in str(info.value)
    assert not out.exists()


def test_a_retry_with_smaller_tiles_leaves_no_partial_file(trained, stack_file, tmp_path):
    from napari_pix2pix.engine.inference import TiledPredictor, TileTooLarge

    path, _ = stack_file
    real = TiledPredictor.launch

    def no_large_tiles(self, tiles):
        if tiles.shape[-1] > 32:
            raise TileTooLarge("out of memory on cpu with a single tile of (48, 48)")
        return real(self, tiles)

    out = tmp_path / "pred.ome.tif"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TiledPredictor, "launch", no_large_tiles)
        with pytest.warns(UserWarning, match="retrying with tile_size"):
            p2p.predict(trained, path, tile_size=48, out=out)
    assert read_image(out).array.shape == (5, *read_image(path).array.shape[1:])
    assert [p.name for p in tmp_path.iterdir()] == ["pred.ome.tif"]


def test_overwriting_a_zarr_result_keeps_it_until_the_new_one_is_complete(
    trained, stack_file, tmp_path
):
    path, _ = stack_file
    store = tmp_path / "p.zarr"
    p2p.predict(trained, path, device="cpu", out=store)
    before = zarr.open_array(str(store), mode="r")[:]

    def cancel(done, total):
        if done >= total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # cut short: the earlier result is as it was
        p2p.predict(
            trained,
            path,
            device="cpu",
            out=store,
            if_exists="overwrite",
            tile_size=64,
            progress=cancel,
        )
    kept = zarr.open_array(str(store), mode="r")
    assert kept.attrs["napari_pix2pix"]["complete"] is True
    np.testing.assert_array_equal(kept[:], before)
    assert [p.name for p in tmp_path.iterdir()] == ["p.zarr"]
    # completed: replaced, with nothing left beside it
    p2p.predict(trained, path, device="cpu", out=store, if_exists="overwrite", tile_size=64)
    after = zarr.open_array(str(store), mode="r")
    assert after.attrs["napari_pix2pix"]["complete"] is True
    assert not np.array_equal(after[:], before)  # other tiles: another blend
    assert [p.name for p in tmp_path.iterdir()] == ["p.zarr"]
