"""Bounded memory and time for any input: what an option or a file would allocate is
estimated first and refused (or shrunk) when it cannot fit, compressed files are not
decoded beyond the memory there is, named pipes never block, and overlaps that multiply
the work absurdly are refused."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from tiny_options import untrained_model

import napari_pix2pix as p2p


def absurd_model(path):
    """A valid, tiny model file of depth 16 and patch 65536: every tile is 65536 px."""
    return untrained_model(
        path, depth=16, patch_size=65536, base_channels=1, disc_layers=1, disc_channels=64
    )


def test_a_model_of_absurd_size_is_refused_before_allocating(tmp_path):
    path = absurd_model(tmp_path / "absurd.safetensors")
    assert path.stat().st_size < 2**20  # a small file on disk
    started = time.perf_counter()
    with pytest.raises(
        p2p.DeviceError, match="smallest tile \\(65536, 65536\\).*cannot be applied"
    ):
        p2p.predict(path, np.zeros((64, 64), np.uint16), device="cpu")
    assert time.perf_counter() - started < 30


def test_a_training_of_absurd_size_is_refused_before_allocating(pair):
    started = time.perf_counter()
    with pytest.raises(p2p.InputError, match="needs about .* GiB, more than the"):
        p2p.train(*pair, depth=16, patch_size=65536, steps=1, device="cpu", val_fraction=0)
    assert time.perf_counter() - started < 30


def test_images_are_checked_against_host_memory_and_the_network_against_the_gpu():
    from napari_pix2pix.config import Pix2PixConfig
    from napari_pix2pix.engine.memory import unet_bytes
    from napari_pix2pix.engine.trainer import check_training_memory

    config = Pix2PixConfig(depth=4, patch_size=64, base_channels=8, batch_size=16)
    images = [(1, 4096, 4096)]  # 8 bytes x 2 channels x 16 Mi pixels: 256 MiB in RAM
    network = unet_bytes(config, 16, (64, 64), training=True)
    lots = 2**40
    check_training_memory(config, images, lots, network * 2)  # each fits its own memory
    with pytest.raises(p2p.InputError, match="on the GPU, more than its .*batch_size=8 "):
        check_training_memory(config, images, lots, network)  # the GPU is too small
    with pytest.raises(p2p.InputError, match="more than the 0.2 GiB of memory available"):
        check_training_memory(config, images, 2**28, lots)  # RAM too small for the images
    # on the CPU both share the RAM: together they do not fit where each alone would
    room = int((network + 2**28) / 0.8) - 1
    with pytest.raises(p2p.InputError, match="of memory available"):
        check_training_memory(config, images, room, None)
    check_training_memory(config, images, room + 2 * network, None)


def test_tiles_shrink_to_the_memory_there_is(trained, held_out_pair, monkeypatch):
    import napari_pix2pix.workflows.prediction as prediction
    from napari_pix2pix.engine.memory import unet_bytes

    fits = 2 * unet_bytes(trained.config, 1, (32, 32))  # room for one 32 x 32 tile
    monkeypatch.setattr(prediction, "device_memory", lambda device: fits)
    with pytest.warns(UserWarning, match="using tile \\(32, 32\\) x batch 1"):
        small = p2p.predict(trained, held_out_pair[0], tile_size=64, batch_size=4, device="cpu")
    np.testing.assert_allclose(
        small,
        p2p.predict(trained, held_out_pair[0], tile_size=32, batch_size=1, device="cpu"),
        atol=1e-3,
    )


def test_a_compressed_file_is_not_decoded_beyond_the_memory_there_is(tmp_path, monkeypatch):
    from napari_pix2pix.engine import memory

    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((8, 512, 512), np.uint16), compression="zlib")
    assert path.stat().st_size < 100_000  # 4 MiB of zeros in a few kilobytes
    monkeypatch.setattr(memory, "available_memory", lambda: 3 * 2**20)
    with pytest.raises(p2p.ImageFileError, match="decodes to .* more than the .* available"):
        p2p.read_image(path)
    assert p2p.read_image(path, lazy=True).array.shape == (8, 512, 512)  # read as needed


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_named_pipes_are_refused_without_blocking(tmp_path, trained):
    model = trained.save(tmp_path / "m.safetensors")
    for name in ("pipe.safetensors", "pipe.tif", "run/checkpoint.safetensors"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        os.mkfifo(tmp_path / name)
    code = f"""
import numpy as np, napari_pix2pix as p2p
calls = [lambda: p2p.load_model({str(tmp_path / "pipe.safetensors")!r}),
         lambda: p2p.predict({str(model)!r}, {str(tmp_path / "pipe.tif")!r}),
         lambda: p2p.read_image({str(tmp_path / "pipe.tif")!r}),
         lambda: p2p.train(np.zeros((64, 64)), np.zeros((64, 64)),
                           resume={str(tmp_path / "run")!r})]
for call in calls:
    try:
        call()
    except p2p.Pix2PixError as exc:
        print(type(exc).__name__, str(exc))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4, result.stdout + result.stderr
    assert all("not a regular file" in line for line in lines), lines


def test_overlaps_that_multiply_the_work_are_refused_or_warned(trained, held_out_pair):
    image = held_out_pair[0][:64, :64]
    with pytest.raises(
        p2p.InputError, match="overlap=0.999 would compute every pixel about 1,000,000 times"
    ):
        p2p.predict(trained, image, overlap=0.999, device="cpu")
    with pytest.warns(UserWarning, match="overlap=0.8 computes every pixel about 25 times"):
        p2p.predict(trained, image, overlap=0.8, device="cpu")


@pytest.mark.parametrize("dims", [2, 3])
def test_the_largest_overlap_said_is_itself_allowed(dims):
    """Once: overlap=0.9 in 2D was refused with 'use at most 0.90' (1 / (1 - 0.9) ** 2
    rounds to just over the limit)."""
    from napari_pix2pix.engine.inference import _check_overlap

    with pytest.raises(p2p.InputError) as said:
        _check_overlap(0.95, dims)
    largest = float(str(said.value).split("use at most ")[1].split()[0])
    with pytest.warns(UserWarning, match="computes every pixel about"):
        _check_overlap(largest, dims)  # allowed, with the warning about its cost
    with pytest.raises(p2p.InputError, match=f"use at most {largest:.2f}"):
        _check_overlap(largest + 0.01, dims)
