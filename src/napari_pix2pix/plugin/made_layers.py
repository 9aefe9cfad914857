"""What the Predict widget made from each image layer, and with what: so that Evaluate
scores the prediction already on screen instead of predicting again, Predict does not
add a "[1]" copy of a prediction it already shows, and a new prediction goes into the
layers of the old one."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def same_options(options: dict) -> dict:
    """What makes two predictions of one layer the same: every option but the
    confidence map (the prediction is the plain one either way), if_exists and out."""
    return {k: v for k, v in options.items() if k not in ("uncertainty", "if_exists", "out")}


@dataclass
class Made:
    """The layers made from one source layer and what made them: the prediction is
    reused only for the same data, model and options."""

    source: object  # the napari layer
    data: object  # its data when predicted
    model: object
    options: dict  # same_options of the run
    axes: str  # the prediction's
    layers: dict[str, list] = field(default_factory=dict)  # role -> [(layer, its data)]
    warnings: list[str] = field(default_factory=list)  # said when it was predicted

    def alive(self, viewer, role: str) -> list | None:
        """The role's layers, while all are in the viewer with the data put there."""
        pairs = self.layers.get(role)
        if not pairs or any(lyr not in viewer.layers or lyr.data is not d for lyr, d in pairs):
            return None
        return [lyr for lyr, _ in pairs]

    def array(self, viewer, role: str, channel_axis: int | None):
        layers = self.alive(viewer, role)
        if layers is None:
            return None
        if channel_axis is None:
            return np.asarray(layers[0].data)
        return np.stack([np.asarray(lyr.data) for lyr in layers], axis=channel_axis)

    def same_as(self, new: Made, viewer) -> bool:
        """``new`` would predict what this record's prediction layers still show."""
        return (
            self.model is new.model
            and self.data is new.data
            and self.options == new.options
            and self.alive(viewer, "prediction") is not None
        )


class MadeLayers:
    """One record per source layer in ``viewer``."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.records: list[Made] = []

    def of(self, layer) -> Made | None:
        """The record of what was predicted from ``layer`` (records of layers that left
        the viewer are dropped)."""
        self.records = [m for m in self.records if m.source in self.viewer.layers]
        return next((m for m in self.records if m.source is layer), None)

    def keep(self, made: Made, warnings: list[str]) -> None:
        """Keep ``made``, with the ``warnings`` its prediction gave (a pixel size the
        model was not trained at...): scoring it again says them again."""
        if not made.warnings:  # the prediction's, not what was said of the target
            made.warnings = list(warnings)
        self.records = [m for m in self.records if m.source is not made.source] + [made]

    def made_by_us(self, layer) -> bool:
        """``layer`` is one this widget made (a prediction, spread or difference)."""
        return any(
            layer in [x for x, _ in pairs] for m in self.records for pairs in m.layers.values()
        )
