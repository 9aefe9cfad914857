"""The mark that says "napari-pix2pix predicted this", and nothing else: only a file
carrying it may be replaced by ``if_exists="overwrite"`` (CLI ``--overwrite``).

Images a user saves through the library (``write_image``, napari's Save with our
writer, the demo's inputs and targets) are theirs and carry no mark, so no overwrite
option can ever replace them. A file from before predictions were marked (a TIFF whose
Software tag is a plain "napari-pix2pix <version>", a NIfTI whose descrip is) cannot
be told from a user's image saved by those versions: it is not replaced either, and the
user deletes or renames it themselves."""

from __future__ import annotations

import re

from .._version import __version__

NOT_A_PREDICTION = (  # completes "... was not written by napari-pix2pix"
    " as a prediction (an image saved with write_image or napari's Save, or a result of a "
    "version that did not yet mark its predictions, is not one)"
)
ZARR_ATTR = "napari_pix2pix"  # the attributes of a zarr prediction store (zarr_output.py)
_SOFTWARE = re.compile(r"napari-pix2pix \S+ prediction(?:\b|$)")
_DESCRIP = b"napari-pix2pix prediction"


def prediction_software(model_sha256: str) -> str:
    """The TIFF Software tag of a prediction: what wrote it, and with which model (the
    sha256 of the model's file form), readable in any TIFF viewer's tag list."""
    return f"napari-pix2pix {__version__} prediction; model sha256 {model_sha256}"


def is_prediction_software(software) -> bool:
    return bool(_SOFTWARE.match(str(software or "")))


def prediction_descrip(model_sha256: str) -> bytes:
    """A NIfTI prediction's descrip: 80 bytes at most, so the model's hash is cut to
    16 hex digits (as a zarr output's resume identity records it)."""
    return _DESCRIP + f" {model_sha256[:16]}".encode()


def is_prediction_descrip(descrip) -> bool:
    return bytes(descrip or b"").startswith(_DESCRIP)


def prediction_attrs(model_sha256: str) -> dict:
    """What a zarr prediction store records about where it came from (beside its resume
    identity)."""
    return {"software": prediction_software(model_sha256), "model_sha256": model_sha256}


_RECORDED = re.compile(r'(?:model sha256 |"model_sha256":\s*")([0-9a-f]{16,64})')


def recorded_model(path) -> str | None:
    """The model hash a prediction output of ours records (its first 16 hex digits only
    in a NIfTI, whose descrip holds 80 bytes), or None where none is read: a batch rerun
    skips an output only when this model made it."""
    from pathlib import Path

    path = Path(path)
    text = ""
    try:
        if path.is_dir():  # a zarr store: its attributes (format 3, else 2)
            for name in ("zarr.json", ".zattrs"):
                if (path / name).is_file():
                    text = (path / name).read_text(encoding="utf-8")
                    break
        elif path.name.lower().endswith((".nii", ".nii.gz")):
            import nibabel as nib

            descrip = bytes(nib.load(path).header["descrip"]).split(b"\0")[0]
            if descrip.startswith(_DESCRIP):
                text = descrip[len(_DESCRIP) :].decode("ascii", "replace").strip()
                return text if re.fullmatch(r"[0-9a-f]{16,64}", text) else None
        else:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                text = tif.pages.first.software or ""
    except Exception:  # unreadable: nothing recorded that can be read
        return None
    found = _RECORDED.search(text)
    return found.group(1) if found else None
