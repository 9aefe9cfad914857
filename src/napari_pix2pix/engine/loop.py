"""The one training loop: a generator of progress events, so that a script, the CLI and
the napari widget (in a worker thread) all drive the same code and can stop it between
any two steps. What it trains on and where checkpoints go is decided by its caller
(workflows/training.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np

from . import distributed
from .events import FinishedEvent, StepEvent, TrainingEvent, ValidationEvent, WarningEvent
from .inference import TiledPredictor
from .metrics import image_metrics
from .normalization import Normalization
from .sampling import PairedPatchSampler, Split
from .trainer import Trainer

COLLAPSE_RATIO = 0.25  # prediction std below this fraction of the target's: collapse


def train_loop(
    model,
    trainer: Trainer,
    sampler: PairedPatchSampler,
    split: Split,
    *,
    start: int = 0,
    val_every: int | None = None,
    checkpoint_every: int | None = None,
    checkpoint: Callable[[int], None] | None = None,
    rank: int = 0,
) -> Iterator[TrainingEvent]:
    """Train ``model`` (config, generator, history) from step ``start`` to
    ``config.steps``, yielding an event after every step and validation.

    ``checkpoint(step)`` is called every ``checkpoint_every`` steps (default: with each
    validation), at the end, and when the consumer stops iterating early (closing the
    generator), so that the run can be resumed from where it stopped."""
    config, history = model.config, model.history
    total = config.steps
    val_every = val_every or max(1, total // 10)
    checkpoint_every = checkpoint_every or val_every
    log_every = max(1, total // 1000)
    validator = _Validator(model, trainer, split)
    save = checkpoint if checkpoint is not None and rank == 0 else (lambda step: None)
    for note in _notes(config, split):
        yield WarningEvent(step=start, total=total, model=model, message=note)

    started = time.perf_counter()
    base_seconds = history.get("train_seconds", 0.0)
    step, finished, collapse_said = start, False, False
    window: dict[str, list[float]] = {}
    try:
        model.generator.train()
        for step in range(start + 1, total + 1):
            src, tgt = (
                t.to(trainer.device, non_blocking=True) for t in sampler.batch(config.batch_size)
            )
            losses = trainer.step(src, tgt, step)
            history["steps_done"] = step
            history["train_seconds"] = base_seconds + time.perf_counter() - started
            for k, v in losses.items():
                window.setdefault(k, []).append(v)
            if step % log_every == 0 or step == total:
                history["losses"].setdefault("step", []).append(step)
                for k, vs in window.items():
                    history["losses"].setdefault(k, []).append(float(np.mean(vs)))
                window.clear()
            yield StepEvent(
                step=step,
                total=total,
                model=model,
                losses=losses,
                lr=trainer.lr(step),
                elapsed=time.perf_counter() - started,
            )
            validating = step % val_every == 0 or step == total
            if validating or step % checkpoint_every == 0:
                distributed.sync_buffers(model.generator)
            if validating and rank == 0 and split.val:
                event = validator(step)
                yield event
                ratio = event.metrics["std_ratio"]
                if ratio < COLLAPSE_RATIO and step >= max(total // 4, 50) and not collapse_said:
                    collapse_said = True
                    yield WarningEvent(
                        step=step,
                        total=total,
                        model=model,
                        message=_collapse_message(config, step, ratio),
                    )
            if step % checkpoint_every == 0 and step < total:
                save(step)
        save(total)
        finished = True
        model.generator.eval()
        yield FinishedEvent(step=total, total=total, model=model)
    except GeneratorExit:
        # The consumer stopped early: keep what was trained, resumable from a checkpoint.
        if not finished and step > start and history["steps_done"] == step:
            save(step)
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
        )

    def __call__(self, step: int) -> ValidationEvent:
        preds = [self.predictor.predict_sample(src) for src, _ in self.split.val]
        targets = [tgt.astype(np.float32) for _, tgt in self.split.val]
        scores = [image_metrics(p[None], t[None], self.target_norm) for p, t in zip(preds, targets)]
        metrics = {k: _finite_mean([s[k] for s in scores]) for k in scores[0]}
        # how much of the target's variation the prediction reproduces; near 0 means the
        # generator has collapsed to a flat output (a GAN failure on sparse targets)
        metrics["std_ratio"] = float(
            np.mean([p.std() for p in preds])
            / max(float(np.mean([t.std() for t in targets])), 1e-12)
        )
        self.history["validation"].append({"step": step, **metrics})
        self.history["final_metrics"] = metrics
        total = self.model.config.steps
        return ValidationEvent(
            step=step,
            total=total,
            model=self.model,
            metrics=metrics,
            preview=_preview(preds[0]),
            preview_target=_preview(targets[0]),
            preview_source=_preview(self.split.val[0][0].astype(np.float32)),
        )


def _notes(config, split: Split) -> list[str]:
    """Warnings about the data that the run goes on with."""
    notes = []
    small = [
        s.shape[1:]
        for s, _ in split.train
        if any(n < p for n, p in zip(s.shape[1:], config.patch_size))
    ]
    if small:
        notes.append(
            f"training image(s) of size {small[0]} are smaller than patch_size "
            f"{config.patch_size} and were reflect-padded; a smaller patch_size (with a "
            "smaller depth) would use the data better."
        )
    if split.val and min(split.val[0][0].shape[1:]) < 11:
        notes.append(
            f"the validation part is only {min(split.val[0][0].shape[1:])} px wide, too "
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


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _preview(array: np.ndarray, size: int = 256) -> np.ndarray:
    """Centre crop (first channel; middle slice for 3D) of a (C, *spatial) array."""
    x = array[0]
    if x.ndim == 3:
        x = x[x.shape[0] // 2]
    starts = [max(0, (n - size) // 2) for n in x.shape]
    return np.ascontiguousarray(x[starts[0] : starts[0] + size, starts[1] : starts[1] + size])
