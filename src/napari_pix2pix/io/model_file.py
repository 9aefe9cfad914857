"""The trained model and its file: safetensors weights plus a JSON document (config,
training history, versions). Loading never unpickles anything.

A path ending in ``.safetensors`` is one self-contained file (the JSON rides in the
safetensors header metadata); any other path is a folder holding ``weights.safetensors``
and a readable ``config.json``. ``load_model`` also opens a bioimage.io package (.zip)
that napari-pix2pix exported, through the model file attached to it (model_zip.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from .._version import __version__
from ..config import Pix2PixConfig
from ..engine.device import resolve_device
from ..engine.networks import build_generator
from ..engine.run_history import RunHistory
from ..errors import InputError, ModelFileError, OutputError, Pix2PixError
from . import bioimageio, checkpoint, model_zip
from .checkpoint import RUN_MODELS
from .metadata import pixel_size_text
from .model_checks import (
    check_finite_weights,
    check_format_version,
    check_weights,
    parse_config,
)
from .output_paths import (
    AtomicFile,
    atomic_write,
    check_input_path,
    check_name_lengths,
    check_output_path,
)
from .safetensors_file import (
    MAX_JSON_BYTES,
    header_document,
    parse_header,
    read_header,
    read_tensors,
    to_bytes,
)

FORMAT = "napari-pix2pix-model"
FORMAT_VERSION = 1


class Pix2PixModel:
    """A trained generator with the config that describes it.

    Attributes:
        generator: the torch U-Net (eval mode after loading).
        config: the Pix2PixConfig (architecture, axes, normalization, recipe).
        history: the RunHistory: losses, validation metrics, steps done, timings (a
            dict in its stored form is read as such, malformed entries dropped).
    """

    def __init__(
        self,
        config: Pix2PixConfig,
        generator: torch.nn.Module | None = None,
        history: RunHistory | dict | None = None,
    ) -> None:
        self.config = config
        self.generator = generator if generator is not None else build_generator(config)
        if isinstance(history, dict):
            history = RunHistory.from_dict(history, "the history given")
        self.history = history if history is not None else RunHistory()

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
        sizes = h.pixel_size
        if sizes:
            lines.append("Pixel size trained at: " + "; ".join(map(pixel_size_text, sizes)))
        return lines

    def document(self) -> dict:
        import monai

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "history": self.history.to_dict(),
            "versions": {
                "napari_pix2pix": __version__,
                "torch": torch.__version__,
                "monai": monai.__version__,
            },
        }

    def to_bytes(self) -> bytes:
        """The single-file model format in memory (to ship to dask workers)."""
        return to_bytes(self.generator.state_dict(), self.document())

    def save(self, path, overwrite: bool = False) -> Path:
        """Write the model atomically: a crash mid-write leaves any previous file intact.
        An existing path is replaced only with ``overwrite``, and only when it holds a
        napari-pix2pix model."""
        path = check_model_output(path, overwrite)
        if path.suffix == ".safetensors":
            atomic_write(path, self.to_bytes(), replace=overwrite)
            return path
        try:
            path.mkdir(exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create the model folder {str(path)!r} ({exc.strerror})."
            ) from exc
        weights = to_bytes(self.generator.state_dict())
        # both written before either replaces anything (a full disk changes nothing); the
        # config names its weights, so a save cut between the two renames is found on load
        doc = {**self.document(), "weights_sha256": hashlib.sha256(weights).hexdigest()}
        with AtomicFile(path / "weights.safetensors", replace=True) as w:
            with AtomicFile(path / "config.json", replace=True) as c:
                w.temp.write_bytes(weights)
                c.temp.write_bytes(json.dumps(doc, indent=1).encode())
        return path

    def export_bioimageio(self, path, **kwargs) -> Path:
        """Write a bioimage.io model zip (needs ``pip install "napari-pix2pix[bioimageio]"``);
        keyword arguments as in ``napari_pix2pix.io.bioimageio.export_bioimageio``."""
        return bioimageio.export_bioimageio(self, path, **kwargs)


def check_model_output(path, overwrite: bool = False) -> Path:
    """Where a model may be saved (before training, so that a finished run can be saved):
    a .safetensors file, or a folder; an existing one only with ``overwrite`` and only if
    it holds a napari-pix2pix model (an empty folder is free)."""
    path = check_name_lengths(path, "the model path")
    single = path.suffix == ".safetensors"
    if not single and path.is_dir() and not any(path.iterdir()):
        return check_output_path(path, folder_ok=True, if_exists="overwrite")
    if not single and path.is_file():
        raise InputError(
            f"{str(path)!r} is a file; a model path without .safetensors is a "
            "folder. Name the model 'model.safetensors' or choose a new folder."
        )
    return check_output_path(
        path,
        folder_ok=not single,
        ours=is_model_path,
        if_exists="overwrite" if overwrite else "error",
        overwrite_hint="overwrite=True",
    )


def is_model_path(path: Path) -> bool:
    """Whether ``path`` holds a napari-pix2pix model (only those may be replaced)."""
    try:
        if path.is_dir():
            doc = json.loads((path / "config.json").read_text(encoding="utf-8"))
        else:
            doc = header_document(read_header(path), path)
        return isinstance(doc, dict) and doc.get("format") == FORMAT
    except (OSError, ValueError, ModelFileError):
        return False


def save_or_rescue(model: Pix2PixModel, path, overwrite: bool = False) -> tuple[Path, str]:
    """Save ``model`` to ``path``; if that fails (disk full, the path taken meanwhile,
    permissions), save it where it can be saved instead: a trained model is never lost.
    Returns where it went and what to tell the user ('' when all went as asked)."""
    try:
        return model.save(path, overwrite=overwrite), ""
    except (InputError, OutputError) as exc:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for folder in (Path.home() / "napari-pix2pix" / "rescued", Path(tempfile.gettempdir())):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                rescued = model.save(folder / f"{Path(path).stem}-{stamp}.safetensors")
            except (OSError, Pix2PixError):
                continue
            return rescued, f"{exc} The model was saved to {str(rescued)!r} instead."
        raise


METRIC_NAMES = {"mae": "MAE", "psnr": "PSNR", "ssim": "SSIM", "pearson_r": "Pearson r"}


def metric_text(name: str, value) -> str:
    """'PSNR 23.9 dB', 'MAE 855 (target units)', 'SSIM 0.784'."""
    label = METRIC_NAMES.get(name, name)
    if not isinstance(value, (int, float)):
        return f"{label} {value}"
    if name == "psnr":
        return f"{label} {value:.1f} dB"
    if name == "mae":
        return f"{label} {value:.4g} (target units)"
    return f"{label} {value:.3f}"


def duration_text(seconds: float) -> str:
    """'45 s', '20.1 min', '2.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def load_model(path, device: str | torch.device = "cpu") -> Pix2PixModel:
    """Load a model file or folder written by ``Pix2PixModel.save``, a bioimage.io
    package (.zip) exported by napari-pix2pix, a training checkpoint (its generator at
    the step it was written) or a run folder (its model, else its best model, else its
    checkpoint: a run that was stopped or crashed early still gives a model); no code
    is executed. A model with NaN or infinite weights is refused."""
    path = check_input_path(path, ModelFileError, "model path", folder_ok=True)
    device = resolve_device(device)
    if path.is_dir() and not (path / "weights.safetensors").exists():
        inside = next((path / n for n in RUN_MODELS if (path / n).exists()), None)
        if inside is not None:
            path = check_input_path(inside, ModelFileError, "model path")
    if not path.is_dir() and model_zip.is_zip(path):
        model = model_from_bytes(model_zip.model_bytes(path), source=path)
        model.generator.to(device)
        return model
    if path.is_dir():
        weights, config_file = path / "weights.safetensors", path / "config.json"
        if not weights.is_file() or not config_file.is_file():
            raise ModelFileError(
                f"{str(path)!r} is neither a napari-pix2pix model folder (weights.safetensors "
                "and config.json) nor a run folder (model.safetensors, best.safetensors or "
                "checkpoint.safetensors)."
            )
        if config_file.stat().st_size > MAX_JSON_BYTES:
            raise ModelFileError(f"{str(config_file)!r} is too large to be a model config.")
        try:
            doc = json.loads(config_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{str(config_file)!r} is not valid JSON ({exc}).") from exc
        header = read_header(weights)
        _check_pair(weights, doc.get("weights_sha256") if isinstance(doc, dict) else None)
    else:
        weights = path
        header = read_header(path)
        doc = header_document(header, path)
        if doc.get("format") == checkpoint.KIND:
            model = model_from_checkpoint(checkpoint.load_checkpoint(path))
            model.generator.to(device)
            return model
    config, history = parse_document(doc, path)
    check_weights(config, header, weights)
    model = _build(
        config,
        history,
        read_tensors(check_input_path(weights, ModelFileError, "weights file")),
        weights,
    )
    model.generator.to(device)
    return model


def _check_pair(weights: Path, digest) -> None:
    """A model folder's config.json and weights.safetensors must come from one save."""
    if digest is None:  # saved before the config named its weights
        return
    sha = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            sha.update(block)
    if sha.hexdigest() != digest:
        raise ModelFileError(
            f"the weights in {str(weights)!r} are not those its config.json was saved with "
            "(a save was cut short, or a file was replaced): save the model again."
        )


def model_from_checkpoint(ckpt: checkpoint.Checkpoint) -> Pix2PixModel:
    """The generator a checkpoint holds, as a model ("kept": its last step)."""
    history = dataclasses.replace(ckpt.history, kept="last")
    return _build(ckpt.config, history, ckpt.trainer["generator"], ckpt.path)


def model_from_bytes(data: bytes, source="<bytes>") -> Pix2PixModel:
    """Inverse of ``Pix2PixModel.to_bytes``; like load_model, nothing is unpickled.
    ``source`` names where the bytes come from in messages."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    header = parse_header(data[:8], lambda n: data[8 : 8 + n], len(data), source)
    config, history = parse_document(header_document(header, source), source)
    check_weights(config, header, source)
    try:
        state = load(bytes(data))
    except (SafetensorError, ValueError) as exc:
        raise ModelFileError(f"the model's weights cannot be read ({exc}).") from exc
    return _build(config, history, state, source)


def as_model(model) -> Pix2PixModel:
    if isinstance(model, Pix2PixModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    raise InputError(f"expected a Pix2PixModel or a model path, got {type(model).__name__}.")


def _build(config: Pix2PixConfig, history: RunHistory, state: dict, source) -> Pix2PixModel:
    check_finite_weights(state, source)
    model = Pix2PixModel(config, history=history)
    try:
        model.generator.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(
            f"the weights in {str(source)!r} do not match the architecture in "
            f"its config ({str(exc).splitlines()[0]})."
        ) from exc
    model.generator.eval()
    return model


def parse_document(doc, path) -> tuple[Pix2PixConfig, RunHistory]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"{str(path)!r} is not a napari-pix2pix model (format tag missing).")
    check_format_version(doc, path, FORMAT_VERSION)
    history = doc.get("history", {})
    if not isinstance(history, dict):
        raise ModelFileError(f"the training history in {str(path)!r} is malformed.")
    config = parse_config(doc.get("config"), path)
    return config, RunHistory.from_dict(history, path)
