"""``train`` and ``train_iter``: from the user's images (arrays or paths, one pair or
several) and options to a trained Pix2PixModel. They resolve the inputs and options,
resume from a checkpoint, fit the normalization, then drive the engine's training loop
and write its checkpoints."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import torch

from ..config import Pix2PixConfig
from ..engine import distributed
from ..engine.best_model import BestKeeper
from ..engine.device import amp_dtype, resolve_device
from ..engine.events import TrainingEvent, ValidationEvent
from ..engine.lazy import LazySample, loaded
from ..engine.loop import train_loop
from ..engine.memory import device_memory
from ..engine.networks import build_generator
from ..engine.normalization import Normalization
from ..engine.pairs import prepare_pairs
from ..engine.recipes import depth_for, fit_patch_to_data, pick_width, preset_options
from ..engine.sampling import (
    MAX_VAL_SAMPLES,
    Augmentations,
    PairedPatchSampler,
    Split,
    split_train_val,
)
from ..engine.schedule import Budget
from ..engine.trainer import Trainer, check_training_memory
from ..errors import InputError, ModelFileError, TrainingError
from ..io.checkpoint import Checkpoint, check_checkpoint_dir, load_checkpoint, save_checkpoint
from ..io.datasets import open_pairs, pair_inputs
from ..io.model_file import Pix2PixModel, load_model
from ..io.run_log import RunLog
from ..options import options_doc, options_of, split_options
from ..run_options import TrainingRun

BEST_NAME = "best.safetensors"  # the best model so far, in the run folder
BUDGET_STEPS = 10**7  # the step cap of a run limited by time


def train_iter(
    source,
    target,
    axes: str | None = None,
    target_axes: str | None = None,
    *,
    val_source=None,
    val_target=None,
    **options,
) -> Iterator[TrainingEvent]:
    """Train a pix2pix model, yielding an event after every step and validation.

    Arguments as for ``train``. The generator stops cleanly when the consumer stops
    iterating (closing it); ``event.model`` is then the model trained so far, and with
    ``checkpoint_dir`` a checkpoint of that state is written so ``resume`` can go on.
    """
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
    if run.time_budget is not None:  # the budget ends the run; steps only caps it
        model_options.setdefault("steps", BUDGET_STEPS)
    ckpt = load_checkpoint(run.resume) if run.resume is not None else None
    given = dict(model_options)
    init_model, init_source = _init_model(init)
    if init_model is not None:
        config = _init_config(init_model, model_options)
    else:
        config = _config(ckpt, model_options, axes, target_axes, run.preset)
    checkpoint_dir = (
        run.checkpoint_dir if run.checkpoint_dir is not None or ckpt is None else ckpt.path.parent
    )
    if checkpoint_dir is not None:  # checked now, not when the first checkpoint is due
        check_checkpoint_dir(checkpoint_dir, ckpt.path if ckpt is not None else None)
    rank, world, dev = distributed.setup(resolve_device(run.device))
    config, split = _data(
        source, target, axes, target_axes, config, ckpt, (val_source, val_target), init_model
    )
    recipe = None
    if ckpt is None and init_model is None:  # else the network is the model's
        config, recipe = _fit_recipe(config, split, given, run, dev)
    in_memory = [s.shape for s, _ in split.train if not isinstance(s, LazySample)]
    check_training_memory(config, in_memory, device_memory(dev))
    if config.seed is not None:
        torch.manual_seed(config.seed)
    sampler = _sampler(split, config, rank)
    history = (
        ckpt.history
        if ckpt is not None
        else {
            "steps_done": 0,
            "losses": {},
            "validation": [],
            "split": split.description,
            "train_pairs": split.train_pairs,
            "val_pairs": split.val_pairs,
            "train_seconds": 0.0,
            "device": str(dev),
            "recipe": recipe,
        }
    )
    if init_model is not None:
        history["init_model"] = _init_record(init_model, init_source)
    model = Pix2PixModel(config, history=history)
    if init_model is not None:  # before the trainer moves (and perhaps wraps) it
        model.generator.load_state_dict(init_model.generator.state_dict())
    trainer = Trainer(config, model.generator, dev, amp_dtype(dev, config.amp), world)
    keeper = BestKeeper(run.val_metric, run.patience, history)
    if ckpt is not None:
        _restore(trainer, sampler, ckpt, rank)
        keeper.restore(history.get("best"), _best_weights(checkpoint_dir))
    budget = Budget(config.steps, run.time_budget, run.val_every, history["train_seconds"])

    def checkpoint(step: int) -> None:
        save_checkpoint(
            checkpoint_dir,
            config=config,
            step=step,
            history=model.history,
            trainer_state=trainer.state(),
            sampler_state=sampler.state(),
        )

    log = None
    if checkpoint_dir is not None and rank == 0:
        log = RunLog(checkpoint_dir, None if ckpt is None else ckpt.step)
    try:
        for event in train_loop(
            model,
            trainer,
            sampler,
            split,
            start=0 if ckpt is None else ckpt.step,
            budget=budget,
            keeper=keeper,
            keep=run.keep,
            checkpoint_every=run.checkpoint_every,
            checkpoint=checkpoint if checkpoint_dir is not None else None,
            rank=rank,
        ):
            if log is not None:
                log.write(event)
                if isinstance(event, ValidationEvent) and event.best:
                    _save_best(checkpoint_dir, config, model.history, keeper.weights)
            yield event
    except TrainingError as exc:
        if checkpoint_dir is None:
            raise
        raise TrainingError(f"{exc} The last checkpoint in {checkpoint_dir} is intact.") from exc
    finally:
        if log is not None:
            log.close()


def _fit_recipe(config: Pix2PixConfig, split: Split, given: dict, run, dev):
    """The auto preset's choices that need the data and the device: crops no larger
    than the images, and with a time budget the widest network that still gets enough
    steps in it (timed here). Returns the config and what was chosen, and why."""
    why = []
    if run.preset == "auto" and "patch_size" not in given:
        sides = [min(s.shape[1:]) for s, _ in split.train]
        side = fit_patch_to_data(min(sides), config.spatial_dims)
        depth = config.depth if "depth" in given else depth_for(side)
        if side < config.patch_size[0] and side % 2**depth == 0:
            config = config.replace(patch_size=(side,) * config.spatial_dims, depth=depth)
            why.append(f"patch {side}: the smallest image is {min(sides)} px")
    if run.preset == "auto" and run.time_budget and "base_channels" not in given:
        with torch.random.fork_rng(devices=[]):
            width, reason = pick_width(
                config,
                dev,
                0.9 * run.time_budget,
                lambda c: Trainer(c, build_generator(c), dev, amp_dtype(dev, c.amp)),
            )
        config = config.replace(base_channels=width)
        why.append(reason)
    chosen = {k: getattr(config, k) for k in ("patch_size", "depth", "base_channels", "batch_size")}
    return config, {"preset": run.preset, **chosen, "why": "; ".join(why)}


def _save_best(folder, config: Pix2PixConfig, history: dict, weights: dict) -> None:
    """The best model so far as a model file beside the checkpoint (Predict opens it).
    Its network is built without drawing from the run's random numbers."""
    with torch.random.fork_rng(devices=[]):
        best = Pix2PixModel(config, history=copy.deepcopy(history))
    best.generator.load_state_dict(weights)
    best.history["kept"] = "best"
    best.save(Path(folder) / BEST_NAME, overwrite=True)


