"""``train`` and ``train_iter``: from the user's images (arrays or paths, one pair or
several) and options to a trained Pix2PixModel. They resolve the inputs and options,
resume from a checkpoint, fit the normalization, then drive the engine's training loop
and write its checkpoints."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch

from ..config import Pix2PixConfig
from ..engine.best_model import BestKeeper
from ..engine.device import amp_dtype
from ..engine.events import FinishedEvent, TrainingEvent, ValidationEvent, WarningEvent
from ..engine.input_profile import build_profile
from ..engine.lazy import LazySample
from ..engine.loop import train_loop
from ..engine.memory import available_memory, device_memory
from ..engine.normalization import Normalization
from ..engine.prefetch import Prefetcher, crop_workers
from ..engine.run_history import RunHistory
from ..engine.sampling import PairedPatchSampler
from ..engine.schedule import Budget
from ..engine.trainer import Trainer, check_training_memory
from ..engine.validation_examples import ValidationExamples
from ..errors import ModelFileError, TrainingError
from ..io.checkpoint import save_checkpoint
from ..io.model_file import Pix2PixModel
from ..io.run_log import RunLog
from ..options import options_doc
from ..run_options import TrainingRun
from .error_map import calibrate_at_end
from .interrupts import StepsFinish
from .run_folder import best_weights, save_best, save_run_config
from .run_report import report_or_warn
from .run_setup import RunSetup, set_up_run
from .starting_point import init_record
from .training_data import make_sampler


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
    setup = set_up_run(source, target, axes, target_axes, (val_source, val_target), options)
    with setup.lock or contextlib.nullcontext():  # the run folder is this run's until it ends
        yield from _run(setup)


def _run(setup: RunSetup) -> Iterator[TrainingEvent]:
    run, config, split, ckpt = setup.run, setup.config, setup.split, setup.ckpt
    init_model, checkpoint_dir = setup.init_model, setup.checkpoint_dir
    rank, world, dev = setup.rank, setup.world, setup.device
    in_memory = [s.shape for s, _ in split.train if not isinstance(s, LazySample)]
    gpu = device_memory(dev) if dev.type == "cuda" else None  # else: the same RAM
    check_training_memory(config, in_memory, available_memory(), gpu)
    if config.seed is not None:
        torch.manual_seed(config.seed)
    sampler = make_sampler(split, config, rank)
    history = ckpt.history if ckpt is not None else RunHistory(device=str(dev), recipe=setup.recipe)
    # what it trains on: the same as the checkpoint's, unless resume_other_data said other
    history.split, history.train_pairs = split.description, split.train_pairs
    history.val_pairs, history.pixel_size = split.val_pairs, split.pixel_sizes
    history.data = setup.data
    history.time_budget = run.time_budget  # a resumed run ends when this one would
    if init_model is not None:
        history.init_model = init_record(init_model, setup.init_source)
    model = Pix2PixModel(config, history=history)
    if rank == 0:  # now, so every model the run saves (best, rescued, final) carries it
        model.input_profile = input_profile(split, config)
    if init_model is not None:  # before the trainer moves (and perhaps wraps) it
        model.generator.load_state_dict(init_model.generator.state_dict())
    trainer = Trainer(config, model.generator, dev, amp_dtype(dev, config.amp), world)
    if config.seed is not None and rank > 0 and ckpt is None:
        # the weights are rank 0's (DDP broadcast them); dropout masks are each rank's own
        torch.manual_seed(config.seed + rank)
    # L1 alone has no adversarial sharpness to keep: its kept model is its most accurate
    keeper = BestKeeper(run.val_metric, run.patience, history, sharp=config.gan_mode != "none")
    if ckpt is not None:
        _restore(trainer, sampler, ckpt, rank)
        keeper.restore(history.best, best_weights(checkpoint_dir))
    cuda = dev.type == "cuda"
    feed = Prefetcher(sampler, config.batch_size, pin=cuda, workers=crop_workers(dev.type))
    budget = Budget(config.steps, run.time_budget, run.val_every, history.train_seconds)
    log = None
    if checkpoint_dir is not None and rank == 0:
        log = RunLog(checkpoint_dir, None if ckpt is None else ckpt.step)
        _or_warn("the run's config", lambda: save_run_config(checkpoint_dir, config, run))

    def checkpoint(step: int) -> None:
        state = dict(trainer_state=trainer.state(), sampler_state=feed.state())
        _or_warn(
            "the checkpoint",
            lambda: save_checkpoint(
                checkpoint_dir, config=config, step=step, history=model.history, **state
            ),
        )
        if log is not None:  # the log as far as the checkpoint, whatever happens next
            _or_warn("the run log", log.flush)

    # what the run report (written at the end, into the run folder) shows
    examples = ValidationExamples() if checkpoint_dir is not None and rank == 0 else None
    start = 0 if ckpt is None else ckpt.step
    events = train_loop(
        model,
        trainer,
        feed,
        split,
        start=start,
        budget=budget,
        keeper=keeper,
        keep=run.keep,
        checkpoint_every=run.checkpoint_every,
        checkpoint=checkpoint if checkpoint_dir is not None else None,
        rank=rank,
        examples=examples,
    )
    ended = False  # the run ended or was stopped (not failed): its report is due
    stopped = calibrated = False  # the error map (error_map.py): at the end or the stop
    try:
        for note in setup.notes:
            yield WarningEvent(step=ckpt.step, total=config.steps, model=model, message=note)
        while True:
            with StepsFinish():  # Ctrl-C, SIGTERM: after this step, then its checkpoint
                event = next(events, None)
                if event is not None and log is not None:
                    _or_warn("the run log", lambda: log.write(event))
                    if isinstance(event, ValidationEvent) and event.best:
                        best = (checkpoint_dir, model, keeper.weights)
                        _or_warn("the best model so far", lambda: save_best(*best))
            if event is None:
                break
            if isinstance(event, FinishedEvent) and rank == 0:  # the kept model is chosen
                for note in calibrate_at_end(model, split, dev, checkpoint_dir, keeper.weights):
                    yield WarningEvent(
                        step=event.step, total=event.total, model=model, message=note
                    )
                calibrated = True
            try:
                yield event
            except GeneratorExit:  # the consumer stopped the run (the Train widget's Stop)
                stopped = True
                raise
        ended = True
    except (GeneratorExit, KeyboardInterrupt):  # stopped: Stop, Ctrl-C, SIGTERM
        # not calibrated after Ctrl-C or SIGTERM (raised here by StepsFinish): the 8-fold
        # pass can take tens of seconds, and a batch system's kill follows its SIGTERM
        ended = True
        raise
    except TrainingError as exc:
        if checkpoint_dir is None:
            raise
        raise TrainingError(f"{exc} The last checkpoint in {checkpoint_dir} is intact.") from exc
    finally:
        events.close()  # stopped early: the checkpoint of the last whole step (train_loop)
        feed.close()
        trained = model.history.steps_done > (0 if ckpt is None else ckpt.step)
        if stopped and not calibrated and rank == 0 and trained:
            # a stopped run's kept model (events.close() chose it) is calibrated too
            for note in calibrate_at_end(model, split, dev, checkpoint_dir, keeper.weights):
                warnings.warn(note, stacklevel=2)
        if log is not None:
            _or_warn("the run log", log.close)
        if ended and examples is not None and model.history.steps_done > start:
            report_or_warn(checkpoint_dir, model, split, examples)


def input_profile(split, config: Pix2PixConfig) -> dict:
    """What the training sources look like (engine/input_profile.py), for predict to
    tell an image unlike them: a few hundred tiles of the training part, in the model's
    normalized units (a second or so for large multi-channel data)."""
    sources = [source for source, _ in split.train]
    norm = Normalization.of(config, "source")
    return build_profile(sources, norm, tuple(config.patch_size), split.pixel_sizes or None)


def _restore(trainer: Trainer, sampler: PairedPatchSampler, ckpt, rank: int) -> None:
    """A checkpoint's states into the new run (its schema was checked when read)."""
    try:
        trainer.load_state(ckpt.trainer)
        sampler.set_state(_sampler_state(ckpt, rank))
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, OverflowError) as exc:
        raise ModelFileError(
            f"the checkpoint {str(ckpt.path)!r} cannot be restored ({exc}); "
            "resume from an earlier copy, or start a new run."
        ) from exc


