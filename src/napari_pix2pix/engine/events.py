"""What the training loop yields: a script, the CLI and the napari widget all read the
same events."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(kw_only=True)
class TrainingEvent:
    """Base of what ``train_iter`` yields; ``model`` is the model being trained."""

    step: int
    total: int
    model: object = field(repr=False)


@dataclass(kw_only=True)
class StepEvent(TrainingEvent):
    """After every optimisation step. ``losses`` (g_gan, g_l1, d_real, d_fake, ...): the
    means of the loss log's latest entry (loss_log.py), which this step made when
    ``logged``; between entries an event shows the last one's."""

    losses: dict[str, float]
    logged: bool = True
    lr: float
    elapsed: float


@dataclass(kw_only=True)
class ValidationEvent(TrainingEvent):
    """After each validation: metrics on the held-out part and a small preview (first
    channel, target units) of the prediction, the target and the source."""

    metrics: dict[str, float]
    best: bool = False  # the best validation of the run so far
    preview: np.ndarray = field(repr=False)
    preview_target: np.ndarray = field(repr=False)
    preview_source: np.ndarray = field(repr=False)


@dataclass(kw_only=True)
class WarningEvent(TrainingEvent):
    """Something the user should know about the run (it goes on)."""

    message: str


@dataclass(kw_only=True)
class FinishedEvent(TrainingEvent):
    """Last event: the run ended (its steps or time spent, or early stopping);
    ``model`` is final: the best validation's weights with ``keep="best"``."""
