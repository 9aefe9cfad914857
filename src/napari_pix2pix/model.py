"""The trained model object and its file: safetensors weights plus a JSON document
(config, training history, versions). Loading never unpickles anything.

A path ending in ``.safetensors`` is one self-contained file (the JSON rides in the
safetensors header metadata); any other path is a folder holding ``weights.safetensors``
and a readable ``config.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .config import Pix2PixConfig
from .errors import InputError, ModelFileError
from .networks import build_generator

FORMAT = "napari-pix2pix-model"
FORMAT_VERSION = 1
META_KEY = "napari_pix2pix"
MAX_JSON_BYTES = 16 * 2**20


class Pix2PixModel:
    """A trained generator with the config that describes it.

    Attributes:
        generator: the torch U-Net (eval mode after loading).
        config: the Pix2PixConfig (architecture, axes, normalization, recipe).
        history: plain data: losses, validation metrics, steps done, timings.
    """

    def __init__(self, config: Pix2PixConfig, generator: torch.nn.Module | None = None,
                 history: dict | None = None) -> None:
        self.config = config
        self.generator = generator if generator is not None else build_generator(config)
        self.history = history if history is not None else {}

    def __repr__(self) -> str:
        c = self.config
        return (f"Pix2PixModel({c.in_channels}->{c.out_channels} channels, {c.spatial_dims}D, "
                f"axes {c.source_axes!r}->{c.target_axes!r}, depth {c.depth}, "
                f"steps done {self.history.get('steps_done', 0)})")

    def predict(self, image, **kwargs) -> np.ndarray:
        from .prediction import predict

        return predict(self, image, **kwargs)

    def export_bioimageio(self, path, **kwargs) -> Path:
        """Write a bioimage.io model zip (needs ``pip install "napari-pix2pix[bioimageio]"``);
        keyword arguments as in ``napari_pix2pix.bioimageio.export_bioimageio``."""
        from .bioimageio import export_bioimageio

        return export_bioimageio(self, path, **kwargs)

    def summary(self) -> dict:
        """What a user wants to see before applying the model."""
        c = self.config
        return {"channels": f"{c.in_channels} -> {c.out_channels}", "source axes": c.source_axes,
                "target axes": c.target_axes, "spatial dims": c.spatial_dims,
                "patch size": list(c.patch_size), "depth": c.depth, "gan mode": c.gan_mode,
                "steps trained": self.history.get("steps_done", 0),
                "final validation": self.history.get("final_metrics", {})}

    def document(self) -> dict:
        import monai

        from . import __version__

        return {"format": FORMAT, "format_version": FORMAT_VERSION, "config": self.config.to_dict(),
                "history": self.history,
                "versions": {"napari_pix2pix": __version__, "torch": torch.__version__,
                             "monai": monai.__version__}}

    def to_bytes(self) -> bytes:
        """The single-file model format in memory (to ship to dask workers)."""
        from safetensors.torch import save

        state = {k: v.detach().cpu().contiguous() for k, v in self.generator.state_dict().items()}
        return save(state, metadata={META_KEY: json.dumps(self.document())})

    def save(self, path) -> Path:
        """Write the model atomically (a crash mid-write leaves any previous file intact)."""
        from safetensors.torch import save

        path = Path(path)
        if path.suffix == ".safetensors":
            atomic_write(path, self.to_bytes())
        else:
            state = {k: v.detach().cpu().contiguous() for k, v in self.generator.state_dict().items()}
            path.mkdir(parents=True, exist_ok=True)
            atomic_write(path / "weights.safetensors", save(state))
            atomic_write(path / "config.json", json.dumps(self.document(), indent=1).encode())
        return path


def atomic_write(path: Path, data: bytes) -> None:
    """temp file in the same folder, fsync, rename: readers see the old or the new file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_model(path, device: str | torch.device = "cpu") -> Pix2PixModel:
    """Load a model file or folder written by ``Pix2PixModel.save``; no code is executed."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model path {str(path)!r} does not exist.")
    if path.is_dir():
        weights, config_file = path / "weights.safetensors", path / "config.json"
        if not weights.is_file() or not config_file.is_file():
            raise ModelFileError(f"{str(path)!r} is not a napari-pix2pix model folder (it needs "
                                 "weights.safetensors and config.json).")
        if config_file.stat().st_size > MAX_JSON_BYTES:
            raise ModelFileError(f"{str(config_file)!r} is too large to be a model config.")
        try:
            doc = json.loads(config_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{str(config_file)!r} is not valid JSON ({exc}).") from exc
        header = read_safetensors_header(weights)
    else:
        weights = path
        header = read_safetensors_header(path)
        doc = _metadata_document(header, path)
    config, history = parse_document(doc, path)
    check_weights(config, header, weights)
    model = _build(config, history, read_safetensors(weights), weights)
    model.generator.to(device)
    return model


def _build(config: Pix2PixConfig, history: dict, state: dict, source) -> Pix2PixModel:
    model = Pix2PixModel(config, history=history)
    try:
        model.generator.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"the weights in {str(source)!r} do not match the architecture in "
                             f"its config ({str(exc).splitlines()[0]}).") from exc
    model.generator.eval()
    return model


def model_from_bytes(data: bytes) -> Pix2PixModel:
    """Inverse of ``Pix2PixModel.to_bytes``; like load_model, nothing is unpickled."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    header = _parse_header(data[:8], lambda n: data[8: 8 + n], len(data), "<bytes>")
    config, history = parse_document(_metadata_document(header, "<bytes>"), "<bytes>")
    check_weights(config, header, "<bytes>")
    try:
        state = load(bytes(data))
    except (SafetensorError, ValueError) as exc:
        raise ModelFileError(f"the model's weights cannot be read ({exc}).") from exc
    return _build(config, history, state, "<bytes>")


