"""A prediction streamed into a zarr store, region by region as the tiles finish, and
marked incomplete until the last sample is written: a rerun with
``if_exists="resume"`` continues the very same work (the model, the input and the tiling
it records), and a result replaced with ``if_exists="overwrite"`` stays until the new
one is complete. OME-Zarr outputs (ome_zarr.py) are this store with NGFF metadata."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np

from ..engine.axes import AxesLayout
from ..engine.inference import ArrayOutput
from ..errors import ImageFileError, InputError, OutputError
from .output_paths import reason
from .provenance import ZARR_ATTR, prediction_attrs


class ZarrOutput(ArrayOutput):
    """A zarr array store; ``_create`` and ``_reopen`` make or open the store, and say
    where its record (``info``: axes, sizes, progress, identity) lives."""

    def __init__(
        self,
        path: Path,
        layout: AxesLayout,
        scale: dict,
        unit: str | None,
        if_exists: str,
        identity: dict | None = None,
        model_sha256: str = "",
        meta: dict | None = None,
    ) -> None:
        identity = identity or {}
        # replacing a result: the new one is made beside it and swapped in when complete,
        # so a run cut short leaves the earlier result as it was
        self.replaces = path if path.exists() and if_exists == "overwrite" else None
        if self.replaces is not None:
            path = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")
        if path.exists() and if_exists == "resume":
            array, self.attrs, info = self._reopen(path, layout)
            _check_same_work(path, layout, info, array, identity)
            done = layout.n_samples if info.get("complete") else int(info.get("done_samples", 0))
        else:
            info = {
                "axes": layout.axes,
                "scale": scale,
                "unit": unit,
                "complete": False,
                "done_samples": 0,
                "identity": identity,
                **prediction_attrs(model_sha256),
            }
            try:
                array, self.attrs = self._create(path, layout, scale, unit, meta or {}, info)
            except OSError as exc:
                raise OutputError(
                    f"cannot create the zarr store {str(path)!r} ({exc.strerror or exc})."
                ) from exc
            done = 0
        super().__init__(array, layout)
        self.path, self.info, self.done_samples = path, info, done

    def _create(self, path: Path, layout: AxesLayout, scale, unit, meta: dict, info: dict):
        """A new store for ``layout`` holding ``info``: (its array, the attributes that
        hold ``info``). Unwritten chunks read as NaN."""
        import zarr

        # "w" replaces a store of ours (checked by open_output); "w-" never replaces
        array = zarr.open_array(
            str(path),
            mode="w" if path.exists() else "w-",
            shape=layout.shape,
            chunks=chunk_shape(layout),
            dtype="float32",
            fill_value=np.nan,
        )
        array.attrs[ZARR_ATTR] = info
        return array, array.attrs

    def _reopen(self, path: Path, layout: AxesLayout):
        """An existing store to resume: (its array, the attributes holding its record,
        the record)."""
        import zarr

        try:
            array = zarr.open_array(str(path), mode="r+")
            return array, array.attrs, dict(array.attrs.get(ZARR_ATTR, {}))
        except Exception as exc:  # not a zarr array at all
            raise not_ours(path) from exc

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
        self.attrs[ZARR_ATTR] = self.info

    def finish(self) -> None:
        self.info.update(complete=True, done_samples=self.layout.n_samples)
        self.attrs[ZARR_ATTR] = self.info
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


def chunk_shape(layout: AxesLayout) -> tuple[int, ...]:
    """One sample per chunk, all channels, spatial blocks of at most 512."""
    return tuple(
        1 if a not in layout.spatial + "C" else (s if a == "C" else min(s, 512))
        for a, s in zip(layout.axes, layout.shape)
    )


def not_ours(path: Path) -> InputError:
    return InputError(
        f"{str(path)!r} is not a prediction store of napari-pix2pix; it is "
        "left alone. Choose another output name."
    )


def _check_same_work(path: Path, layout: AxesLayout, info: dict, array, identity: dict) -> None:
    """Resume only this very work: else say what differs."""
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


def refuse_unfinished(info: dict, path: Path) -> None:
    """An unfinished prediction store is not an image: its missing slices are NaN."""
    if info and not info.get("complete", True):
        raise ImageFileError(
            f"{str(path)!r} is an unfinished prediction (its missing slices are NaN); "
            "resume it first (if_exists='resume', CLI --resume)."
        )
