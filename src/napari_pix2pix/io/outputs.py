"""Where a prediction goes: a new array, an array of the caller's, or a file of one of
the formats that can hold a prediction (formats.py): a zarr or OME-Zarr store
(resumable, zarr_output.py), a streamed OME-TIFF (tiff_output.py) or a NIfTI volume,
held in memory and written whole with its input's header (medical.py). Everything about
the destination is checked before any work starts."""

from __future__ import annotations

import os

import numpy as np

from ..engine.axes import AxesLayout
from ..engine.inference import ArrayOutput
from ..engine.memory import refuse_beyond_memory
from ..errors import InputError
from ..options import user_path
from .formats import FORMATS, format_of, listed, suffixes
from .output_paths import check_output_path
from .provenance import NOT_A_PREDICTION


def check_output(
    out, shape: tuple | None, out_axes: str, if_exists: str = "error", inputs=()
) -> None:
    """Everything about ``out`` that can be checked before any work: an array's dtype,
    shape and writability, a path's type, folder, name and existence (see
    check_output_path)."""
    if out is None:
        return
    if not isinstance(out, (str, os.PathLike)):
        _checked_array(out, shape, out_axes)
        return
    path = user_path(out, "out")
    fmt = format_of(path)
    if fmt is None or fmt.output is None:
        raise InputError(f"out must end in {listed(suffixes('output'))}, got {str(path)!r}.")
    if not fmt.installed:
        raise InputError(
            f"writing {fmt.name} ({path.name!r}) needs {fmt.module}, which is not installed: "
            f"{fmt.install}; or choose another output format."
        )
    check_output_path(
        path,
        inputs=inputs,
        folder_ok=fmt.folder,
        ours=fmt.is_ours,
        if_exists="error" if if_exists == "resume" and not fmt.resumable else if_exists,
        not_ours=" as a prediction store" if fmt.folder else NOT_A_PREDICTION,
    )
    if if_exists == "resume" and not fmt.resumable:
        resumable = sorted((s for f in FORMATS if f.resumable for s in f.suffixes), key=len)
        raise InputError(
            f"resuming needs a {listed(resumable)} output; a {fmt.name} file is written "
            "in one go (use out='result.zarr' to be able to resume)."
        )
    if fmt.in_memory and shape is not None:  # held whole in memory until written
        nbytes = 4 * int(np.prod(shape))
        refuse_beyond_memory(
            nbytes,
            f"a {fmt.name} output is held in memory until written: {tuple(shape)} float32,",
            "predict into a .zarr output (streamed), e.g. out='result.zarr'.",
            InputError,
        )


def open_output(
    out,
    in_layout: AxesLayout,
    out_axes: str,
    out_channels: int,
    scale: dict | None = None,
    unit: str | None = None,
    if_exists: str = "error",
    inputs=(),
    identity: dict | None = None,
    meta: dict | None = None,
    model_sha256: str = "",
):
    """An output for ``out``: None (a new numpy array), an array of floats, or a path of
    a format that holds predictions, checked (check_output) before anything is created.
    ``meta``: what the input's reader kept for its outputs (ImageData.meta: a NIfTI
    header, an OME-Zarr translation). A file is marked as a prediction of the model
    whose file form hashes to ``model_sha256`` (provenance.py): only such files may be
    replaced later."""
    out_layout = in_layout.with_channels(out_axes, out_channels)
    check_output(out, out_layout.shape, out_axes, if_exists, inputs)
    if out is None:
        return ArrayOutput(np.empty(out_layout.shape, np.float32), out_layout)
    if not isinstance(out, (str, os.PathLike)):
        return ArrayOutput(out, out_layout)
    path = user_path(out)
    return format_of(path).output(
        path, in_layout, out_layout, scale, unit, if_exists, identity, meta, model_sha256
    )


def _checked_array(out, shape: tuple, out_axes: str):
    """An ``out`` array must take the prediction as it is: floats, the right shape,
    writable."""
    if tuple(out.shape) != shape:
        raise InputError(
            f"out has shape {tuple(out.shape)} but the prediction needs {shape} "
            f"(axes {out_axes!r})."
        )
    if np.dtype(out.dtype).kind != "f":
        raise InputError(
            f"out has dtype {out.dtype}; predictions are floats in the target's "
            "units and would be cut or wrapped. Give a float32 (or float64) array, "
            "or convert the result yourself."
        )
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise InputError("out is a read-only array; give a writable one (or out=None).")
    if getattr(out, "read_only", False):
        raise InputError("out is a read-only zarr array; open it with mode='r+'.")
    return out
