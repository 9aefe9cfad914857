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

from ..errors import ModelFileError

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
                data = member.read(limit + 1)  # a lying header stops here
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as exc:
        raise ModelFileError(f"{str(path)!r} is not a readable zip file ({exc}).") from exc
    except (NotImplementedError, RuntimeError) as exc:  # unknown compression, encryption
        raise ModelFileError(f"{str(path)!r} cannot be read ({exc}).") from exc
    except OSError as exc:
        raise ModelFileError(f"{str(path)!r} cannot be read ({exc}).") from exc
    if len(data) > limit or len(data) != info.file_size:
        raise ModelFileError(f"the model in {str(path)!r} is damaged (wrong size).")
    return data
