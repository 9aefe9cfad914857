"""``export_bioimageio`` and ``export_onnx`` for a model object or a saved model's path."""

from __future__ import annotations

from pathlib import Path

from ..io.bioimageio import export_bioimageio as _export
from ..io.model_file import as_model
from ..io.onnx_export import export_onnx as _export_onnx


def export_bioimageio(model, path, **kwargs) -> Path:
    """Write ``model`` (a Pix2PixModel or a model path) as a bioimage.io model zip; the
    keyword arguments are those of ``napari_pix2pix.io.bioimageio.export_bioimageio``."""
    return _export(as_model(model), path, **kwargs)


def export_onnx(model, path, *, overwrite: bool = False) -> Path:
    """Write ``model``'s generator (a Pix2PixModel or a model path) as one ONNX file, the
    normalization in its metadata (``napari_pix2pix.io.onnx_export``; needs
    ``pip install "napari-pix2pix[onnx]"``)."""
    return _export_onnx(as_model(model), path, overwrite=overwrite)
