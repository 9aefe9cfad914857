"""Shared fixtures: a tiny model trained once per session on the simulated pair."""

import importlib.util
import os
import tempfile

# Qt keeps the widgets' settings under XDG_CONFIG_HOME: point it at a throw-away folder
# before Qt is imported, so that no test changes the user's real napari-pix2pix settings.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="napari-pix2pix-test-config-")

import numpy as np
import pytest
import torch
from tiny_options import TINY

import napari_pix2pix as p2p
from napari_pix2pix.engine.sample_data import make_pair


def _has_gui() -> bool:
    """napari and a Qt binding are installed (looked up without importing them)."""
    bindings = ("PyQt6", "PyQt5", "PySide6", "PySide2")
    return importlib.util.find_spec("napari") is not None and any(
        importlib.util.find_spec(b) is not None for b in bindings
    )


# the napari side's tests need napari and a Qt binding; the rest runs headless without them
collect_ignore = [] if _has_gui() else ["plugin"]


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture
def tiny():
    return dict(TINY)


@pytest.fixture(scope="session")
def pair():
    return make_pair((128, 128), seed=1, nucleus_radius=5.0)


@pytest.fixture(scope="session")
def held_out_pair():
    return make_pair((128, 128), seed=2, nucleus_radius=5.0)


@pytest.fixture(scope="session")
def trained(pair):
    """A tiny model trained for 300 steps (about 10 s on 2 cores), with flips and
    rotations only: the default augmentations need more steps than these tests' checks
    of units and tiling allow (augmentation has its own tests in test_datasets.py)."""
    source, target = pair
    plain = dict(augment_flips=0.5, augment_intensity=0, augment_gamma=0, augment_zoom=0)
    plain["augment_elastic"] = 0
    return p2p.train(source, target, axes="YX", steps=300, seed=0, val_every=100, **TINY, **plain)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
