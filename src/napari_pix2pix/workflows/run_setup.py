"""Everything a run settles before its first step: the options checked, a checkpoint or
model to start from, the data opened and split, the recipe fitted to the data and the
device. ``train_iter`` goes on from here; ``plan_run`` stops here to say what a run
would do, so both see the same recipe."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..config import Pix2PixConfig
from ..engine import distributed
from ..engine.device import resolve_device
from ..engine.metrics import SSIM_MIN_SIDE
from ..engine.split import Split
from ..errors import InputError
from ..io.checkpoint import (
    Checkpoint,
    check_checkpoint_dir,
    checkpoint_path,
    claim_run_folder,
    load_checkpoint,
)
from ..io.model_file import Pix2PixModel
from ..io.run_lock import RunLock
from ..options import split_options
from ..run_options import TrainingRun
from .data_identity import check_same_data
from .starting_point import (
    fit_recipe,
    ignored_on_resume,
    init_config,
    load_init_model,
    run_config,
)
from .training_data import prepare_data

BUDGET_STEPS = 10**7  # the step cap of a run limited by time


@dataclass
class RunSetup:
    run: TrainingRun
    config: Pix2PixConfig
    split: Split
    ckpt: Checkpoint | None
    init_model: Pix2PixModel | None
    init_source: str | None
    recipe: dict | None  # what the preset chose (None: the checkpoint's or model's)
    notes: list[str]  # what the user should know before the first step
    checkpoint_dir: Path | None  # the run's, or the resumed checkpoint's folder
    device: torch.device
    rank: int
    world: int
    data: dict  # the identity of the data (data_identity.py), for the run's history
    lock: RunLock | None  # the run folder's, held until the run ends


def check_run_options(options: dict, axes=None, target_axes=None) -> None:
    """Raise InputError for options that cannot make a run, as ``train`` would before it
    reads any data (clashes such as a patch that 2**depth does not divide included): a
    form can check every change at once. A run from a checkpoint or a model takes part
    of its config from there and is only checked by ``train``."""
    options = dict(options)
    if options.get("init_model") is not None or options.get("resume") is not None:
        return
    model_options, run_options = split_options(options, Pix2PixConfig, TrainingRun)
    run_config(None, model_options, axes, target_axes, TrainingRun(**run_options).preset)


def set_up_run(
    source, target, axes, target_axes, val, options: dict, planning: bool = False
) -> RunSetup:
    """The run ``train_iter(source, target, axes, target_axes, **options)`` would do;
    ``planning``: only say so (no run folder made or locked, torchrun's process group
    left alone). The run folder is locked before anything else (``setup.lock``, released
    by the caller when the run ends, or here when the setup fails)."""
    init = options.get("init_model")
    if isinstance(init, Pix2PixModel):  # in memory; a path is checked like any option
        options = {k: v for k, v in options.items() if k != "init_model"}
    model_options, run_options = split_options(options, Pix2PixConfig, TrainingRun)
    run = TrainingRun(**run_options)
    if run.init_model is not None:
        init = run.init_model
    if init is not None and run.resume is not None:
        raise InputError(
            "init_model and resume exclude each other: resume continues a run (its model "
            "is in the checkpoint); init_model starts a new run from a trained model."
        )
    folder = run.checkpoint_dir
    if folder is None and run.resume is not None and checkpoint_path(run.resume).parent.is_dir():
        folder = checkpoint_path(run.resume).parent
    lock = None
    if folder is not None and not planning and distributed.launch_rank() == 0:
        lock = claim_run_folder(folder)
    try:
        inputs = (source, target, axes, target_axes, val)
        return _set_up(*inputs, run, model_options, init, planning, lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _set_up(
    source, target, axes, target_axes, val, run, model_options, init, planning, lock
) -> RunSetup:
    ckpt = load_checkpoint(run.resume) if run.resume is not None else None
    if ckpt is not None and run.time_budget is None:
        run = replace(run, time_budget=_resumed_budget(ckpt))
    if run.time_budget is not None:  # the budget ends the run; steps only caps it
        model_options.setdefault("steps", BUDGET_STEPS)
    given = dict(model_options)
    init_model, init_source = load_init_model(init)
    if init_model is not None:
        config = init_config(init_model, model_options)
    else:
        config = run_config(ckpt, model_options, axes, target_axes, run.preset)
    unused = ignored_on_resume(ckpt, given) if ckpt is not None else ""
    folder = run.checkpoint_dir
    if folder is None and ckpt is not None:
        folder = ckpt.path.parent
    if folder is not None and not planning:  # checked now, not when the first checkpoint is due
        check_checkpoint_dir(folder, ckpt.path if ckpt is not None else None)
    dev = resolve_device(run.device)
    rank, world, dev = (0, 1, dev) if planning else distributed.setup(dev)
    config, split, identity = prepare_data(
        source, target, axes, target_axes, config, ckpt, val, init_model
    )
    _check_validation_size(split, run.val_metric, val[0] is not None)
    notes = [unused] if unused else []
    if ckpt is not None:
        notes.append(check_same_data(ckpt.history.data, identity, run.resume_other_data, folder))
    recipe = None
    if ckpt is None and init_model is None:  # else the network is the model's
        # timed on rank 0 alone and shared, so every rank builds the same network
        chosen = fit_recipe(config, split, given, run, dev) if rank == 0 else None
        config, recipe = distributed.agree_object(chosen)
    return RunSetup(
        run,
        config,
        split,
        ckpt,
        init_model,
        init_source,
        recipe,
        [note for note in notes if note],
        folder,
        dev,
        rank,
        world,
        identity,
        lock,
    )


def _resumed_budget(ckpt: Checkpoint) -> float | None:
    """A resumed run keeps the time budget it was started with (its total, time already
    spent included): without it, a run limited by time would never end."""
    budget = ckpt.history.time_budget  # checked when the checkpoint was read
    if budget is not None:
        return float(budget)
    if ckpt.config.steps >= BUDGET_STEPS:  # written before budgets were recorded
        raise InputError(
            f"the run in {str(ckpt.path.parent)!r} was limited by time, and its checkpoint "
            "does not say how long: give time_budget= in seconds (CLI: --time-budget in "
            "minutes) for the whole run, the "
            f"{ckpt.history.train_seconds:.0f} s already trained included."
        )
    return None


def _check_validation_size(split: Split, metric: str, given: bool) -> None:
    """SSIM needs SSIM_MIN_SIDE px along every axis of the scored part: a smaller one
    would score every validation NaN, and no model could be kept by it."""
    if metric != "ssim" or not split.val:
        return
    side = min(min(s[..., split.val_context :].shape[1:]) for s, _ in split.val)
    if side < SSIM_MIN_SIDE:
        more = "larger validation images" if given else "a larger val_fraction or more pairs"
        raise InputError(
            f"val_metric='ssim' needs a validation part at least {SSIM_MIN_SIDE} px along "
            f"every axis, and this one is {side} px: use {more}, or another val_metric "
            "('mae', 'pearson_r' or 'psnr')."
        )
