"""The one training loop: a generator of progress events, so that a script, the CLI and
the napari widget (in a worker thread) all drive the same code and can stop it between
any two steps. What it trains on and where checkpoints go is decided by its caller
(workflows/training.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np

from ..errors import TrainingError
from . import distributed
from .alignment import misalignment_warning, validation_shift
from .best_model import BestKeeper
from .events import FinishedEvent, StepEvent, TrainingEvent, ValidationEvent, WarningEvent
from .inference import TiledPredictor
from .loss_log import LossLog
from .metrics import SSIM_MIN_SIDE, image_metrics, spectral_distance_nd
from .networks import invalid_weights
from .normalization import Normalization
from .prefetch import Prefetcher
from .run_history import RunHistory, Validation
from .sampling import PairedPatchSampler
from .schedule import Budget, adversarial_weight
from .split import Split
from .trainer import Trainer
from .validation_examples import Example, ValidationExamples, crop_2d

COLLAPSE_RATIO = 0.25  # prediction std below this fraction of the target's: collapse
# a kept model this flat or this poorly correlated is weak: on held-out data, working runs
# of the shared field, MR 2D/3D and the synthetic task had a pred/target std of 0.65-1.38
# and r 0.56-0.998, collapsed or starved ones 0.21-0.43 and 0.13-0.35 (docs/quality.md)
WEAK_STD_RATIO = 0.6
WEAK_R = 0.5


def train_loop(
    model,
    trainer: Trainer,
    sampler: PairedPatchSampler | Prefetcher,  # what .batch(n) gives the crops
    split: Split,
    *,
    start: int = 0,
    budget: Budget | None = None,
    keeper: BestKeeper | None = None,
    keep: str = "best",
    checkpoint_every: int | None = None,
    checkpoint: Callable[[int], None] | None = None,
    rank: int = 0,
    examples: ValidationExamples | None = None,
) -> Iterator[TrainingEvent]:
    """Train ``model`` (config, generator, history) from step ``start`` until the
    ``budget`` (steps, and time if given) is spent or ``keeper`` says validation has
    stopped improving, yielding an event after every step and validation. With
    ``keep="best"`` the model ends with the weights of its kept validation, with
    ``keep="accurate"`` with those of its most accurate one (best_model.py).

    ``checkpoint(step)`` is called every ``checkpoint_every`` steps (default: with each
    validation), at the end, and when the consumer stops iterating early (closing the
    generator), so that the run can be resumed from where it stopped. ``examples``
    keeps what the run report shows of the validations (validation_examples.py)."""
    config, history = model.config, model.history
    budget = budget or Budget(config.steps, None, None)
    keeper = keeper or BestKeeper("mae", None, history)
    log = LossLog(history, config.steps, timed=bool(budget.seconds))
    validator = _Validator(model, trainer, split)
    write = checkpoint if checkpoint is not None and rank == 0 else (lambda step: None)

    def save(step: int) -> None:
        """A checkpoint, once the weights are known to be valid (a diverged network can
        keep finite losses while its BatchNorm statistics overflow)."""
        what = invalid_weights(model.generator.state_dict())
        if what:
            raise TrainingError(
                f"training diverged by step {step}: the generator's weights hold {what}. "
                "Check the inputs for extreme values, or lower the learning rate (lr=...)."
            )
        write(step)

    for note in data_notes(config, split):
        yield WarningEvent(step=start, total=budget.steps, model=model, message=note)

    step, finished, collapse_said, shift_said = start, False, False, False

    def validate(step: int, last: bool = False) -> Iterator[TrainingEvent]:
        nonlocal collapse_said, shift_said
        began = time.perf_counter()
        event = validator(step, budget.expected_total(step))
        # before the adversarial term is at full weight the model is still mostly an L1
        # model (best_model.py); the run's last validation always competes
        competes = (
            last
            or step == budget.steps
            or adversarial_weight(budget.progress(step), config.gan_warmup) >= 1.0
        )
        event.best = keeper.update(step, event.metrics, model.generator, competes)
        if examples is not None:  # the kept and the last for the run report
            chosen = {r.step for r in (history.best, history.most_accurate) if r is not None}
            example = Example(step, event.preview_source, event.preview, event.preview_target)
            examples.add(example, validator.last[0], chosen)
        budget.validated(time.perf_counter() - began)
        yield event
        ratio = event.metrics["std_ratio"]
        late = budget.progress(step) >= 0.25 and step >= 50
        if ratio < COLLAPSE_RATIO and late and not collapse_said:
            collapse_said = True
            yield WarningEvent(
                step=step,
                total=event.total,
                model=model,
                message=_collapse_message(config, step, ratio),
            )
        if late or last:  # by then the predictions have the target's structure
            shift, uncertainty = validation_shift(*validator.last)
            history.validation_shift = {
                "step": step,
                "shift": list(shift),
                "uncertainty": uncertainty,
            }
            message = misalignment_warning(shift, uncertainty)
            if message and not shift_said:
                shift_said = True
                yield WarningEvent(step=step, total=event.total, model=model, message=message)

    try:
        model.generator.train()
        validated, stop = False, False
        for step in range(start + 1, budget.steps + 1):
            # every rank decides alike: rank 0's clock and stop request (schedule.py)
            if budget.tick(stop) or (step > start + 1 and budget.time_is_up()):
                step -= 1
                break
            src, tgt = (
                t.to(trainer.device, non_blocking=True) for t in sampler.batch(config.batch_size)
            )
            log.add(trainer.step(src, tgt, step, budget.progress(step)))
            budget.stepped()
            history.steps_done = step
            history.train_seconds = budget.elapsed()
            validated = budget.validation_due(step) or step == budget.steps
            every = checkpoint_every or budget.val_every
            kept = validated or bool(every and step % every == 0)  # validated or saved
            # the losses are read (a wait for the device) only when an entry is due, and
            # before the weights are scored or saved: a NaN stops the run before that
            logged = (log.due(step) or kept) and log.write(step)
            total = budget.expected_total(step)
            yield StepEvent(
                step=step,
                total=total,
                model=model,
                losses=log.latest,
                logged=logged,
                lr=trainer.lr(budget.progress(step)),
                elapsed=budget.elapsed() - budget.spent,
            )
            if kept:
                distributed.sync_buffers(model.generator)
            if validated and rank == 0 and split.val:
                yield from validate(step)
                if keeper.exhausted:  # every rank stops at the next tick
                    history.stopped = f"no better {keeper.metric} in {keeper.patience} validations"
                    stop = True
            if (
                not stop
                and step < budget.steps
                and (
                    (checkpoint_every and step % checkpoint_every == 0)
                    or (not checkpoint_every and validated)
                )
            ):
                save(step)
        if step > start and not validated and split.val:
            distributed.sync_buffers(model.generator)  # a collective: every rank
            if rank == 0:
                yield from validate(step, last=True)  # the run's last state is always scored
        log.write(step)  # stopped between two entries (time, patience): none lost
        save(step)
        finished = True
        history.kept = (keep != "last" and keeper.keep_best(model.generator, keep)) or "last"
        distributed.sync_weights(model.generator)  # rank 0's kept weights, on every rank
        model.generator.eval()
        weak = _weak_message(config, history, step)
        if weak:
            yield WarningEvent(step=step, total=step, model=model, message=weak)
        yield FinishedEvent(step=step, total=step, model=model)
    except GeneratorExit:
        # The consumer stopped early: keep what was trained, resumable from a checkpoint.
        if not finished and step > start and history.steps_done == step:
            log.write(step, check=False)
            if not invalid_weights(model.generator.state_dict()):
                write(step)
            if keep != "last":
                history.kept = keeper.keep_best(model.generator, keep) or "last"
        raise
    finally:
        model.generator.eval()


class _Validator:
    """Scores the held-out part with the one tiled prediction path."""

    def __init__(self, model, trainer: Trainer, split: Split) -> None:
        config = model.config
        self.model, self.split, self.history = model, split, model.history
        self.target_norm = Normalization.of(config, "target")
        self.predictor = TiledPredictor(
            model.generator,
            Normalization.of(config, "source"),
            self.target_norm,
            config.multiple,
            config.patch_size,
            0.25,
            config.batch_size,
            trainer.device,
            trainer.dtype,
            memory_format=trainer.memory_format,
        )

    def __call__(self, step: int, total: int) -> ValidationEvent:
        c = self.split.val_context  # context columns: predicted, not scored
        preds = [self.predictor.predict_sample(src)[..., c:] for src, _ in self.split.val]
        targets = [tgt[..., c:].astype(np.float32) for _, tgt in self.split.val]
        scores = [image_metrics(p[None], t[None], self.target_norm) for p, t in zip(preds, targets)]
        metrics = {k: _finite_mean([s[k] for s in scores]) for k in scores[0]}
        # how far the prediction's texture is from the target's (blur shows here, not
        # in MAE): what the kept model is chosen by among equally accurate ones
        metrics["spectral"] = _finite_mean(
            [spectral_distance_nd(p, t) for p, t in zip(preds, targets)]
        )
        # how much of the target's variation the prediction reproduces; near 0 means the
        # generator has collapsed to a flat output (a GAN failure on sparse targets)
        metrics["std_ratio"] = float(
            np.mean([p.std() for p in preds])
            / max(float(np.mean([t.std() for t in targets])), 1e-12)
        )
        self.last = (preds, targets)  # for the alignment check (alignment.py)
        self.history.validation.append(Validation(step, dict(metrics)))
        self.history.final_metrics = metrics
        return ValidationEvent(
            step=step,
            total=total,
            model=self.model,
            metrics=metrics,
            preview=crop_2d(preds[0]),
            preview_target=crop_2d(targets[0]),
            preview_source=crop_2d(self.split.val[0][0][..., c:].astype(np.float32)),
        )


def data_notes(config, split: Split) -> list[str]:
    """Warnings about the data that the run goes on with (said by plan_run before the
    run too, so that the form shows them before Start)."""
    notes = []
    small = [
        s.shape[1:]
        for s, _ in split.train
        if any(n < p for n, p in zip(s.shape[1:], config.patch_size))
    ]
    if small:
        held = (
            f" (val_fraction={config.val_fraction:g} holds out most of the data: a smaller "
            "one leaves more to train on)"
            if config.val_fraction >= 0.5 and split.val
            else ""
        )
        notes.append(
            f"training image(s) of size {small[0]} are smaller than patch_size "
            f"{config.patch_size} and were reflect-padded{held}; a smaller patch_size (with "
            "a smaller depth) would use the data better."
        )
    scored = split.val[0][0][..., split.val_context :].shape[1:] if split.val else ()
    if split.val and min(scored) < SSIM_MIN_SIDE:
        notes.append(
            f"the validation part is only {min(scored)} px wide, too "
            "small for SSIM (reported as NaN); use a larger val_fraction or more images."
        )
    return notes


def _collapse_message(config, step: int, ratio: float) -> str:
    advice = (
        "train longer, or check that source and target are aligned"
        if config.gan_mode == "none"
        else "try a longer gan_warmup, a larger lambda_l1 or gan_mode='none' (L1 only), and "
        "check that source and target are aligned"
    )
    return (
        f"the predictions are nearly flat at step {step}: their variation is {ratio:.0%} "
        f"of the target's (a collapsed generator); {advice}."
    )


def _weak_message(config, history: RunHistory, steps: int) -> str | None:
    """What to tell the user when the model the run ends with is flat or poorly
    correlated on its validation (None when it is not, or was not validated)."""
    kept = history.kept
    if kept in ("best", "accurate"):
        record = history.kept_record()
        step, metrics = (record.step, record.metrics) if record else (None, {})
    else:
        last = history.validation[-1] if history.validation else None
        step, metrics = (last.step, last.metrics) if last else (None, {})
    if step != steps and kept == "last":
        return None  # the last weights were not the ones validated
    ratio, r = metrics.get("std_ratio", np.nan), metrics.get("pearson_r", np.nan)
    flat, poor = ratio < WEAK_STD_RATIO, r < WEAK_R
    if not (flat or poor):
        return None
    said = [f"validation r {r:.2f}"] + (
        [f"its predictions vary {ratio:.0%} as much as the target (flat)"] if flat else []
    )
    return (
        f"the model kept (step {step:,} of {steps:,}) is weak: {', '.join(said)}. More "
        "training pairs, a longer time_budget (or more steps), a smaller network "
        f"(base_channels, depth) or a larger lambda_l1 (now {config.lambda_l1:g}) usually "
        "help; check too that source and target are aligned."
    )


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