def _best_weights(folder) -> dict | None:
    """A resumed run's best weights so far, from its run folder (None if absent)."""
    path = Path(folder) / BEST_NAME if folder is not None else None
    if path is None or not path.is_file():
        return None
    with torch.random.fork_rng(devices=[]):  # the resumed run's random state is set
        return load_model(path, device="cpu").generator.state_dict()


def _data(
    source, target, axes, target_axes, config: Pix2PixConfig, ckpt, val=(None, None), init=None
):
    """The checked pairs, split, with the config's channels, axes and normalization
    filled in (a resumed run keeps its own; a fine-tuned model its own, the images' axes
    only describing the images). Files are opened lazily: training reads them box by
    box."""
    if (val[0] is None) != (val[1] is None):
        raise InputError("give both val_source and val_target, or neither.")
    inputs = pair_inputs(source, target)
    given_axes = (
        axes if ckpt is None else config.source_axes,
        target_axes if ckpt is None else config.target_axes,
    )
    pairs, s_axes, t_axes, groups = prepare_pairs(
        *open_pairs(inputs), *given_axes, config.spatial_dims
    )
    channels = (pairs[0][0].shape[0], pairs[0][1].shape[0])
    if ckpt is None and init is None:
        config = config.replace(
            source_axes=s_axes,
            target_axes=t_axes,
            in_channels=channels[0],
            out_channels=channels[1],
        )
    elif channels != (config.in_channels, config.out_channels):
        raise InputError(
            f"the images have {channels[0]} -> {channels[1]} channels but the "
            f"{'checkpoint' if ckpt is not None else 'init_model'}'s model has "
            f"{config.in_channels} -> {config.out_channels}."
        )
    names = [p.name for p in inputs]
    if val[0] is not None:
        split = _given_validation(pairs, names, val, given_axes, config, channels)
    else:
        split = split_train_val(pairs, config.val_fraction, groups=groups, names=names)
    if not config.normalized:
        config = config.replace(
            **Normalization.fit(
                [s for s, _ in split.train], config.percentiles, "source"
            ).config_fields("source"),
            **Normalization.fit(
                [t for _, t in split.train], config.percentiles, "target"
            ).config_fields("target"),
        )
    return config, split


