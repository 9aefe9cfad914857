"""Where a prediction goes when it is a file, region by region as the tiles finish: a
zarr store (resumable) or a streamed OME-TIFF. Neither holds the whole result, so
stacks larger than RAM stream through. A NIfTI volume is the exception: it is held in
memory and written whole with its input's header. (An in-memory array is the engine's
ArrayOutput.)"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import threading
from pathlib import Path

import numpy as np

from ..engine.axes import AxesLayout
from ..engine.inference import ArrayOutput
from ..engine.memory import gib
from ..errors import InputError, OutputError
from ..options import user_path
from .medical import is_nifti, nifti_is_ours, short_of_memory, write_nifti
from .metadata import ome_metadata
from .output_paths import AtomicFile, check_output_path, reason
from .provenance import (
    NOT_A_PREDICTION,
    prediction_attrs,
    prediction_descrip,
    prediction_software,
)
from .tiff import tiff_is_ours
from .zarr_input import ZARR_ATTR

PAGES_AHEAD = 4  # output pages queued for the TIFF writer at most (memory: 4 planes)


class ZarrOutput(ArrayOutput):
    """A zarr store marked incomplete until the last sample is written. It records what
    identifies the work (the model, the input, the tiling); a rerun with
    ``if_exists="resume"`` skips the samples it already holds, and only for the same
    work."""

    def __init__(
        self,
        path: Path,
        layout: AxesLayout,
        scale: dict,
        unit: str | None,
        if_exists: str,
        identity: dict | None = None,
        model_sha256: str = "",
    ) -> None:
        import zarr

        identity = identity or {}
        # replacing a result: the new one is made beside it and swapped in when complete,
        # so a run cut short leaves the earlier result as it was
        self.replaces = path if path.exists() and if_exists == "overwrite" else None
        if self.replaces is not None:
            path = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")
        if path.exists() and if_exists == "resume":
            array, info = _resumable(path, layout, identity)
            done = layout.n_samples if info.get("complete") else int(info.get("done_samples", 0))
        else:
            chunks = tuple(
                1 if a not in layout.spatial + "C" else (s if a == "C" else min(s, 512))
                for a, s in zip(layout.axes, layout.shape)
            )
            try:  # "w" replaces a store of ours (checked by open_output); "w-" never replaces
                array = zarr.open_array(
                    str(path),
                    mode="w" if path.exists() else "w-",
                    shape=layout.shape,
                    chunks=chunks,
                    dtype="float32",
                    fill_value=np.nan,
                )
            except OSError as exc:
                raise OutputError(
                    f"cannot create the zarr store {str(path)!r} ({exc.strerror or exc})."
                ) from exc
            info = {
                "axes": layout.axes,
                "scale": scale,
                "unit": unit,
                "complete": False,
                "done_samples": 0,
                "identity": identity,
                **prediction_attrs(model_sha256),
            }
            array.attrs[ZARR_ATTR] = info
            done = 0
        super().__init__(array, layout)
        self.path, self.info, self.done_samples = path, info, done

    def write(self, n: int, rows: slice, block: np.ndarray) -> None:
        try:
            super().write(n, rows, block)
        except OSError as exc:
            raise OutputError(
                f"writing {str(self.path)!r} failed ({exc.strerror or exc}); the "
                "slices finished so far are kept: free space, then resume."
            ) from exc

    def sample_done(self, n: int) -> None:
        super().sample_done(n)
        self.info["done_samples"] = self.done_samples
        self.array.attrs[ZARR_ATTR] = self.info

    def finish(self) -> None:
        self.info.update(complete=True, done_samples=self.layout.n_samples)
        self.array.attrs[ZARR_ATTR] = self.info
        if self.replaces is not None:
            old = self.replaces.with_name(f"{self.replaces.name}.{secrets.token_hex(4)}.replaced")
            try:
                os.rename(self.replaces, old)
                os.rename(self.path, self.replaces)
            except OSError as exc:
                raise OutputError(
                    f"replacing {str(self.replaces)!r} failed ({reason(exc)}); the new result "
                    f"is kept as {str(self.path)!r}."
                ) from exc
            shutil.rmtree(old, ignore_errors=True)
            self.path = self.replaces

    def abort(self) -> str:
        if self.replaces is None:
            return ""
        self.discard()
        return f"The earlier result in {str(self.replaces)!r} is unchanged."

    def discard(self) -> None:
        if self.replaces is not None:  # the new result beside it: ours, never complete
            shutil.rmtree(self.path, ignore_errors=True)


def _resumable(path: Path, layout: AxesLayout, identity: dict):
    """The existing store and its record, if it holds this very work (else say what
    differs)."""
    import zarr

    try:
        array = zarr.open_array(str(path), mode="r+")
        info = dict(array.attrs.get(ZARR_ATTR, {}))
    except Exception as exc:  # not a zarr array at all
        raise InputError(
            f"{str(path)!r} is not a prediction store of napari-pix2pix; it is "
            "left alone. Choose another output name."
        ) from exc
    if info.get("axes") != layout.axes or tuple(array.shape) != tuple(layout.shape):
        raise InputError(
            f"{str(path)!r} holds a prediction of another shape ({tuple(array.shape)}"
            f", axes {info.get('axes')!r}; this one is {tuple(layout.shape)}, "
            f"{layout.axes!r}): it cannot be resumed. Choose another output name."
        )
    stored = info.get("identity") or {}
    for part, what in (
        ("model", "another model"),
        ("input", "another input"),
        ("tiling", "other tiling options"),
    ):
        if stored.get(part) != identity.get(part):
            raise InputError(
                f"{str(path)!r} was written by {what} ({part}: {stored.get(part)} "
                f"there, {identity.get(part)} now); resuming would mix two results. "
                "Use the same inputs and options, or another output name."
            )
    return array, info


def store_is_ours(path: Path) -> bool:
    """Whether napari-pix2pix made this zarr store (only those may be replaced): it
    writes zarr stores only as predictions (ZarrOutput), which record their model
    (prediction_attrs; stores of earlier versions, the model's hash in their identity)."""
    try:
        attrs = json.loads((path / "zarr.json").read_text(encoding="utf-8")).get("attributes", {})
    except (OSError, ValueError, AttributeError):
        try:  # zarr format 2
            attrs = json.loads((path / ".zattrs").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
    return isinstance(attrs, dict) and ZARR_ATTR in attrs


class TiffOutput:
    """Streams pages into ``<name>.partial`` from a writer thread and renames it when the
    last page is in: an interrupted run never leaves a file that looks complete.

    The file's axes are the sample axes, then Z (3D models), then C, then YX, so that
    pages come out in the order tiles finish (only one sample's planes wait in memory)."""

    def __init__(
        self,
        path: Path,
        in_layout: AxesLayout,
        out_channels: int,
        has_c: bool,
        scale: dict,
        unit: str | None,
        replace: bool = False,
        model_sha256: str = "",
    ) -> None:
        import tifffile

        self.file = AtomicFile(path, partial=True, replace=replace)
        self.partial = self.file.temp
        self.dims = in_layout.spatial_dims
        self.has_c = has_c
        axes = (
            in_layout.sample_axes + ("Z" if self.dims == 3 else "") + ("C" if has_c else "") + "YX"
        )
        self.layout = in_layout.with_channels(axes, out_channels)
        shape = self.layout.shape
        self.buffer = None
        self.done_samples = 0
        # queued pages hold their planes in memory: a few pages, whatever their size; a
        # full queue blocks the predictor until the writer catches up (back-pressure)
        self.pages: queue.Queue = queue.Queue(maxsize=PAGES_AHEAD)
        self.error: BaseException | None = None
        nbytes = int(np.prod(shape)) * 4

        def pages():
            while True:
                page = self.pages.get()
                if page is None:
                    return
                yield page

        def run():
            try:
                tifffile.imwrite(
                    self.partial,
                    data=pages(),
                    shape=shape,
                    dtype="float32",
                    ome=True,
                    bigtiff=nbytes > 2**31 - 2**25,
                    metadata=ome_metadata(axes, scale, unit),
                    photometric="minisblack",
                    software=prediction_software(model_sha256),
                )
            except BaseException as exc:  # reported to the caller in finish()
                self.error = exc
                while True:  # free a producer blocked on a full queue; _put then raises
                    try:
                        self.pages.get_nowait()
                    except queue.Empty:
                        break

        self.thread = threading.Thread(target=run, name="pix2pix-tiff-writer", daemon=True)
        self.thread.start()

    def _put(self, page: np.ndarray) -> None:
        if self.error is not None:
            raise self._failed()
        self.pages.put(np.ascontiguousarray(page, dtype=np.float32))

    def _failed(self) -> Exception:
        why = reason(self.error) if isinstance(self.error, OSError) else str(self.error)
        error = OutputError(
            f"writing {str(self.file.path)!r} failed ({why}); what was "
            f"written is kept as {str(self.partial)!r}."
        )
        error.__cause__ = self.error
        return error

    def write(self, n: int, rows: slice, block: np.ndarray) -> None:
        if self.dims == 3:  # rows are Z planes: each is complete for every channel
            for z in range(block.shape[1]):
                for c in range(block.shape[0] if self.has_c else 1):
                    self._put(block[c, z])
            return
        if self.buffer is None:
            self.buffer = np.empty((block.shape[0],) + self.layout.spatial_shape, np.float32)
        self.buffer[:, rows] = block

    def sample_done(self, n: int) -> None:
        if self.dims == 2:
            for c in range(self.buffer.shape[0] if self.has_c else 1):
                self._put(self.buffer[c])
            # the queued pages are views of this buffer and the writer may still be behind:
            # the next sample gets a new one instead of overwriting rows not yet written
            self.buffer = None
        self.done_samples = n + 1

    def finish(self) -> None:
        self.pages.put(None)
        self.thread.join()
        if self.error is not None:
            raise self._failed()
        self.file.commit()

    def abort(self) -> str:
        """Stop the writer; the ``.partial`` file stays, named as what it is."""
        failed = self.error is not None  # then its error already names the file
        if not failed:
            self.pages.put(None)
        self.thread.join(timeout=60)
        if failed or not self.partial.exists():
            return ""
        return (
            f"What was written is kept as {str(self.partial)!r}; "
            f"{str(self.file.path)!r} was not made."
        )

    def discard(self) -> None:
        self.partial.unlink(missing_ok=True)  # ours: a unique name made by this run


class NiftiOutput(ArrayOutput):
    """The prediction in memory, written as NIfTI when complete: with the input's header
    (``meta``), so its affine, spacing and origin are the input's."""

    def __init__(
        self, path: Path, layout: AxesLayout, scale, unit, meta, replace: bool, model_sha256=""
    ):
        super().__init__(np.empty(layout.shape, np.float32), layout)
        self.path, self.scale, self.unit, self.meta, self.replace = path, scale, unit, meta, replace
        self.descrip = prediction_descrip(model_sha256)

    def finish(self) -> None:
        write_nifti(
            self.path,
            self.array,
            self.layout.axes,
            self.scale,
            self.unit,
            self.meta,
            overwrite=self.replace,
            descrip=self.descrip,
        )


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
    name = path.name.lower()
    if name.endswith(".zarr"):
        check_output_path(
            path,
            inputs=inputs,
            folder_ok=True,
            ours=store_is_ours,
            if_exists=if_exists,
            not_ours=" as a prediction store",
        )
    elif name.endswith((".tif", ".tiff")) or is_nifti(name):
        check_output_path(
            path,
            inputs=inputs,
            ours=nifti_is_ours if is_nifti(name) else tiff_is_ours,
            if_exists="error" if if_exists == "resume" else if_exists,
            not_ours=NOT_A_PREDICTION,
        )
        if if_exists == "resume":
            raise InputError(
                "resuming needs a .zarr output; a TIFF or NIfTI file is written in one go "
                "(use out='result.zarr' to be able to resume)."
            )
        if is_nifti(name) and shape is not None:  # held whole in memory until written
            nbytes = 4 * int(np.prod(shape))
            free = short_of_memory(nbytes)
            if free is not None:
                raise InputError(
                    f"a NIfTI output is held in memory until written: {gib(nbytes)} "
                    f"({tuple(shape)} float32), more than the {gib(free)} available; "
                    "predict into a .zarr output (streamed), e.g. out='result.zarr'."
                )
    else:
        raise InputError(
            f"out must end in .tif, .tiff, .ome.tif, .nii, .nii.gz or .zarr, got {str(path)!r}."
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
    """An output for ``out``: None (a new numpy array), an array of floats, or a .tif,
    .nii(.gz) or .zarr path, checked (check_output) before anything is created. ``meta``:
    the input's medical header (ImageData.meta), which a NIfTI output keeps. A file is
    marked as a prediction of the model whose file form hashes to ``model_sha256``
    (provenance.py): only such files may be replaced later."""
    out_layout = in_layout.with_channels(out_axes, out_channels)
    check_output(out, out_layout.shape, out_axes, if_exists, inputs)
    if out is None:
        return ArrayOutput(np.empty(out_layout.shape, np.float32), out_layout)
    if not isinstance(out, (str, os.PathLike)):
        return ArrayOutput(out, out_layout)
    path = user_path(out)
    if path.name.lower().endswith(".zarr"):
        return ZarrOutput(path, out_layout, scale or {}, unit, if_exists, identity, model_sha256)
    if is_nifti(path):
        replace = if_exists == "overwrite"
        return NiftiOutput(path, out_layout, scale, unit, meta, replace, model_sha256)
    return TiffOutput(
        path,
        in_layout,
        out_channels,
        "C" in out_axes,
        scale or {},
        unit,
        replace=if_exists == "overwrite",
        model_sha256=model_sha256,
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
