"""Recipes: what a run trains with when the user does not say (preset="auto" sizes the
network for the data, device and budget; "paper" is the paper's), options given win."""

import pytest

import napari_pix2pix as p2p
from napari_pix2pix.engine.recipes import depth_for, fit_patch_to_data, preset_options
from napari_pix2pix.engine.sample_data import make_pair

FAST = dict(steps=1, device="cpu", val_fraction=0)


@pytest.fixture(scope="module")
def narrow():
    return make_pair((96, 200), seed=1, nucleus_radius=5.0)


def test_auto_sizes_crops_and_depth_for_the_images(narrow):
    model = p2p.train(*narrow, **FAST)
    c = model.config
    assert (c.patch_size, c.depth, c.base_channels) == ((64, 64), 4, 32)
    recipe = model.history["recipe"]
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
    recipe = model.history["recipe"]
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