def _given_validation(pairs, names, val, given_axes, config, channels) -> Split:
    """All pairs train; the validation pairs are the ones given (read into memory, at
    most MAX_VAL_SAMPLES samples)."""
    inputs = pair_inputs(*val, what="validation")
    val_pairs, *_ = prepare_pairs(
        *open_pairs(inputs),
        given_axes[0] or config.source_axes,
        given_axes[1] or config.target_axes,
        config.spatial_dims,
    )
    if (val_pairs[0][0].shape[0], val_pairs[0][1].shape[0]) != channels:
        raise InputError(
            "the validation images have another number of channels than the training images."
        )
    val_names = [p.name for p in inputs]
    return Split(
        pairs,
        [(loaded(s), loaded(t)) for s, t in val_pairs[:MAX_VAL_SAMPLES]],
        f"validation pairs given: {', '.join(val_names)}",
        names,
        val_names,
    )


def _sampler(split, config: Pix2PixConfig, rank: int) -> PairedPatchSampler:
    """Crops of the training part, read and normalized crop by crop; every rank draws
    its own (same weights, other crops)."""
    return PairedPatchSampler(
        split.train,
        config.patch_size,
        seed=None if config.seed is None else config.seed + 1000 * rank,
        foreground=config.foreground_crops,
        normalization=(Normalization.of(config, "source"), Normalization.of(config, "target")),
        augment=Augmentations.of(config),
    )


def _restore(trainer: Trainer, sampler: PairedPatchSampler, ckpt, rank: int) -> None:
    """A checkpoint's states into the new run (its schema was checked when read)."""
    try:
        trainer.load_state(ckpt.trainer)
        if rank == 0:  # other ranks keep their own crop stream
            sampler.set_state(ckpt.sampler)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, OverflowError) as exc:
        raise ModelFileError(
            f"the checkpoint {str(ckpt.path)!r} cannot be restored ({exc}); "
            "resume from an earlier copy, or start a new run."
        ) from exc


