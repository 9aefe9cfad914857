"""What a stored model or checkpoint must hold before anything uses it: a valid config
with its normalization, tensors that match the network it describes, finite weights
and a format this version reads. Shared by model files and checkpoints. (What its
history must hold: engine/run_history.py.)"""

from __future__ import annotations

import torch

from ..config import Pix2PixConfig
from ..engine.axes import check_axes
from ..engine.networks import build_generator, invalid_weights
from ..errors import InputError, ModelFileError


def check_finite_weights(state: dict, source) -> None:
    """NaN or infinite weights, or negative BatchNorm variances, make every prediction
    NaN: such a model (diverged, or damaged) is refused instead of giving NaN images.
    (Also Adam's steps and second moments in a checkpoint: negative, they make NaN.)"""
    what = invalid_weights(state)
    if what:
        raise ModelFileError(
            f"the weights in {str(source)!r} hold {what}: the model is damaged "
            "or its training diverged, and it cannot give valid predictions."
        )


def check_weights(config: Pix2PixConfig, header: dict, source, prefix: str = "") -> None:
    """Compare the tensors the file declares with those the config's network has, on
    the meta device (no memory), before anything is allocated or read: a config that
    does not describe its weights (or describes a network of absurd size) stops here."""
    with torch.device("meta"):
        expected = {
            prefix + k: list(v.shape) for k, v in build_generator(config).state_dict().items()
        }
    declared = {
        k: v.get("shape") if isinstance(v, dict) else None
        for k, v in header.items()
        if k != "__metadata__" and k.startswith(prefix)
    }
    if declared != expected:
        missing = sorted(set(expected) - set(declared))
        wrong = sorted(k for k in set(expected) & set(declared) if expected[k] != declared[k])
        detail = (
            f"missing {missing[:3]}"
            if missing
            else f"wrong shapes for {wrong[:3]}"
            if wrong
            else f"unexpected {sorted(set(declared) - set(expected))[:3]}"
        )
        raise ModelFileError(
            f"the weights in {str(source)!r} do not match the architecture in "
            f"its config ({detail})."
        )


def parse_config(data, path, what: str = "model") -> Pix2PixConfig:
    """A stored config, checked like any other (types, ranges, normalization present)."""
    try:
        config = Pix2PixConfig.from_dict(data)
        for side in ("source", "target"):  # a model's axes were checked on its images
            axes = getattr(config, f"{side}_axes")
            check_axes(axes, len(axes), config.spatial_dims, f"model's {side}")
    except InputError as exc:
        raise ModelFileError(f"the config in {str(path)!r} is invalid: {exc}") from exc
    if not config.normalized:
        raise ModelFileError(f"the config in {str(path)!r} has no normalization parameters.")
    return config


def check_format_version(doc: dict, path, newest: int) -> None:
    version = doc.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{str(path)!r} has an invalid format_version {version!r}.")
    if version > newest:
        raise ModelFileError(
            f"{str(path)!r} was written by a newer napari-pix2pix (format "
            f"{version}, this version reads up to {newest}); upgrade "
            "napari-pix2pix to open it."
        )
