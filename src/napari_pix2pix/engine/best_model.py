"""The model a run keeps, not only its last step: validation scores are compared as the
run goes, the weights of the chosen validation are kept aside (on the CPU), and a run
that has stopped improving can end early. Held-out scores peak before the end when a
network overfits a few fields of view; the last step is then not the model to keep.

Why not simply the lowest MAE: pixel scores always prefer the blurrier of two
otherwise equal models, so "most accurate" is the L1 solution that the adversarial term
exists to improve on (docs/quality.md: the most accurate validation of a 20-minute run
on the shared DAPI field came at the end of the adversarial ramp and was blurrier than
L1 alone, spectral distance 0.37 against 0.25). So with a cGAN the kept model is the
*sharpest* validation (lowest spectral distance to the target) among those at the
adversarial term's full weight whose score is within TOLERANCE of the most accurate of
them. Both are recorded: ``history.best`` is the kept one, ``history.most_accurate``
the one with the best score over all validations (``keep="accurate"`` returns it)."""

from __future__ import annotations

import math

import torch

from .run_history import RunHistory, ValidationRecord

METRICS = {"mae": -1, "pearson_r": 1, "ssim": 1, "psnr": 1}  # +1: higher is better
# How far a sharper validation may trail the most accurate one and still be kept:
# within the +-0.03 in r that neighbouring validations of one run move by
# (docs/quality.md), a twentieth of MAE, half a dB of PSNR.
TOLERANCE = {"mae": 0.05, "pearson_r": 0.02, "ssim": 0.02, "psnr": 0.5}
RELATIVE = {"mae"}  # tolerances that are a share of the score, not a difference


class BestKeeper:
    """Tracks ``metric`` over validations; ``patience``: validations without a more
    accurate score after which the run should stop (None: never). ``sharp``: choose the
    kept model by sharpness within TOLERANCE (with a cGAN), else by the score alone."""

    def __init__(self, metric: str, patience: int | None, history: RunHistory, sharp: bool = True):
        self.metric, self.sign, self.patience = metric, METRICS[metric], patience
        self.history, self.sharp = history, sharp
        self.weights: dict[str, torch.Tensor] | None = None  # of history.best
        self.accurate_weights: dict[str, torch.Tensor] | None = None
        self.anchor: float | None = None  # the best score among competing validations
        self.kept_competes = False
        self.stale = 0

    @property
    def best(self) -> ValidationRecord | None:
        """The kept validation so far."""
        return self.history.best

    def update(
        self, step: int, metrics: dict, generator: torch.nn.Module, competes: bool = True
    ) -> bool:
        """Record a validation; True when it becomes the kept one (its weights are kept).
        ``competes``: False while the adversarial term is below full weight (the model
        is still mostly an L1 model): it can only be kept until one that competes comes."""
        value = metrics.get(self.metric, math.nan)
        if not math.isfinite(value):
            self.stale += 1
            return False
        record = ValidationRecord(step, self.metric, float(value), dict(metrics))
        accurate = self.history.most_accurate
        if accurate is None or self._better(value, accurate.value):
            self.stale = 0
            self.history.most_accurate = record
            self.accurate_weights = _copy(generator)
        else:
            self.stale += 1
        if not self._keeps(value, metrics, competes):
            return False
        self.history.best, self.kept_competes = record, competes
        self.weights = (
            self.accurate_weights if self.history.most_accurate is record else _copy(generator)
        )
        return True

    def _keeps(self, value: float, metrics: dict, competes: bool) -> bool:
        """Whether this validation replaces the kept one."""
        kept = self.best
        if competes and (self.anchor is None or self._better(value, self.anchor)):
            self.anchor = value
        if kept is None:
            return True
        if not self.sharp:
            return self._better(value, kept.value)
        if not competes:  # kept only while nothing at full weight has been validated
            return not self.kept_competes and self._better(value, kept.value)
        if not self.kept_competes or not self._within(kept.value):
            return self._within(value)
        if not self._within(value):
            return False
        mine, theirs = metrics.get("spectral", math.nan), kept.metrics.get("spectral", math.nan)
        if math.isfinite(mine) and math.isfinite(theirs):
            return mine < theirs
        return self._better(value, kept.value)

    def _better(self, value: float, than: float) -> bool:
        return self.sign * (value - than) > 0

    def _within(self, value: float) -> bool:
        """Whether ``value`` trails the anchor by no more than the tolerance."""
        tolerance = TOLERANCE[self.metric]
        if self.metric in RELATIVE:
            tolerance *= abs(self.anchor)
        return self.sign * (self.anchor - value) <= tolerance

    def restore(self, best: ValidationRecord | None, weights: dict | None) -> None:
        """Continue a resumed run's record (its kept weights, when they were saved). The
        most accurate validation's weights are not saved in the run folder: when it is
        another validation than the kept one, keep="accurate" can return only one
        validated after the resume (or the kept one)."""
        if best is None or weights is None or best.metric != self.metric:
            return
        self.history.best, self.weights, self.kept_competes = best, weights, True
        self.anchor = best.value
        accurate = self.history.most_accurate or best
        self.history.most_accurate = accurate
        if accurate.step == best.step:
            self.accurate_weights = weights
        elif accurate.metric == self.metric:
            self.anchor = accurate.value

    @property
    def exhausted(self) -> bool:
        return self.patience is not None and self.stale >= self.patience

    def keep_best(self, generator: torch.nn.Module, which: str = "best") -> str | None:
        """Load the kept (``which="best"``) or the most accurate (``"accurate"``)
        validation's weights into ``generator``; what was loaded ("best", "accurate"),
        or None when there are none."""
        if which == "accurate" and self.accurate_weights is not None:
            generator.load_state_dict(self.accurate_weights)
            return "accurate"
        if self.weights is None:
            return None
        generator.load_state_dict(self.weights)
        return "best"


def _copy(generator: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in generator.state_dict().items()}
