"""Nothing lost: a training run killed with SIGKILL resumes to the same weights as an
uninterrupted run; running out of (GPU) memory is survived in prediction and explained
in training."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import napari_pix2pix as p2p
from napari_pix2pix import write_image
from napari_pix2pix.engine import model as engine_model
from napari_pix2pix.io.checkpoint import checkpoint_path, load_checkpoint
from napari_pix2pix.io.model_file import Pix2PixModel

CLI_TINY = [
    "--patch-size",
    "32",
    "--depth",
    "4",
    "--base-channels",
    "8",
    "--batch-size",
    "4",
    "--disc-layers",
    "2",
    "--disc-channels",
    "8",
    "--device",
    "cpu",
    "--seed",
    "0",
    "--val-fraction",
    "0",
]


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(pair, tiny, tmp_path):
    source, target = pair
    write_image(tmp_path / "s.tif", source, "YX")
    write_image(tmp_path / "t.tif", target, "YX")
    steps, every = 150, 10
    run = tmp_path / "run"
    # the same thread counts as this process (conftest), so that float sums agree
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    cli = [
        sys.executable,
        "-m",
        "napari_pix2pix.cli",
        "train",
        str(tmp_path / "s.tif"),
        str(tmp_path / "t.tif"),
        *CLI_TINY,
        "--checkpoint-dir",
        str(run),
    ]
    child = subprocess.Popen(
        cli
        + [
            "-o",
            str(tmp_path / "killed.safetensors"),
            "--steps",
            str(steps),
            "--checkpoint-every",
            str(every),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    killed_after = None
    while time.monotonic() < deadline and child.poll() is None:
        if checkpoint_path(run).is_file():
            killed_after = load_checkpoint(run).step
            if killed_after >= 3 * every:
                child.send_signal(signal.SIGKILL)  # no clean-up of any kind
                break
        time.sleep(0.05)
    assert child.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (tmp_path / "killed.safetensors").exists()

    kept = load_checkpoint(run)  # the checkpoint survived the kill, readable
    assert kept.step % every == 0 and 3 * every <= kept.step < steps
    resumed = subprocess.run(
        cli + ["-o", str(tmp_path / "resumed.safetensors"), "--resume", str(run)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    model = p2p.load_model(tmp_path / "resumed.safetensors")
    assert model.history.steps_done == steps
    assert model.history.losses["step"][0] == 1 and model.history.losses["step"][-1] == steps

    full = p2p.train(source, target, steps=steps, seed=0, val_fraction=0, **tiny)
    w_full, w_resumed = full.generator.state_dict(), model.generator.state_dict()
    diff = max(float((w_resumed[k].float() - w_full[k].float()).abs().max()) for k in w_full)
    print(
        f"\nkilled with the checkpoint at step {kept.step} of {steps}; resumed to {steps}; "
        f"largest weight difference to an uninterrupted run {diff:.2e}"
    )
    assert diff <= 1e-5


def test_sigterm_saves_the_model_trained_so_far(pair, tmp_path):
    """A cluster's time limit or ``timeout`` sends SIGTERM: like Ctrl-C, the CLI saves
    the model it has (a run without a checkpoint folder would otherwise be lost)."""
    source, target = pair
    write_image(tmp_path / "s.tif", source, "YX")
    write_image(tmp_path / "t.tif", target, "YX")
    out = tmp_path / "m.safetensors"
    child = subprocess.Popen(
        [sys.executable, "-m", "napari_pix2pix.cli", "train", str(tmp_path / "s.tif")]
        + [str(tmp_path / "t.tif"), "-o", str(out), "--steps", "100000", *CLI_TINY],
        env={**os.environ, "OMP_NUM_THREADS": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    line = ""
    while time.monotonic() < deadline and "training:" not in line:  # tqdm's bar began
        line = child.stderr.read(200)
    time.sleep(2)
    child.send_signal(signal.SIGTERM)
    err = child.communicate(timeout=120)[1]
    assert child.returncode == 130, err
    assert "was saved to" in err
    assert p2p.load_model(out).history.steps_done > 0


class MemoryLimited(torch.nn.Module):
    """The real generator behind a fake memory ceiling: inputs larger than ``limit``
    elements raise the error CUDA raises when it runs out of memory."""

    def __init__(self, net: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.net, self.limit = net, limit

    def forward(self, x):
        if x.numel() > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.net(x)


def test_out_of_memory_in_predict_retries_smaller_batch_then_tile(trained, pair):
    source, _ = pair
    limited = Pix2PixModel(
        trained.config, MemoryLimited(trained.generator, 2 * 64 * 64).eval(), trained.history
    )
    # fuse=False: the network as given, whose memory limit the test changes between
    # predictions (the fused copy is made again only when weights change, not attributes)
    with pytest.warns(UserWarning, match="out of memory .* continuing with batch_size=2"):
        result = p2p.predict(limited, source, tile_size=64, batch_size=4, fuse=False)
    np.testing.assert_allclose(
        result, p2p.predict(trained, source, tile_size=64, batch_size=2, fuse=False), atol=1e-4
    )

    limited.generator.limit = 48 * 48  # not even one 64 x 64 tile
    with pytest.warns(
        UserWarning, match="single tile of \\(64, 64\\); retrying with tile_size=\\(32, 32\\)"
    ):
        result = p2p.predict(limited, source, tile_size=64, batch_size=4, fuse=False)
    np.testing.assert_allclose(
        result, p2p.predict(trained, source, tile_size=32, batch_size=1, fuse=False), atol=1e-4
    )

    limited.generator.limit = 10
    with pytest.warns(UserWarning), pytest.raises(p2p.DeviceError, match="smallest tile size"):
        p2p.predict(limited, source, tile_size=64, fuse=False)


def test_out_of_memory_in_training_names_what_fits(pair, tiny, tmp_path, monkeypatch):
    source, target = pair
    build = engine_model.build_generator  # where a model's network is built
    limit = {"elements": 2 * 32 * 32}
    monkeypatch.setattr(
        engine_model,
        "build_generator",
        lambda config: MemoryLimited(build(config), limit["elements"]),
    )
    with pytest.raises(
        p2p.TrainingError,
        match="out of memory on cpu at step 1 with batch_size=4 and patch_size="
        "\\(32, 32\\). batch_size=2 with patch_size=\\(32, 32\\) fits",
    ):
        p2p.train(source, target, steps=3, checkpoint_dir=tmp_path, **tiny)
    limit["elements"] = 16 * 16
    with pytest.raises(p2p.TrainingError, match="batch_size=1 with patch_size=\\(16, 16\\) fits"):
        p2p.train(source, target, steps=3, **tiny)
    limit["elements"] = 10
    with pytest.raises(p2p.TrainingError, match="Even batch_size=1 at the smallest patch size"):
        p2p.train(source, target, steps=3, **tiny)