def _sampler_state(ckpt, rank: int) -> dict:
    """Where the crop stream goes on: the checkpoint's batch, on every rank with its own
    seed but rank 0's. A checkpoint from before crops were keyed by batch (its state is
    RandomStates) goes on at the batch of its step, with other crops than it would have."""
    state = ckpt.sampler if "batch" in ckpt.sampler else {"batch": ckpt.step}
    return state if rank == 0 else {"batch": state["batch"]}


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
        progress: optional callable receiving every event. Without one, the run's
            warnings (WarningEvent: options a resumed run does not use, data it goes on
            with, a collapsed generator, misaligned pairs...) are issued as Python
            warnings, so that a script sees them.
    """
    model = None
    events = train_iter(
        source, target, axes, target_axes, val_source=val_source, val_target=val_target, **options
    )
    try:
        for event in events:
            if progress is not None:
                progress(event)
            elif isinstance(event, WarningEvent):
                warnings.warn(event.message, stacklevel=2)
            model = event.model
    finally:  # Ctrl-C in ``progress``: the checkpoint is written now, not when collected
        events.close()
    return model


train.__doc__ += options_doc(Pix2PixConfig, TrainingRun)


def _or_warn(what: str, write) -> None:
    """A run folder that fills up or goes away must not end the run: the model is in
    memory, and train saves it (or rescues it) at the end."""
    try:
        write()
    except OSError as exc:  # OutputError included
        warnings.warn(
            f"{what} could not be written ({exc}); training goes on, and the trained model "
            "is saved at the end as asked.",
            stacklevel=2,
        )
