"""A model as the engine holds it: the generator, the config that describes it (network,
axes, normalization) and what is known about it (the run's history, and optionally the
profile of the inputs it was trained on and the calibration of its error estimate), with
the summary and card a person reads. Its file form (save, load_model, bytes) is
io/model_file.py's, whose ``Pix2PixModel`` (the one ``napari_pix2pix`` exports) adds
those methods to this class."""

from __future__ import annotations

import torch

from ..config import Pix2PixConfig
from .display_text import METRIC_NAMES, duration_text, metric_text, pixel_size_text
from .error_calibration import calibration_text
from .input_profile import input_profile_text
from .networks import build_generator
from .run_history import RunHistory


class Pix2PixModel:
    """A trained generator with the config that describes it.

    Attributes:
        generator: the torch U-Net (eval mode after loading).
        config: the Pix2PixConfig (architecture, axes, normalization, recipe).
        history: the RunHistory: losses, validation metrics, steps done, timings (a
            dict in its stored form is read as such, malformed entries dropped).
        input_profile: what the training inputs looked like (plain data), to tell an
            image unlike them; None when absent (a model trained before it was recorded).
        error_calibration: how the prediction's spread maps to its expected error
            (plain data); None when absent.
    """

    def __init__(
        self,
        config: Pix2PixConfig,
        generator: torch.nn.Module | None = None,
        history: RunHistory | dict | None = None,
        input_profile: dict | None = None,
        error_calibration: dict | None = None,
    ) -> None:
        self.config = config
        self.generator = generator if generator is not None else build_generator(config)
        if isinstance(history, dict):
            history = RunHistory.from_dict(history, "the history given")
        self.history = history if history is not None else RunHistory()
        self.input_profile = input_profile
        self.error_calibration = error_calibration

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Pix2PixModel({c.in_channels}->{c.out_channels} channels, {c.spatial_dims}D, "
            f"axes {c.source_axes!r}->{c.target_axes!r}, depth {c.depth}, "
            f"steps done {self.history.steps_done})"
        )

    def summary(self) -> dict:
        """What a user wants to see before applying the model."""
        c = self.config
        return {
            "channels": f"{c.in_channels} -> {c.out_channels}",
            "source axes": c.source_axes,
            "target axes": c.target_axes,
            "spatial dims": c.spatial_dims,
            "patch size": list(c.patch_size),
            "depth": c.depth,
            "gan mode": c.gan_mode,
            "steps trained": self.history.steps_done,
            "final validation": self.history.final_metrics,
            "error calibration": calibration_text(self.error_calibration),
            "input profile": "present" if self.input_profile else "absent",
        }

    def card(self) -> list[str]:
        """The summary as lines a person reads (the Predict widget's model card)."""
        c, h = self.config, self.history
        dims = f"{c.spatial_dims}D"
        lines = [
            f"{c.in_channels} -> {c.out_channels} channel(s), {c.source_axes} -> "
            f"{c.target_axes}, {dims}"
        ]
        side = c.patch_size[0]
        recipe = (h.recipe or {}).get("preset")
        lines.append(
            f"U-Net depth {c.depth}, {c.base_channels} channels, {side} px crops, "
            f"{c.gan_mode if c.gan_mode != 'none' else 'L1 only'}"
            + (f" ({recipe} recipe)" if recipe else "")
        )
        trained = f"{h.steps_done:,} steps"
        if h.train_seconds:
            trained += f" in {duration_text(h.train_seconds)}"
        if h.device:
            trained += f" on {h.device}"
        best = h.kept_record()
        if best:
            which = "kept" if h.kept == "best" else "most accurate"
            trained += f"; holds the {which} validation ({best.metric}), step {best.step}"
        lines.append("Trained: " + trained)
        metrics = (best.metrics if best else None) or h.final_metrics
        if metrics:
            shown = [metric_text(k, v) for k, v in metrics.items() if k in METRIC_NAMES]
            lines.append("Validation: " + ", ".join(shown))
        if h.pixel_size:
            lines.append("Pixel size trained at: " + "; ".join(map(pixel_size_text, h.pixel_size)))
        lines.append(input_profile_text(self.input_profile))
        lines.append("Error calibration: " + calibration_text(self.error_calibration))
        return lines
