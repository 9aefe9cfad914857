"""What a run's report needs from its validations, kept in memory as the run goes: the
example crop of each validation (source, prediction, target: the preview the
validation makes anyway) and its predictions of the whole validation part, while that
validation is the latest, the kept or the most accurate one. The report then shows the
kept and the last validation and scores the kept model without predicting again.

At most three validations are held (latest, kept, most accurate), each the size of the
validation part's predictions (split.py holds out at most MAX_VAL_SAMPLES samples), and
only while they take at most MAX_BYTES: a large validation part (a 3D strip of a big
volume) is predicted once more at the end instead of held for the whole run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_BYTES = 256 * 2**20  # of one validation's predictions held for the report


@dataclass
class Example:
    """One validation's crops (2D, first channel: ``crop_2d``, the preview it shows): the
    source in its units, the prediction and the target in the target's."""

    step: int
    source: np.ndarray
    prediction: np.ndarray
    target: np.ndarray


class ValidationExamples:
    """The examples and predictions of the validations a report may show, by step."""

    def __init__(self) -> None:
        self.examples: dict[int, Example] = {}
        self.predictions: dict[int, list[np.ndarray]] = {}
        self.latest: int | None = None

    def add(self, example: Example, predictions: list[np.ndarray], keep: set) -> None:
        """Record a validation; drop those that are no longer the latest nor in
        ``keep`` (the steps of the kept and the most accurate validations)."""
        self.latest = example.step
        self.examples[example.step] = example
        if sum(p.nbytes for p in predictions) <= MAX_BYTES:
            self.predictions[example.step] = predictions
        wanted = {example.step, *keep}
        for step in [s for s in self.examples if s not in wanted]:
            del self.examples[step]
            self.predictions.pop(step, None)


def crop_2d(array: np.ndarray, size: int = 256) -> np.ndarray:
    """Centre crop (first channel; middle slice for 3D) of a (C, *spatial) array: the
    preview a validation shows and the example a report keeps."""
    x = array[0]
    if x.ndim == 3:
        x = x[x.shape[0] // 2]
    starts = [max(0, (n - size) // 2) for n in x.shape]
    return np.ascontiguousarray(x[starts[0] : starts[0] + size, starts[1] : starts[1] + size])
