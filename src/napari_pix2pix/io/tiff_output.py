"""A prediction streamed into an OME-TIFF as its planes finish, from a writer thread, so
that stacks larger than memory pass through (BigTIFF when large). The file is written
as ``<name>.<id>.partial`` and renamed when the last page is in: an interrupted run never
leaves a file that looks complete."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np

from ..engine.axes import AxesLayout
from ..errors import OutputError
from .metadata import ome_metadata
from .output_paths import AtomicFile, reason
from .provenance import prediction_software

PAGES_AHEAD = 4  # output pages queued for the TIFF writer at most (memory: 4 planes)


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
