"""Recipes: what a run trains with when the user does not say (preset="auto" sizes the
network for the data, device and budget; "paper" is the paper's), options given win."""

import pytest
import torch

import napari_pix2pix as p2p
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine.device import amp_dtype
from napari_pix2pix.engine.networks import build_generator
from napari_pix2pix.engine.recipes import (
    ENOUGH_STEPS,
    depth_for,
    fit_patch_to_data,
    pick_width,
    preset_options,
)
from napari_pix2pix.engine.sample_data import make_pair
from napari_pix2pix.engine.trainer import Trainer

FAST = dict(steps=1, device="cpu", val_fraction=0)


@pytest.fixture(scope="module")
def narrow():
    return make_pair((96, 200), seed=1, nucleus_radius=5.0)


def test_auto_sizes_crops_and_depth_for_the_images(narrow):
    model = p2p.train(*narrow, **FAST)
    c = model.config
    assert (c.patch_size, c.depth, c.base_channels) == ((64, 64), 4, 32)
    recipe = model.history.recipe
    assert recipe["preset"] == "auto" and "smallest image is 96 px" in recipe["why"]


def test_paper_is_the_papers_recipe(narrow):
    c = p2p.train(*narrow, preset="paper", **FAST).config
    assert (c.patch_size, c.depth, c.base_channels) == ((256, 256), 8, 64)


def test_options_given_win_and_the_depth_follows_the_patch(narrow):
    c = p2p.train(*narrow, patch_size=48, **FAST).config
    assert c.patch_size == (48, 48) and c.depth == 4  # 48 = 3 * 2**4
    c = p2p.train(*narrow, preset="paper", patch_size=64, **FAST).config
    assert c.depth == 6  # the paper's 8 does not divide 64
    c = p2p.train(*narrow, depth=3, base_channels=8, patch_size=32, **FAST).config
    assert (c.patch_size, c.depth, c.base_channels) == ((32, 32), 3, 8)


def test_a_time_budget_sizes_the_network(narrow):
    model = p2p.train(*narrow, device="cpu", val_fraction=0, time_budget=2)
    recipe = model.history.recipe
    assert "ms/step" in recipe["why"]
    assert model.config.base_channels in (16, 32)


def test_rules():
    assert [depth_for(p) for p in (32, 64, 128, 256, 1024)] == [3, 4, 5, 6, 8]
    assert fit_patch_to_data(1000, 2) == 128 and fit_patch_to_data(100, 2) == 64
    assert fit_patch_to_data(40, 2) == 32 and fit_patch_to_data(200, 3) == 64
    assert preset_options("auto", {"base_channels": 8}, 2) == {
        "patch_size": 128,
        "depth": 5,
        "disc_channels": 32,
    }


def test_the_width_counts_the_time_a_batch_takes():
    """A wide network is chosen only if the steps it leaves, batches included, are enough."""
    cpu = torch.device("cpu")

    def sized(width):
        return Pix2PixConfig(patch_size=32, depth=4, base_channels=width, disc_layers=2)

    def trainer(c):
        return Trainer(c, build_generator(c), cpu, amp_dtype(cpu, "off"))

    plenty = ENOUGH_STEPS * 30.0  # 30 s a step would still do
    assert pick_width(sized, cpu, plenty, trainer)[0] == 32
    width, times, why = pick_width(sized, cpu, plenty, trainer, batch_seconds=60.0)
    assert width == 16 and min(times) > 60.0 and "16" in why


def test_a_plan_says_what_train_will_do_and_makes_nothing(narrow, tmp_path):
    folder = tmp_path / "run"
    plan = p2p.plan_run(*narrow, steps=3, checkpoint_dir=folder, device="cpu", val_fraction=0)
    assert not folder.exists()
    model = p2p.train(*narrow, steps=3, checkpoint_dir=folder, device="cpu", val_fraction=0)
    c = model.config
    chosen = (c.depth, c.base_channels, c.disc_channels, c.batch_size, list(c.patch_size))
    r = plan.recipe
    assert (r["depth"], r["base_channels"], r["disc_channels"], r["batch_size"]) == chosen[:4]
    assert r["patch_size"] == chosen[4] and r["preset"] == "auto"
    assert plan.steps == 3 and not plan.budgeted
    assert plan.seconds == pytest.approx(3 * plan.step_seconds) and plan.step_seconds > 0
    assert "auto recipe: depth 4, 32 channels, 64 px crops, batch 4" in plan.describe()
    assert "3 steps in" in plan.describe()


def test_a_budgeted_plan_fits_its_steps_into_the_budget(narrow):
    plan = p2p.plan_run(*narrow, time_budget=2, device="cpu", val_fraction=0)
    assert plan.budgeted and plan.seconds <= 2
    assert plan.steps == int(2 / plan.step_seconds)
    # the recipe timed the network's step and reading and augmenting a batch
    assert plan.step_seconds == pytest.approx(plan.recipe["ms_per_step"] / 1000)
    assert plan.step_seconds > 0
    assert plan.describe().startswith("auto recipe") and "~" in plan.describe()


def test_probing_what_fits_leaves_the_batchnorm_statistics_alone():
    """The out-of-memory advice tries batches of zeros through the networks: their
    BatchNorm running statistics must come back as they were (zeros would drag the
    means towards 0 and the variances towards 1 for the rest of the run)."""
    cpu = torch.device("cpu")
    c = Pix2PixConfig(patch_size=32, depth=4, base_channels=8, disc_layers=2, disc_channels=8)
    trainer = Trainer(c, build_generator(c), cpu, amp_dtype(cpu, "off"))
    with torch.no_grad():
        for buffer in trainer.generator.buffers():
            buffer.fill_(3.0)
    assert trainer._fits(2, (32, 32))
    assert all(torch.all(b == 3.0) for b in trainer.generator.buffers())
