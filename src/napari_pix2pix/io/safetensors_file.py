"""safetensors files with a JSON document in their header metadata: the container of
model files and checkpoints. The header is parsed here first, so that a file that is not
safetensors (a pickle, a TIFF, random bytes) gets a clear message and nothing in it is
ever executed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import ModelFileError

META_KEY = "napari_pix2pix"
MAX_JSON_BYTES = 16 * 2**20
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")


def read_header(path: Path) -> dict:
    """The safetensors header of a file (tensor names, shapes, metadata)."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelFileError(
            f"{str(path)!r} looks like a PyTorch pickle file; it is not opened because unpickling "
            "can run arbitrary code. napari-pix2pix models are .safetensors files (or folders)."
        )
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            return parse_header(fh.read(8), fh.read, size, path)
    except IsADirectoryError as exc:
        raise ModelFileError(f"{str(path)!r} is a directory.") from exc


def parse_header(head: bytes, read, size: int, path) -> dict:
    """The JSON header of safetensors bytes: 8-byte little-endian length, then JSON."""
    if len(head) < 8:
        raise ModelFileError(
            f"{str(path)!r} is too short to be a model file ({size} bytes): empty or cut off."
        )
    n = int.from_bytes(head, "little")
    if 1 < n <= MAX_JSON_BYTES and n > size - 8:
        raise ModelFileError(
            f"{str(path)!r} is cut off: its header alone declares {n} bytes and the file "
            f"has {size}. Copy or download it again."
        )
    if n <= 1 or n > min(MAX_JSON_BYTES, size - 8):
        raise ModelFileError(
            f"{str(path)!r} is not a safetensors model file (a .pt/.pth pickle or another format?)."
        )
    try:
        header = json.loads(read(n).decode("utf-8"))
    except (UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{str(path)!r} is not a safetensors model file ({exc}).") from exc
    if not isinstance(header, dict):
        raise ModelFileError(f"{str(path)!r} has a malformed safetensors header.")
    return header


def data_end(header: dict) -> int:
    """Where the tensors' bytes end, after the header (0 for none): a file's size must be
    8 + the header's + this."""
    ends = [
        entry["data_offsets"][1]
        for key, entry in header.items()
        if key != "__metadata__" and isinstance(entry, dict)
        and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
        and isinstance(entry["data_offsets"][1], int)
    ]  # fmt: skip
    return max(ends, default=0)


def header_document(header: dict, path, what: str = "model") -> dict:
    """The JSON document napari-pix2pix keeps in the header's metadata."""
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or META_KEY not in meta:
        raise ModelFileError(
            f"{str(path)!r} is a safetensors file but not a napari-pix2pix {what} "
            f"(no {what} config in its metadata)."
        )
    try:
        doc = json.loads(meta[META_KEY])
    except (TypeError, RecursionError, json.JSONDecodeError) as exc:
        raise ModelFileError(
            f"the {what} config inside {str(path)!r} is corrupted ({exc})."
        ) from exc
    if not isinstance(doc, dict):
        raise ModelFileError(f"the {what} config inside {str(path)!r} is not a JSON object.")
    return doc


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    read_header(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(
            f"the weights in {str(path)!r} cannot be read (truncated or corrupted file?): {exc}"
        ) from exc


def to_bytes(tensors: dict[str, torch.Tensor], document: dict | None = None) -> bytes:
    """safetensors bytes of CPU copies of ``tensors``, with ``document`` in the header."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return save(state, metadata=None if document is None else {META_KEY: json.dumps(document)})
