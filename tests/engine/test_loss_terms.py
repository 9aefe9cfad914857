"""The loss terms are declared once: what a training step reports is exactly what is
declared, and the run log and the plot take their columns, curves and words from it."""

import pytest
import torch
from tiny_options import TINY

from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine.loss_terms import DRAWN_LOSSES, LOSS_NAMES, LOSS_TERMS
from napari_pix2pix.engine.networks import build_generator
from napari_pix2pix.engine.trainer import Trainer
from napari_pix2pix.io.run_log import COLUMNS


@pytest.mark.parametrize(
    "gan_mode, reported",
    [("vanilla", LOSS_NAMES), ("none", ("g_total", "g_l1"))],
)
def test_a_step_reports_the_declared_terms(gan_mode, reported):
    config = Pix2PixConfig(**{k: v for k, v in TINY.items() if k != "device"}, gan_mode=gan_mode)
    trainer = Trainer(config, build_generator(config), torch.device("cpu"), None)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    assert tuple(trainer.step(x, x.clone(), 1, 0.9)) == reported


def test_every_term_has_a_column_and_the_plot_draws_all_but_the_total():
    assert all(name in COLUMNS for name in LOSS_NAMES)
    assert DRAWN_LOSSES == ("g_l1", "g_gan", "d_real", "d_fake")
    assert {t.network for t in LOSS_TERMS} == {"generator", "discriminator"}
    assert all(t.formula.startswith(t.label + ":") for t in LOSS_TERMS)
