"""The report at the end of every run that has a run folder (``report.html`` and
``report.json``, io/report_page.py): the model card, the learning curves, the kept
model's held-out scores next to two baselines (engine/held_out.py), and the validation
examples of the kept and the last validation.

It is written after the run's checkpoint, also when the run was stopped (Stop, Ctrl-C,
its time budget, early stopping), and it never costs the model: a report that fails
is a warning (``report_or_warn``). The kept model's predictions of the validation part
and the example crops come from the validations themselves (engine/loop.py keeps them
in a ValidationExamples), so the report adds no prediction but where the kept
validation came before a resume (then the validation part is predicted once more)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from ..engine.held_out import Baselines, held_out_scores
from ..engine.inference import make_predictor
from ..engine.normalization import Normalization
from ..engine.split import Split
from ..engine.validation_examples import Example, ValidationExamples, crop_2d
from ..io.checkpoint import checkpoint_path
from ..io.report_page import REPORT_NAME, write_report
from ..run_options import PredictOptions


def write_run_report(
    folder, model, split: Split, examples: ValidationExamples | None = None
) -> Path:
    """Write the report of ``model`` (its history, card and kept weights) trained on
    ``split`` into the run ``folder``; the path of ``report.html``."""
    began = time.perf_counter()
    history = model.history
    kept = history.kept_record()
    kept_step = kept.step if kept is not None else _last_weights_step(history)
    examples = examples or ValidationExamples()
    report = {
        "run_folder": str(Path(folder).resolve()),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "steps_done": history.steps_done,
        "kept": history.kept or "last",
        "kept_step": kept_step,
        "card": model.card(),
        "notes": _notes(history),
        "curves": {
            "losses": history.losses,
            "validation": [v.to_dict() for v in history.validation],
        },
        "held_out": None,
        "held_out_absent": "",
    }
    shown = []
    if not split.val:
        report["held_out_absent"] = "no validation part (val_fraction=0): nothing was held out."
    else:
        c = split.val_context  # training columns predicted as context, never scored
        sources = [np.asarray(s[..., c:], np.float32) for s, _ in split.val]
        targets = [np.asarray(t[..., c:], np.float32) for _, t in split.val]
        predictions = examples.predictions.get(kept_step) if kept_step is not None else None
        kept_example = examples.examples.get(kept_step) if kept_step is not None else None
        if predictions is None:  # validated before a resume, or never: predicted now
            predictions = _predict(model, split)
        if kept_example is None:
            kept_example = Example(
                kept_step, *(crop_2d(a) for a in (sources[0], predictions[0], targets[0]))
            )
        report["held_out"] = held_out_scores(
            sources,
            predictions,
            targets,
            Normalization.of(model.config, "target"),
            Baselines.fit(split.train),
        )
        shown.append((_title(history, kept_step), kept_example))
        last = examples.examples.get(examples.latest) if examples.latest is not None else None
        if last is not None and last.step != kept_step:
            shown.append((f"Last validation, step {last.step:,}", last))
    report["report_seconds"] = round(time.perf_counter() - began, 3)
    return write_report(folder, report, shown)


def report_or_warn(folder, model, split: Split, examples: ValidationExamples | None) -> Path | None:
    """``write_run_report``, or a warning that says why not: the report must never end a
    run or cost its model (which is saved after it), whatever went wrong in it."""
    try:
        return write_run_report(folder, model, split, examples)
    except Exception as exc:  # anything: the model matters more than its report
        warnings.warn(
            f"the run report could not be written ({type(exc).__name__}: {exc}); the model "
            "and the checkpoint are not affected.",
            stacklevel=2,
        )
        return None


def report_of_run(checkpoint_dir=None, resume=None, since: float = 0.0) -> Path | None:
    """The report a run (its ``checkpoint_dir``, else the folder of what it resumed)
    wrote at or after ``since`` (``time.time()`` at its start; the second before too,
    for file systems that keep whole seconds), None when it wrote none."""
    if checkpoint_dir is not None:
        folder = Path(checkpoint_dir).expanduser()
    elif resume is not None:
        folder = checkpoint_path(resume).parent
    else:
        return None
    path = folder / REPORT_NAME
    try:
        return path.resolve() if path.stat().st_mtime >= since - 1.0 else None
    except OSError:
        return None


def _last_weights_step(history) -> int | None:
    """The step whose weights a model that holds its last weights has, when a
    validation scored them (None when the last validation came before the end)."""
    last = history.validation[-1] if history.validation else None
    return last.step if last is not None and last.step == history.steps_done else None


def _title(history, step: int | None) -> str:
    if history.kept == "best":
        what = "Kept model (the sharpest of the nearly most accurate validations)"
    elif history.kept == "accurate":
        what = "Kept model (the most accurate validation)"
    else:
        what = "The model's last weights"
    return f"{what}, step {step:,}" if step is not None else what


def _notes(history) -> list[str]:
    notes = []
    if history.split:
        notes.append(f"Validation part: {history.split}.")
    if history.stopped:
        notes.append(f"Stopped early: {history.stopped}.")
    return notes


def _predict(model, split: Split) -> list[np.ndarray]:
    """The validation part predicted by ``model`` as validation predicts it (its
    patch-sized tiles, overlap 0.25), on the device its generator is on."""
    device = next(model.generator.parameters()).device
    predictor = make_predictor(model, PredictOptions(device=str(device), fuse=False))
    c = split.val_context
    return [predictor.predict_sample(np.asarray(s))[..., c:] for s, _ in split.val]
