"""The best model of a run, not only the last: validation scores are compared as the
run goes, the weights of the best are kept aside (on the CPU), and a run that has
stopped improving can end early. Held-out scores peak before the end when a network
overfits a few fields of view; the last step is then not the model to keep."""

from __future__ import annotations

import math

import torch

METRICS = {"mae": -1, "pearson_r": 1, "ssim": 1, "psnr": 1}  # +1: higher is better


class BestKeeper:
    """Tracks ``metric`` over validations; ``patience``: validations without
    improvement after which the run should stop (None: never)."""

    def __init__(self, metric: str, patience: int | None, history: dict) -> None:
        self.metric, self.sign, self.patience = metric, METRICS[metric], patience
        self.history = history
        self.weights: dict[str, torch.Tensor] | None = None
        self.stale = 0

    @property
    def best(self) -> dict | None:
        """{'step', 'metric', 'value', 'metrics'} of the best validation so far."""
        return self.history.get("best")

    def update(self, step: int, metrics: dict, generator: torch.nn.Module) -> bool:
        """Record a validation; True when it is the best so far (its weights are kept)."""
        value = metrics.get(self.metric, math.nan)
        best = self.best
        better = math.isfinite(value) and (best is None or self.sign * (value - best["value"]) > 0)
        if not better:
            self.stale += 1
            return False
        self.stale = 0
        self.history["best"] = {
            "step": step,
            "metric": self.metric,
            "value": float(value),
            "metrics": dict(metrics),
        }
        self.weights = {
            k: v.detach().to("cpu", copy=True) for k, v in generator.state_dict().items()
        }
        return True

    def restore(self, best: dict | None, weights: dict | None) -> None:
        """Continue a resumed run's record (its best weights, when they were kept)."""
        if best is not None and weights is not None and best.get("metric") == self.metric:
            self.history["best"], self.weights = best, weights

    @property
    def exhausted(self) -> bool:
        return self.patience is not None and self.stale >= self.patience

    def keep_best(self, generator: torch.nn.Module) -> bool:
        """Load the best weights into ``generator``; False when there are none."""
        if self.weights is None:
            return False
        generator.load_state_dict(self.weights)
        return True
