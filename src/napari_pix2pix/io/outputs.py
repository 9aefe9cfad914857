"""Where a prediction goes when it is a file, region by region as the tiles finish: a
zarr store (resumable) or a streamed OME-TIFF. Nothing here holds the whole result, so
stacks larger than RAM stream through. (An in-memory array is the engine's ArrayOutput.)"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from ..engine.axes import AxesLayout
from ..engine.inference import ArrayOutput
from ..errors import InputError
from .metadata import ome_metadata
from .output_paths import AtomicFile, check_output_path

ZARR_ATTR = "napari_pix2pix"


class ZarrOutput(ArrayOutput):
    """A zarr store marked incomplete until the last sample is written; a rerun with
    ``if_exists="resume"`` skips the samples it already holds."""

    def __init__(
        self, path: Path, layout: AxesLayout, scale: dict, unit: str | None, if_exists: str
    ) -> None:
        import zarr

        shape, out_axes = tuple(layout.shape), layout.axes
        existing = None
        if path.exists():
            if if_exists == "error":
                raise InputError(f"{str(path)!r} exists; choose if_exists='overwrite' or 'resume'.")
            try:
                existing = zarr.open_array(str(path), mode="r+")
            except Exception:
                existing = None
        info = dict(existing.attrs.get(ZARR_ATTR, {})) if existing is not None else {}
        if (
            if_exists == "resume"
            and info.get("axes") == out_axes
            and tuple(existing.shape) == shape
        ):
            array = existing
            done = layout.n_samples if info.get("complete") else int(info.get("done_samples", 0))
        else:
            chunks = tuple(
                1 if a not in layout.spatial + "C" else (s if a == "C" else min(s, 512))
                for a, s in zip(out_axes, shape)
            )
            array = zarr.open_array(
                str(path), mode="w", shape=shape, chunks=chunks, dtype="float32", fill_value=np.nan
            )
            info = {
                "axes": out_axes,
                "scale": scale,
                "unit": unit,
                "complete": False,
                "done_samples": 0,
            }
            array.attrs[ZARR_ATTR] = info
            done = 0
        super().__init__(array, layout)
        self.info = info
        self.done_samples = done

    def sample_done(self, n: int) -> None:
        super().sample_done(n)
        self.info["done_samples"] = self.done_samples
        self.array.attrs[ZARR_ATTR] = self.info

    def finish(self) -> None:
        self.info.update(complete=True, done_samples=self.layout.n_samples)
        self.array.attrs[ZARR_ATTR] = self.info


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
    ) -> None:
        import tifffile

        self.file = AtomicFile(path, partial=True)
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
        # queued pages hold their planes in memory: at most ~256 MB of them (and at least 2)
        page_bytes = 4 * int(np.prod(self.layout.spatial_shape[-2:]))
        self.pages: queue.Queue = queue.Queue(maxsize=max(2, min(64, (256 << 20) // page_bytes)))
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
                )
            except BaseException as exc:
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
            raise OSError(f"writing {self.partial} failed: {self.error}") from self.error
        self.pages.put(np.ascontiguousarray(page, dtype=np.float32))

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
            raise OSError(f"writing {self.partial} failed: {self.error}") from self.error
        self.file.commit()

    def abort(self) -> None:
        """Stop the writer; the ``.partial`` file stays, named as what it is."""
        if self.error is None:
            self.pages.put(None)
        self.thread.join(timeout=60)


def open_output(
    out,
    in_layout: AxesLayout,
    out_axes: str,
    out_channels: int,
    scale: dict | None = None,
    unit: str | None = None,
    if_exists: str = "overwrite",
):
    """An output for ``out``: None (a new numpy array), an array, or a .tif/.zarr path."""
    out_layout = in_layout.with_channels(out_axes, out_channels)
    shape = out_layout.shape
    if out is None:
        return ArrayOutput(np.empty(shape, np.float32), out_layout)
    if not isinstance(out, (str, os.PathLike)):
        if tuple(out.shape) != shape:
            raise InputError(
                f"out has shape {tuple(out.shape)} but the prediction needs {shape} "
                f"(axes {out_axes!r})."
            )
        return ArrayOutput(out, out_layout)
    path = Path(out)
    name = path.name.lower()
    if name.endswith(".zarr"):
        check_output_path(path, folder_ok=True)
        return ZarrOutput(path, out_layout, scale or {}, unit, if_exists)
    if name.endswith((".tif", ".tiff")):
        check_output_path(path)
        if if_exists == "resume":
            raise InputError(
                "resuming needs a .zarr output; a TIFF is written in one go "
                "(use out='result.zarr' to be able to resume)."
            )
        if if_exists == "error" and path.exists():
            raise InputError(f"{str(path)!r} exists; choose if_exists='overwrite'.")
        return TiffOutput(path, in_layout, out_channels, "C" in out_axes, scale or {}, unit)
    raise InputError(f"out must end in .tif, .tiff, .ome.tif or .zarr, got {str(path)!r}.")
