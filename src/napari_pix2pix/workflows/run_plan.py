"""What a run will train and for how long, said before it starts: the Train widget
shows it beside Start, and a script can ask before committing a server for hours. It
opens the data and fits the recipe exactly as the run will, then times a few real
steps of the chosen network on this device."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..engine.device import amp_dtype
from ..engine.display_text import duration_text
from ..engine.loop import data_notes
from ..engine.networks import build_generator
from ..engine.recipes import median, step_times
from ..engine.trainer import Trainer
from .run_setup import set_up_run
from .starting_point import recipe_of
from .training_data import batch_seconds


@dataclass(frozen=True)
class RunPlan:
    recipe: dict  # patch_size, depth, base_channels, disc_channels, batch_size, preset
    step_seconds: float  # measured now, on this device: a batch's crops and a step (median)
    steps: int  # the run's steps (about, with a time budget)
    seconds: float  # about how long the run takes (validation not counted without a budget)
    budgeted: bool
    step_range: tuple[float, float] = (0.0, 0.0)  # the fastest and slowest timed step
    most_steps: int = 0  # what ``steps`` allows (a time budget may end the run before)
    notes: tuple[str, ...] = ()  # the warnings the run will start with

    def describe(self) -> str:
        """'auto recipe: depth 5, 16 channels, 128 px crops, batch 4 · 85-110 ms/step ·
        ~550-700 steps in 1 min'."""
        low, high = self.step_range if self.step_range[0] > 0 else (self.step_seconds,) * 2
        spread = high > 1.15 * low  # a range only where the timed steps differ
        ms = f"{self.step_seconds * 1000:.0f}"
        pace = f"{low * 1000:.0f}-{high * 1000:.0f}" if spread else ms
        steps = f"{self.steps:,}"
        if self.budgeted and spread:
            few = min(self.steps, math.floor(self.seconds / high))
            many = min(self.most_steps or self.steps, math.floor(self.seconds / low))
            steps = f"{few:,}-{many:,}"
        return (
            f"{self.recipe_text()} · {pace} ms/step (timed here) · "
            f"{'~' if self.budgeted else ''}{steps} steps in {duration_text(self.seconds)}"
        )

    def recipe_text(self) -> str:
        """'auto recipe: depth 5, 16 channels, 128 px crops, batch 4'."""
        r = self.recipe
        side = r["patch_size"][0] if isinstance(r["patch_size"], list) else r["patch_size"]
        net = f"depth {r['depth']}, {r['base_channels']} channels, {side} px crops"
        return f"{r['preset']} recipe: {net}, batch {r['batch_size']}"


def plan_run(
    source, target, axes=None, target_axes=None, *, val_source=None, val_target=None, **options
) -> RunPlan:
    """The recipe and duration of ``train(source, target, ...)`` with these arguments,
    without training (it takes as long as opening the data and a few steps)."""
    setup = set_up_run(
        source, target, axes, target_axes, (val_source, val_target), options, planning=True
    )
    config, run, dev = setup.config, setup.run, setup.device
    recipe = {**recipe_of(config), **(setup.recipe or {"preset": "the model's"})}
    seconds = recipe.get("ms_per_step", 0) / 1000  # timed with a batch's crops
    span = tuple(v / 1000 for v in recipe.get("ms_per_step_range", (0.0, 0.0)))
    if not seconds:
        generator = build_generator(config)
        trainer = Trainer(config, generator, dev, amp_dtype(dev, config.amp))
        batch = batch_seconds(setup.split, config)
        times = [t + batch for t in step_times(trainer, config)]
        seconds, span = median(times), (times[0], times[-1])
    done = setup.ckpt.step if setup.ckpt is not None else 0
    left = config.steps - done
    notes = (*setup.notes, *data_notes(config, setup.split))
    if run.time_budget:
        spent = setup.ckpt.history.train_seconds if setup.ckpt else 0.0
        total = max(0.0, run.time_budget - spent)
        steps = min(left, math.floor(total / seconds))
        total = min(total, left * seconds)
        return RunPlan(recipe, seconds, steps, total, True, span, left, notes)
    return RunPlan(recipe, seconds, left, left * seconds, False, span, left, notes)
