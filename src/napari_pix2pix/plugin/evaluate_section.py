"""The Predict widget's Evaluate section: a held-out target layer for the chosen image,
and what the model scores on it. Users must judge a model before trusting it."""

from __future__ import annotations

from magicgui.widgets import Container, Label, PushButton

from ..engine.display_text import METRIC_NAMES, metric_text
from .layer_picker import LayerPicker
from .scrolling import wrap

TARGET_LABEL = "Target (ground truth) / axes"


class EvaluateSection(Container):
    """Target picker, Evaluate button and the scores (the layers go to the viewer)."""

    def __init__(self, viewer) -> None:
        self.target = LayerPicker(viewer, TARGET_LABEL)
        self.target.layer.tooltip = (
            "the ground truth of the image chosen above (e.g. its fluorescence image), "
            "held out of training: not the image itself"
        )
        target_row = Container(widgets=[self.target])  # shows the picker's label
        target_row.margins = (0, 0, 0, 0)
        self.button = PushButton(
            text="Evaluate",
            tooltip="predict the image and score it against this target: MAE, PSNR, SSIM, "
            "Pearson r, with a difference layer and the confidence layer (a prediction "
            "of this image made here with this model and these options is reused)",
        )
        self.scores = Label(value="")
        wrap(self.scores.native)
        title = Label(value="<b>Evaluate</b> on a held-out pair")
        super().__init__(widgets=[title, target_row, self.button, self.scores], labels=False)
        self.margins = (0, 0, 0, 0)

    def show(self, metrics: dict) -> None:
        self.scores.value = ", ".join(
            metric_text(k, v) for k, v in metrics.items() if k in METRIC_NAMES
        )

    def clear(self) -> None:
        """A new evaluation starts (or failed): the last one's scores are not its own."""
        self.scores.value = ""
