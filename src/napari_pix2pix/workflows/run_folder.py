"""What a run leaves in its folder besides the checkpoint: the best model so far
(``best.safetensors``, a model file Predict opens), read back when the run resumes, and
the options it runs with (``run_config.yaml``, loadable by ``--config``)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from ..config import Pix2PixConfig
from ..io.checkpoint import BEST_NAME
from ..io.model_file import Pix2PixModel, load_model
from ..io.run_config import section_options, write_resolved_config
from ..options import options_of
from ..run_options import TrainingRun


def save_best(folder, model: Pix2PixModel, weights: dict) -> None:
    """The best model so far as a model file beside the checkpoint (Predict opens it):
    ``model`` (its config, history, input profile, error calibration) with the best
    ``weights``. Its network is built without drawing from the run's random numbers."""
    with torch.random.fork_rng(devices=[]):
        best = Pix2PixModel(
            model.config,
            history=copy.deepcopy(model.history),
            input_profile=model.input_profile,
            error_calibration=model.error_calibration,
        )
    best.generator.load_state_dict(weights)
    best.history.kept = "best"
    best.save(Path(folder) / BEST_NAME, overwrite=True)


def best_weights(folder) -> dict | None:
    """A resumed run's best weights so far, from its run folder (None if absent)."""
    path = Path(folder) / BEST_NAME if folder is not None else None
    if path is None or not path.is_file():
        return None
    with torch.random.fork_rng(devices=[]):  # the resumed run's random state is set
        return load_model(path, device="cpu").generator.state_dict()


def save_run_config(folder, config: Pix2PixConfig, run: TrainingRun) -> None:
    """The run's options with every value explicit (the recipe's choices, a resumed
    run's time budget), as a ``train:`` section: ``--config`` trains the same way."""
    keywords = {o.keyword for o in section_options("train")}
    values = {
        o.keyword: getattr(options, o.name)
        for options in (config, run)
        for o in options_of(type(options))
        if o.keyword in keywords
    }
    write_resolved_config(folder, values)
