"""A trained model's file: safetensors weights plus a JSON document (config, training
history, what is known of its inputs and errors, versions). Loading never unpickles
anything. (The model itself, as the engine holds it: engine/model.py.)

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
import warnings
from pathlib import Path

import torch

from .._version import __version__
from ..config import Pix2PixConfig
from ..engine import model as engine_model
from ..engine.device import resolve_device
from ..engine.run_history import RunHistory
from ..errors import InputError, ModelFileError, OutputError, Pix2PixError
from . import bioimageio, checkpoint, model_zip
from .checkpoint import RUN_MODELS
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
# top-level entries of the document that a model may lack (one trained before they were
# recorded): read back as None, and a malformed one is dropped with a warning
OPTIONAL = ("input_profile", "error_calibration")


class Pix2PixModel(engine_model.Pix2PixModel):
    """A model (engine/model.py: generator, config, history, input profile, error
    calibration, card) with its file form: ``save`` and ``to_bytes`` write it,
    ``load_model`` and ``model_from_bytes`` read it back. This is the class users get
    (``napari_pix2pix.Pix2PixModel``)."""

    def document(self) -> dict:
        import monai

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "history": self.history.to_dict(),
            # absent (not null) when unknown, so that a file without them reads as before
            **{k: getattr(self, k) for k in OPTIONAL if getattr(self, k) is not None},
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
    parts = parse_document(doc, path)
    check_weights(parts[0], header, weights)
    state = read_tensors(check_input_path(weights, ModelFileError, "weights file"))
    model = _build(*parts, state, weights)
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
    return _build(ckpt.config, history, {}, ckpt.trainer["generator"], ckpt.path)


def model_from_bytes(data: bytes, source="<bytes>") -> Pix2PixModel:
    """Inverse of ``Pix2PixModel.to_bytes``; like load_model, nothing is unpickled.
    ``source`` names where the bytes come from in messages."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    header = parse_header(data[:8], lambda n: data[8 : 8 + n], len(data), source)
    parts = parse_document(header_document(header, source), source)
    check_weights(parts[0], header, source)
    try:
        state = load(bytes(data))
    except (SafetensorError, ValueError) as exc:
        raise ModelFileError(f"the model's weights cannot be read ({exc}).") from exc
    return _build(*parts, state, source)


def as_model(model) -> Pix2PixModel:
    if isinstance(model, Pix2PixModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    raise InputError(f"expected a Pix2PixModel or a model path, got {type(model).__name__}.")


def _build(
    config: Pix2PixConfig, history: RunHistory, optional: dict, state: dict, source
) -> Pix2PixModel:
    check_finite_weights(state, source)
    model = Pix2PixModel(config, history=history, **optional)
    try:
        model.generator.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(
            f"the weights in {str(source)!r} do not match the architecture in "
            f"its config ({str(exc).splitlines()[0]})."
        ) from exc
    model.generator.eval()
    return model


def parse_document(doc, path) -> tuple[Pix2PixConfig, RunHistory, dict]:
    """A model document's config, history and OPTIONAL entries (those it has, well formed)."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"{str(path)!r} is not a napari-pix2pix model (format tag missing).")
    check_format_version(doc, path, FORMAT_VERSION)
    history = doc.get("history", {})
    if not isinstance(history, dict):
        raise ModelFileError(f"the training history in {str(path)!r} is malformed.")
    config = parse_config(doc.get("config"), path)
    optional = {k: doc[k] for k in OPTIONAL if doc.get(k) is not None}
    for key in [k for k, v in optional.items() if not isinstance(v, dict)]:
        del optional[key]
        warnings.warn(
            f"the {key.replace('_', ' ')} in {str(path)!r} is malformed, and is ignored; "
            "the model itself is intact.",
            stacklevel=3,
        )
    return config, RunHistory.from_dict(history, path), optional