def train(
    source,
    target,
    axes: str | None = None,
    target_axes: str | None = None,
    *,
    val_source=None,
    val_target=None,
    progress=None,
    **options,
) -> Pix2PixModel:
    """Train pix2pix on aligned (source, target) pairs and return the model.

    Args:
        source, target: arrays (uint8/uint16/int16/float...) or TIFF paths, lists of
            them for several pairs, or two folders whose image files pair up by name
            (``a.tif`` with ``a.tif`` or ``a.ome.tif``). Files are read crop by crop, so
            memory does not grow with the dataset.
        val_source, val_target: validation pairs given like source and target (all
            training pairs then train); default: ``val_fraction`` of the pairs (whole
            pairs when there are several) is held out.
        axes / target_axes: dimension letters (T, Z, C, Y, X), e.g. "YX", "CYX", "ZYX";
            default: from the file, "YX" for 2D arrays; target_axes defaults to axes
            where the target has as many dimensions.
        progress: optional callable receiving every event.
    """
    model = None
    events = train_iter(
        source, target, axes, target_axes, val_source=val_source, val_target=val_target, **options
    )
    for event in events:
        if progress is not None:
            progress(event)
        model = event.model
    return model


train.__doc__ += options_doc(Pix2PixConfig, TrainingRun)


def _config(
    ckpt: Checkpoint | None, options: dict, axes, target_axes, preset: str
) -> Pix2PixConfig:
    """The run's config: a resumed run's own (longer if more steps are asked for), else
    the options given over the preset's choices over the defaults."""
    if ckpt is not None:
        steps = options.get("steps")
        return ckpt.config.replace(steps=max(steps or 0, ckpt.config.steps))
    options.update(preset_options(preset, options, options.get("spatial_dims", 2)))
    if axes is not None:
        options["source_axes"] = axes
    if target_axes or axes:
        options["target_axes"] = target_axes or axes  # refined from the data in train_iter
    return Pix2PixConfig(**options)


# what a fine-tuned model takes from the model it starts from; giving another value is
# refused (the weights would not fit, or would no longer mean what they meant)
KEPT_FROM_INIT = ("spatial_dims", "depth", "base_channels", "norm", "dropout", "percentiles")


def _init_model(init) -> tuple[Pix2PixModel | None, str | None]:
    """The model to fine-tune (loaded on the CPU, any format load_model reads) and how
    the new model's history names it."""
    if init is None:
        return None, None
    if isinstance(init, Pix2PixModel):
        if not init.config.normalized:
            raise InputError("init_model has no normalization parameters (was it trained?).")
        return init, "<in-memory model>"
    return load_model(init, device="cpu"), str(init)


def _init_config(init: Pix2PixModel, options: dict) -> Pix2PixConfig:
    """A fine-tuning run's config: the model's (architecture, channels, axes,
    normalization and, unless given, its recipe) with the recipe options given."""
    base = init.config
    declared = {o.name: o for o in options_of(Pix2PixConfig)}
    conflicts = []
    for name in KEPT_FROM_INIT:
        if name in options and declared[name].check(options[name]) != getattr(base, name):
            conflicts.append(f"{declared[name].keyword}={options[name]!r}")
    for name in ("source_axes", "target_axes"):
        options.pop(name, None)  # the images' axes (train's axes=) describe only them
    if conflicts:
        kept = ", ".join(f"{declared[n].keyword}={getattr(base, n)!r}" for n in KEPT_FROM_INIT)
        raise InputError(
            f"init_model fixes the architecture and normalization; {', '.join(conflicts)} "
            f"differ(s) from the model's ({kept}). Leave them out, or train a new model "
            "without init_model."
        )
    try:
        return base.replace(**options)
    except InputError as exc:
        raise InputError(f"{exc} (with init_model, depth is the model's: {base.depth})") from exc


def _init_record(init: Pix2PixModel, source: str) -> dict:
    """Where a fine-tuned model started: the model's source and its own steps (and
    where that one started, if it was fine-tuned too)."""
    record = {"source": source, "steps_done": init.history.get("steps_done", 0)}
    if isinstance(init.history.get("init_model"), dict):
        record["init_model"] = init.history["init_model"]
    return record
