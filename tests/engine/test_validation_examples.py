"""What a run holds for its report (engine/validation_examples.py): the latest, kept and
most accurate validations, and their predictions only while they are small."""

import numpy as np

from napari_pix2pix.engine import validation_examples
from napari_pix2pix.engine.validation_examples import Example, ValidationExamples


def example(step):
    crop = np.zeros((4, 4), np.float32)
    return Example(step, crop, crop, crop)


def test_only_the_latest_and_kept_validations_are_held(monkeypatch):
    held = ValidationExamples()
    small = [np.zeros((1, 8, 8), np.float32)]
    for step in (10, 20, 30):
        held.add(example(step), small, keep={10})
    assert sorted(held.examples) == sorted(held.predictions) == [10, 30]
    # a validation part too large to hold for the whole run: its crops only (the report
    # predicts it again at the end)
    monkeypatch.setattr(validation_examples, "MAX_BYTES", small[0].nbytes - 1)
    held.add(example(40), small, keep={10})
    assert sorted(held.examples) == [10, 40] and sorted(held.predictions) == [10]
