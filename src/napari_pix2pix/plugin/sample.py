"""napari's sample-data contribution: the simulated phase-contrast / nuclei pair."""

from __future__ import annotations

from ..engine.sample_data import make_pair


def napari_sample():
    """The source/target pair as two layers."""
    source, target = make_pair((512, 512), seed=0)
    return [
        (source, {"name": "phase contrast (source)", "colormap": "gray"}),
        (
            target,
            {"name": "nuclei fluorescence (target)", "colormap": "cyan", "blending": "additive"},
        ),
    ]
