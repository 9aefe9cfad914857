"""The napari-pix2pix model inside a bioimage.io package (.zip) that napari-pix2pix
exported: ``export_bioimageio`` attaches the model file (safetensors: weights, config,
history) to the package, and ``load_model`` reads that attachment back. The package's
own weights (``weights.pt``, a pickle; TorchScript) are never opened.

The zip is read in memory, one member only, looked up by its exact name: nothing is
extracted to disk (no path traversal), and the member is read with a size limit (a zip
bomb or a lying header stops at the limit). Needs no bioimageio package.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from ..engine.memory import available_memory
from ..errors import ModelFileError
from .safetensors_file import data_end, parse_header

MODEL_ATTACHMENT = "napari_pix2pix_model.safetensors"
# far above any model napari-pix2pix trains (the paper's U-Net-256 is ~220 MB)
MAX_MODEL_BYTES = 4 * 2**30


def is_zip(path: Path) -> bool:
    """A .zip name. (Not the zip magic bytes: torch.save writes zips too, .pt/.pth
    pickles, which keep their own message.)"""
    return path.suffix.lower() == ".zip"


def is_exported(path: Path) -> bool:
    """Whether ``path`` is a bioimage.io package napari-pix2pix exported (only those may
    be replaced)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return MODEL_ATTACHMENT in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def model_bytes(path: Path, limit: int = MAX_MODEL_BYTES) -> bytes:
    """The attached model file of a bioimage.io zip exported by napari-pix2pix."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if i.filename == MODEL_ATTACHMENT]
            if not infos:
                raise ModelFileError(
                    f"{str(path)!r} was not exported by napari-pix2pix (it has no "
                    f"{MODEL_ATTACHMENT}): napari-pix2pix opens only bioimage.io packages it "
                    "exported itself (other packages' pickled weights are never loaded)."
                )
            if len(infos) > 1:
                raise ModelFileError(
                    f"{str(path)!r} holds {MODEL_ATTACHMENT} twice; it is damaged."
                )
            info = infos[0]
            if info.file_size > limit:
                raise ModelFileError(
                    f"the model in {str(path)!r} declares {info.file_size} bytes, more than "
                    f"a napari-pix2pix model can be ({limit} bytes)."
                )
            with zf.open(info) as member:
                data = _read_member(member, info.file_size, path)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as exc:
        raise ModelFileError(f"{str(path)!r} is not a readable zip file ({exc}).") from exc
    except (NotImplementedError, RuntimeError) as exc:  # unknown compression, encryption
        raise ModelFileError(f"{str(path)!r} cannot be read ({exc}).") from exc
    except OSError as exc:
        raise ModelFileError(f"{str(path)!r} cannot be read ({exc}).") from exc
    return data


def _read_member(member, size: int, path: Path) -> bytes:
    """The attachment's bytes, its safetensors header read first: a member that is not
    a model, or whose header and declared size disagree, or that would not fit in
    memory, is refused before the rest is inflated (a zip bomb of zeros is refused at
    its first 8 bytes)."""
    head = member.read(8)
    raw: list[bytes] = []

    def read(n: int) -> bytes:
        raw.append(member.read(n))
        return raw[-1]

    header = parse_header(head, read, size, f"the model in {path}")
    expected = 8 + len(raw[0]) + data_end(header)
    if expected != size:
        raise ModelFileError(
            f"the model in {str(path)!r} is damaged: its header describes {expected} bytes "
            f"and the zip declares {size}."
        )
    free = available_memory()
    if free is not None and size > free // 2:
        raise ModelFileError(
            f"the model in {str(path)!r} declares {size} bytes, more than half of this "
            f"machine's available memory ({free} bytes); it cannot be loaded here."
        )
    rest = member.read(size - len(head) - len(raw[0]) + 1)  # a lying zip stops here
    data = head + raw[0] + rest
    if len(data) != size:
        raise ModelFileError(f"the model in {str(path)!r} is damaged (wrong size).")
    return data
