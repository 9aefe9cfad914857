"""Fine-tuning: train(..., init_model=...) starts from a trained model's generator
weights, architecture and normalization, and says so in the new model's history."""

import numpy as np
import pytest
import torch
from tiny_options import TINY

import napari_pix2pix as p2p
from napari_pix2pix.cli import main
from napari_pix2pix.engine.sample_data import make_pair

# a run that cannot move the weights: one step at a negligible learning rate, no
# dropout (no noise in the forward pass to care about), L1 only
FROZEN = dict(steps=1, lr=1e-30, batch_size=2, gan_mode="none", seed=3, device="cpu")


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A tiny model (20 steps) saved to disk."""
    source, target = make_pair((96, 96), seed=4, nucleus_radius=5.0)
    model = p2p.train(
        source,
        target,
        steps=20,
        **{**TINY, "batch_size": 2, "dropout": 0.0},
    )
    path = model.save(tmp_path_factory.mktemp("init") / "old.safetensors")
    return model, path


@pytest.fixture(scope="module")
def new_pair():
    source, target = make_pair((96, 96), seed=5, nucleus_radius=4.0)
    return source * 3.0 + 50.0, target * 0.5  # other intensities than the original's


def test_fine_tuning_starts_from_the_model_file(original, new_pair):
    model, path = original
    tuned = p2p.train(*new_pair, init_model=path, **FROZEN)
    c, o = tuned.config, model.config
    for field in ("depth", "base_channels", "norm", "dropout", "spatial_dims", "patch_size"):
        assert getattr(c, field) == getattr(o, field), field
    for field in ("source_low", "source_high", "target_low", "target_high", "percentiles"):
        assert getattr(c, field) == getattr(o, field), field  # kept, not refitted
    assert (c.steps, c.lr, c.gan_mode) == (1, 1e-30, "none")  # the recipe given
    # the generator's parameters are the original's (BatchNorm's running statistics
    # are buffers: the training step updates them, so they are not compared)
    old = dict(model.generator.named_parameters())
    for name, p in tuned.generator.named_parameters():
        torch.testing.assert_close(p.detach(), old[name].detach(), rtol=0, atol=1e-7)
    assert tuned.history.init_model == {"source": str(path), "steps_done": 20}
    assert tuned.history.steps_done == 1


def test_fine_tuning_trains_and_takes_an_in_memory_model(original, new_pair):
    model, _ = original
    tuned = p2p.train(*new_pair, init_model=model, steps=3, batch_size=2, device="cpu", seed=0)
    assert tuned.history.steps_done == 3
    assert tuned.history.init_model["steps_done"] == 20
    assert tuned.config.disc_layers == model.config.disc_layers  # the recipe, unless given
    moved = any(
        not torch.equal(p, q)
        for p, q in zip(tuned.generator.parameters(), model.generator.parameters())
    )
    assert moved  # and it did train
    assert model.history.steps_done == 20  # the original is untouched
    again = p2p.train(*new_pair, init_model=tuned, **FROZEN)  # a chain is recorded
    assert again.history.init_model["init_model"]["steps_done"] == 20


def test_fine_tuning_refuses_conflicts(original, new_pair, tmp_path):
    model, path = original
    with pytest.raises(p2p.InputError, match="depth=5.*base_channels=16"):
        p2p.train(*new_pair, init_model=path, depth=5, base_channels=16, steps=1)
    with pytest.raises(p2p.InputError, match="percentiles"):
        p2p.train(*new_pair, init_model=path, percentiles=(1, 99), steps=1)
    # the model's own values are no conflict
    p2p.train(*new_pair, init_model=path, depth=4, base_channels=8, **FROZEN)
    two_channels = np.stack([new_pair[0], new_pair[0]])
    with pytest.raises(p2p.InputError, match="2 -> 1 channels.*init_model's model has 1 -> 1"):
        p2p.train(
            two_channels, new_pair[1], axes="CYX", target_axes="YX", init_model=path, **FROZEN
        )
    with pytest.raises(p2p.InputError, match="init_model and resume"):
        p2p.train(*new_pair, init_model=path, resume=tmp_path, **FROZEN)
    with pytest.raises(p2p.ModelFileError, match="does not exist"):
        p2p.train(*new_pair, init_model=tmp_path / "missing.safetensors", **FROZEN)
    with pytest.raises(p2p.InputError, match="init_model has an invalid value"):
        p2p.train(*new_pair, init_model=42, **FROZEN)


def test_cli_train_with_init_model(original, new_pair, tmp_path, capsys):
    _, path = original
    p2p.write_image(tmp_path / "s.tif", new_pair[0].astype(np.float32), "YX")
    p2p.write_image(tmp_path / "t.tif", new_pair[1].astype(np.float32), "YX")
    out = tmp_path / "tuned.safetensors"
    args = ["train", str(tmp_path / "s.tif"), str(tmp_path / "t.tif"), "-o", str(out)]
    args += ["--init-model", str(path), "--steps", "2", "--batch-size", "2", "--device", "cpu"]
    assert main(args) == 0, capsys.readouterr().err
    tuned = p2p.load_model(out)
    assert tuned.history.init_model == {"source": str(path), "steps_done": 20}
    assert tuned.config.base_channels == 8
    assert main(args[:5] + ["--init-model", str(path), "--depth", "6", "--overwrite"]) == 2
    assert "init_model fixes the architecture" in capsys.readouterr().err
