"""``export_bioimageio`` for a model object or a saved model's path."""

from __future__ import annotations

from pathlib import Path

from ..io.bioimageio import export_bioimageio as _export
from ..io.model_file import as_model


def export_bioimageio(model, path, **kwargs) -> Path:
    """Write ``model`` (a Pix2PixModel or a model path) as a bioimage.io model zip; the
    keyword arguments are those of ``napari_pix2pix.io.bioimageio.export_bioimageio``."""
    return _export(as_model(model), path, **kwargs)