def as_model(model) -> Pix2PixModel:
    if isinstance(model, Pix2PixModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    raise InputError(f"expected a Pix2PixModel or a model path, got {type(model).__name__}.")


def check_weights(config: Pix2PixConfig, header: dict, source) -> None:
    """Compare the tensors the file declares with those the config's network has, on
    the meta device (no memory), before anything is allocated or read: a config that
    does not describe its weights (or describes a network of absurd size) stops here."""
    with torch.device("meta"):
        expected = {k: list(v.shape) for k, v in build_generator(config).state_dict().items()}
    declared = {k: v.get("shape") if isinstance(v, dict) else None
                for k, v in header.items() if k != "__metadata__"}
    if declared != expected:
        missing = sorted(set(expected) - set(declared))
        wrong = sorted(k for k in set(expected) & set(declared) if expected[k] != declared[k])
        detail = (f"missing {missing[:3]}" if missing else f"wrong shapes for {wrong[:3]}" if wrong
                  else f"unexpected {sorted(set(declared) - set(expected))[:3]}")
        raise ModelFileError(f"the weights in {str(source)!r} do not match the architecture in "
                             f"its config ({detail}).")


def _metadata_document(header: dict, path) -> dict:
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or META_KEY not in meta:
        raise ModelFileError(f"{str(path)!r} is a safetensors file but not a napari-pix2pix model "
                             "(no model config in its metadata).")
    try:
        return json.loads(meta[META_KEY])
    except (TypeError, RecursionError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"the model config inside {str(path)!r} is corrupted ({exc}).") from exc


PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")


def read_safetensors_header(path: Path) -> dict:
    """Parse a safetensors header ourselves first, so that a file that is not safetensors
    (a pickle, a TIFF, random bytes) gets a clear message and is never executed."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelFileError(
            f"{str(path)!r} looks like a PyTorch pickle file; it is not opened because unpickling "
            "can run arbitrary code. napari-pix2pix models are .safetensors files (or folders).")
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            return _parse_header(fh.read(8), fh.read, size, path)
    except IsADirectoryError as exc:
        raise ModelFileError(f"{str(path)!r} is a directory.") from exc


def _parse_header(head: bytes, read, size: int, path) -> dict:
    """The JSON header of safetensors bytes: 8-byte little-endian length, then JSON."""
    if len(head) < 8:
        raise ModelFileError(f"{str(path)!r} is too short to be a model file.")
    n = int.from_bytes(head, "little")
    if n <= 1 or n > min(MAX_JSON_BYTES, size - 8):
        raise ModelFileError(f"{str(path)!r} is not a safetensors model file "
                             "(a .pt/.pth pickle or another format?).")
    try:
        header = json.loads(read(n).decode("utf-8"))
    except (UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{str(path)!r} is not a safetensors model file ({exc}).") from exc
    if not isinstance(header, dict):
        raise ModelFileError(f"{str(path)!r} has a malformed safetensors header.")
    return header


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    read_safetensors_header(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(f"the weights in {str(path)!r} cannot be read (truncated or "
                             f"corrupted file?): {exc}") from exc


def parse_document(doc, path) -> tuple[Pix2PixConfig, dict]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"{str(path)!r} is not a napari-pix2pix model (format tag missing).")
    version = doc.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{str(path)!r} has an invalid format_version {version!r}.")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{str(path)!r} was written by a newer napari-pix2pix (model format "
                             f"{version}, this version reads up to {FORMAT_VERSION}); upgrade "
                             "napari-pix2pix to open it.")
    try:
        config = Pix2PixConfig.from_dict(doc.get("config"))
    except InputError as exc:
        raise ModelFileError(f"the config in {str(path)!r} is invalid: {exc}") from exc
    if not config.normalized:
        raise ModelFileError(f"the config in {str(path)!r} has no normalization parameters.")
    history = doc.get("history", {})
    if not isinstance(history, dict):
        raise ModelFileError(f"the training history in {str(path)!r} is malformed.")
    return config, history
