"""Getting images in and out: axes strings, TIFF reading/writing with physical scale,
percentile normalization, the train/validation split and paired random crops.

Internally every image is "canonical": an array (N, C, *spatial) where N runs over
independent samples (T, and Z when the model is 2D) and spatial is (Y, X) or (Z, Y, X).
"""

from __future__ import annotations

import os
import struct
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ImageFileError, InputError

AXES_LETTERS = "TZCYX"
SUPPORTED_DTYPES = ("uint8", "uint16", "uint32", "int8", "int16", "int32", "float16", "float32",
                    "float64", "bool")
TIFF_SUFFIXES = (".tif", ".tiff")


# ----------------------------------------------------------------------------- axes
def check_axes(axes: str, ndim: int, spatial_dims: int = 2, what: str = "image") -> str:
    """Return the upper-cased axes string, or raise a message saying what is wrong."""
    if not isinstance(axes, str):
        raise InputError(f"axes for the {what} must be a string such as 'YX' or 'CYX', got {axes!r}.")
    axes = axes.upper().replace("S", "C")
    unknown = sorted(set(axes) - set(AXES_LETTERS))
    if unknown:
        raise InputError(f"axes {axes!r} for the {what} uses unknown letters {unknown}; "
                         f"use only {', '.join(AXES_LETTERS)} (time, depth, channel, rows, columns).")
    repeated = sorted({a for a in axes if axes.count(a) > 1})
    if repeated:
        raise InputError(f"axes {axes!r} for the {what} repeats {repeated}; each letter may appear once.")
    if len(axes) != ndim:
        raise InputError(f"axes {axes!r} has {len(axes)} letters but the {what} has {ndim} dimensions; "
                         f"give one letter per dimension (e.g. {_axes_hint(ndim)!r}).")
    if "Y" not in axes or "X" not in axes:
        raise InputError(f"axes {axes!r} for the {what} must contain Y and X.")
    if spatial_dims == 3 and "Z" not in axes:
        raise InputError(f"a 3D model (spatial_dims=3) needs a Z axis, but the {what} axes are {axes!r}.")
    return axes


def _axes_hint(ndim: int) -> str:
    return {2: "YX", 3: "ZYX or CYX", 4: "CZYX or TZYX", 5: "TCZYX"}.get(ndim, "YX")


def spatial_axes(spatial_dims: int) -> str:
    return "ZYX" if spatial_dims == 3 else "YX"


def canonical_order(axes: str, spatial_dims: int) -> tuple[list[int], str]:
    """Permutation to (sample axes..., C?, spatial...) and the sample-axes letters."""
    spatial = spatial_axes(spatial_dims)
    samples = "".join(a for a in axes if a not in spatial and a != "C")
    order = [axes.index(a) for a in samples]
    if "C" in axes:
        order.append(axes.index("C"))
    order += [axes.index(a) for a in spatial]
    return order, samples


def to_canonical(array, axes: str, spatial_dims: int):
    """(any axes order) -> (N, C, *spatial). Works on numpy, dask and zarr-backed arrays
    as long as they support transpose/reshape (no data is read for lazy arrays)."""
    order, samples = canonical_order(axes, spatial_dims)
    x = array.transpose(order) if order != list(range(len(order))) else array
    n = int(np.prod([array.shape[axes.index(a)] for a in samples])) if samples else 1
    c = array.shape[axes.index("C")] if "C" in axes else 1
    return x.reshape((n, c) + tuple(x.shape[-spatial_dims:]))


def output_axes(source_axes: str, target_axes: str, image_axes: str) -> str:
    """Axes of a prediction: the input's axes, with a C axis only where the model's
    target has one (placed where the input has its C, else before the spatial axes)."""
    out = image_axes.replace("C", "")
    if "C" in target_axes:
        pos = image_axes.index("C") if "C" in image_axes else min(
            out.index(a) for a in "ZYX" if a in out)
        out = out[:pos] + "C" + out[pos:]
    return out


# ----------------------------------------------------------------------------- files
@dataclass
class ImageData:
    """An image with its axes and physical pixel size per spatial axis (e.g. {'X': 0.65})."""

    array: object
    axes: str
    scale: dict[str, float] = field(default_factory=dict)
    unit: str | None = None


def _tifffile_axes(axes: str) -> str:
    """tifffile's series axes -> ours ('S' samples -> C, 'I'/'Q' unknown -> Z)."""
    mapping = {"S": "C", "I": "Z", "Q": "Z"}
    out = "".join(mapping.get(a, a) for a in axes)
    if len(set(out)) != len(out) or set(out) - set(AXES_LETTERS):
        return ""
    return out


def read_image(path, lazy: bool = False) -> ImageData:
    """Read a TIFF / OME-TIFF with its axes and physical pixel sizes.

    ``lazy`` returns a zarr array backed by the file instead of reading it whole."""
    import tifffile

    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"image file {str(path)!r} does not exist.")
    if path.is_dir():
        raise ImageFileError(f"{str(path)!r} is a directory, not an image file.")
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise ImageFileError(f"{str(path)!r} is not a TIFF file (.tif/.tiff expected).")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            _check_complete(tif, series, path)
            axes = _tifffile_axes(series.axes)
            scale, unit = _physical_scale(tif)
            array = None if lazy else series.asarray()
        if lazy:
            import zarr

            # the store owns its own file handle, so the array stays readable
            array = zarr.open(tifffile.imread(path, aszarr=True, series=0), mode="r")
            if not hasattr(array, "shape"):  # a pyramid: take full resolution
                array = array["0"]
    except (tifffile.TiffFileError, ValueError, IndexError, EOFError, struct.error) as exc:
        raise ImageFileError(f"cannot read {str(path)!r} as a TIFF image ({exc}).") from exc
    return ImageData(array, axes, {a: s for a, s in scale.items() if a in axes}, unit)


def _check_complete(tif, series, path: Path) -> None:
    """Refuse a truncated file (an interrupted copy or download) up front, instead of
    failing on its missing planes part-way through a long prediction."""
    if series.dataoffset is not None:
        end = series.dataoffset + series.nbytes
    else:
        end = max((o + c for page in series.pages if page is not None
                   for o, c in zip(page.dataoffsets, page.databytecounts)), default=0)
    size = tif.filehandle.size
    if end > size:
        raise ImageFileError(f"{str(path)!r} is truncated: its image data needs {end} bytes but "
                             f"the file has only {size}; copy or save it again.")


def _physical_scale(tif) -> tuple[dict[str, float], str | None]:
    """Pixel sizes from OME-XML, else from ImageJ metadata and the resolution tags."""
    if tif.is_ome and tif.ome_metadata:
        try:
            root = ET.fromstring(tif.ome_metadata)
            pixels = next(el for el in root.iter() if el.tag.endswith("Pixels"))
            scale = {a: float(pixels.get(f"PhysicalSize{a}")) for a in "XYZ"
                     if pixels.get(f"PhysicalSize{a}") is not None}
            return scale, pixels.get("PhysicalSizeXUnit", "µm")
        except (ET.ParseError, StopIteration, ValueError):
            pass
    scale: dict[str, float] = {}
    unit = None
    page = tif.pages.first
    for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
        value = page.tags.get(tag)
        if value is not None:
            num, den = value.value
            if num and den and (num, den) != (1, 1):
                scale[axis] = den / num
    if tif.is_imagej and tif.imagej_metadata:
        meta = tif.imagej_metadata
        unit = meta.get("unit")
        if "spacing" in meta:
            scale["Z"] = float(meta["spacing"])
    return scale, unit


def write_image(path, array: np.ndarray, axes: str, scale: dict[str, float] | None = None,
                unit: str | None = None) -> Path:
    """Write an OME-TIFF (BigTIFF when large) carrying axes and physical pixel sizes.
    Written to a temporary name and renamed, so an interrupted write never leaves a
    file that looks complete."""
    import tifffile

    path = Path(path)
    check_output_path(path)
    metadata: dict = {"axes": axes}
    for a, s in (scale or {}).items():
        if a in axes and a in "XYZ":
            metadata[f"PhysicalSize{a}"] = float(s)
            if unit:
                metadata[f"PhysicalSize{a}Unit"] = unit
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tifffile.imwrite(tmp, array, ome=True, bigtiff=array.nbytes > 2**31, metadata=metadata,
                         photometric="minisblack")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def check_output_path(path, folder_ok: bool = False) -> None:
    """Fail before long work starts if the result could not be written there
    (``folder_ok``: the output is itself a folder, e.g. a zarr store)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir() and not folder_ok:
        raise InputError(f"output path {str(path)!r} is a directory; give a file name such as "
                         f"{str(path / 'result.ome.tif')!r}.")
    if not folder.exists():
        raise InputError(f"output folder {str(folder)!r} does not exist; create it first.")
    try:  # os.access is not enough: read-only mounts and network shares lie about it
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InputError(f"output folder {str(folder)!r} is not writable ({exc.strerror}); "
                         "choose another folder.") from exc


# ----------------------------------------------------------------------------- inputs
def as_array(image, what: str):
    """Accept a numpy-like array or a TIFF path; return (array, axes-from-file or '')."""
    if isinstance(image, (str, os.PathLike)):
        data = read_image(image)
        return data.array, data.axes
    if isinstance(image, ImageData):
        image, axes = image.array, image.axes
    else:
        axes = ""
    if type(image).__module__.startswith("zarr"):
        import dask.array as da  # zarr arrays cannot transpose/reshape lazily; dask can

        return da.from_zarr(image), axes
    if not hasattr(image, "shape") or not hasattr(image, "dtype"):
        try:
            image = np.asarray(image)
        except Exception as exc:  # noqa: BLE001 - anything unconvertible is a user error
            raise InputError(f"the {what} must be an array or a TIFF path, got {type(image).__name__}.") from exc
    return image, axes


def check_array(array, what: str) -> None:
    if str(array.dtype) not in SUPPORTED_DTYPES:
        raise InputError(f"the {what} has dtype {array.dtype}; use an integer or float image "
                         f"({', '.join(SUPPORTED_DTYPES)}).")
    if 0 in array.shape:
        raise InputError(f"the {what} is empty (shape {tuple(array.shape)}).")


def check_finite(array: np.ndarray, what: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise InputError(f"the {what} contains {bad} NaN or infinite values; replace them "
                         f"(e.g. numpy.nan_to_num) before training or prediction.")


# ----------------------------------------------------------------------------- normalization
def percentile_range(samples: list[np.ndarray], percentiles: tuple[float, float],
                     what: str, max_values: int = 2**24) -> tuple[list[float], list[float]]:
    """Per-channel low/high percentiles over canonical (C, *spatial) samples, subsampled
    evenly when larger than ``max_values`` per channel to stay fast on big stacks."""
    channels = samples[0].shape[0]
    stride = sum(int(np.prod(s.shape[1:])) for s in samples) // max_values + 1
    lows, highs = [], []
    for c in range(channels):
        values = np.concatenate([np.asarray(s[c]).ravel()[::stride].astype(np.float64)
                                 for s in samples])
        lo, hi = np.percentile(values, percentiles)
        if not hi > lo:
            lo, hi = float(values.min()), float(values.max())
        if not hi > lo:
            raise InputError(f"channel {c} of the {what} is constant ({lo:g}); it carries no "
                             f"information to learn from. Remove that channel or check the image.")
        lows.append(float(lo))
        highs.append(float(hi))
    return lows, highs


def normalize(x: np.ndarray, low, high, channel_axis: int = 0) -> np.ndarray:
    """Map [low, high] per channel to [-1, 1] as float32."""
    lo, hi = _channel_vectors(x, low, high, channel_axis)
    return ((np.asarray(x, dtype=np.float32) - lo) * (2.0 / (hi - lo)) - 1.0).astype(np.float32)


def denormalize(x: np.ndarray, low, high, channel_axis: int = 0) -> np.ndarray:
    """Exact inverse of ``normalize``: back to the image's own units, float32."""
    lo, hi = _channel_vectors(x, low, high, channel_axis)
    return ((np.asarray(x, dtype=np.float32) + 1.0) * ((hi - lo) / 2.0) + lo).astype(np.float32)


def _channel_vectors(x: np.ndarray, low, high, channel_axis: int):
    shape = [1] * x.ndim
    shape[channel_axis] = -1
    return (np.asarray(low, dtype=np.float32).reshape(shape),
            np.asarray(high, dtype=np.float32).reshape(shape))


# ----------------------------------------------------------------------------- split and crops
@dataclass
class Split:
    """Training and validation samples as lists of (source, target) (C, *spatial) arrays."""

    train: list[tuple[np.ndarray, np.ndarray]]
    val: list[tuple[np.ndarray, np.ndarray]]
    description: str


def split_train_val(pairs: list[tuple[np.ndarray, np.ndarray]], val_fraction: float,
                    max_val_samples: int = 8) -> Split:
    """Hold out whole samples (the last slices or images) when there are several, else the
    last ``val_fraction`` of the X axis of each image. Training crops are taken only from
    the training part, so they never overlap the validation data."""
    if val_fraction <= 0:
        return Split(pairs, [], "no validation")
    n_val = int(round(len(pairs) * val_fraction))
    if len(pairs) >= 2 and n_val >= 1:
        n_val = min(n_val, len(pairs) - 1)
        val = pairs[len(pairs) - n_val:][:max_val_samples]
        return Split(pairs[: len(pairs) - n_val], val,
                     f"last {n_val} of {len(pairs)} slices/images held out")
    train, val = [], []
    for src, tgt in pairs:
        width = src.shape[-1]
        n = max(1, int(round(width * val_fraction)))
        if width - n < 1:
            raise InputError(f"the image is too narrow ({width} px) to hold out {val_fraction:.0%} "
                             "for validation; use val_fraction=0 or a larger image.")
        train.append((src[..., : width - n], tgt[..., : width - n]))
        val.append((src[..., width - n:], tgt[..., width - n:]))
    return Split(train, val[:max_val_samples],
                 f"right {val_fraction:.0%} of X (columns {pairs[0][0].shape[-1] - n}-) held out")


def pad_to_at_least(x: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Reflect-pad the spatial axes (the last len(size)) up to ``size``."""
    pads = [(0, 0)] * (x.ndim - len(size)) + [(0, max(0, s - d)) for s, d in zip(size, x.shape[-len(size):])]
    if any(p[1] for p in pads):
        x = np.pad(x, pads, mode="reflect" if min(x.shape[-len(size):]) > 1 else "edge")
    return x


# normalized target level ([-1, 1]) above which a pixel counts as foreground for crop
# sampling: the upper three quarters of the target's percentile range
FOREGROUND_LEVEL = -0.5


class PairedPatchSampler:
    """Random aligned (source, target) crops with paired flips and 90-degree rotations.

    MONAI dictionary transforms apply the same random crop/flip/rotation to both keys,
    which keeps every pair pixel-aligned. Samples are drawn in proportion to their area.
    With ``foreground`` > 0 that fraction of the crops is centred on a target pixel in
    the upper three quarters of the target's normalized range (MONAI's
    RandCropByPosNegLabeld with precomputed indices): sparse targets such as nuclei then
    fill most crops instead of empty background, which the discriminator would
    otherwise learn to reward.
    """

    def __init__(self, train: list[tuple[np.ndarray, np.ndarray]], patch_size: tuple[int, ...],
                 seed: int | None = None, foreground: float = 0.0) -> None:
        import torch
        from monai.transforms import (Compose, RandCropByPosNegLabeld, RandFlipd, RandRotate90d,
                                      RandSpatialCropd)

        dims = len(patch_size)
        self.samples, self.indices = [], []
        for src, tgt in train:
            both = np.concatenate([src, tgt], axis=0)
            both = pad_to_at_least(both, patch_size)
            self.samples.append((torch.from_numpy(np.ascontiguousarray(both)), src.shape[0]))
            if foreground > 0:
                mask = (both[src.shape[0]:] > FOREGROUND_LEVEL).any(axis=0).ravel()
                self.indices.append((np.flatnonzero(mask), np.flatnonzero(~mask)))
        areas = np.array([float(np.prod(s.shape[1:])) for s, _ in self.samples])
        self.weights = areas / areas.sum()
        keys = ["pair"]
        flips = [RandFlipd(keys, prob=0.5, spatial_axis=i) for i in range(dims)]
        crop = (RandCropByPosNegLabeld(keys, label_key=None, image_key="pair",
                                       spatial_size=patch_size, pos=foreground,
                                       neg=1.0 - foreground, fg_indices_key="fg",
                                       bg_indices_key="bg")
                if foreground > 0 else RandSpatialCropd(keys, roi_size=patch_size, random_size=False))
        self.transform = Compose([
            crop,
            *flips,
            RandRotate90d(keys, prob=0.5, spatial_axes=(dims - 2, dims - 1)),
        ])
        self.rng = np.random.default_rng(seed)
        self.transform.set_random_state(seed=None if seed is None else seed + 1)

    def batch(self, batch_size: int):
        """(source, target) float32 tensors of shape (B, C, *patch_size)."""
        import torch

        sources, targets = [], []
        for i in self.rng.choice(len(self.samples), size=batch_size, p=self.weights):
            both, n_src = self.samples[i]
            item = {"pair": both}
            if self.indices:
                item["fg"], item["bg"] = self.indices[i]
            crop = self.transform(item)
            crop = (crop[0] if isinstance(crop, list) else crop)["pair"]
            crop = crop.as_tensor() if hasattr(crop, "as_tensor") else torch.as_tensor(crop)
            sources.append(crop[:n_src])
            targets.append(crop[n_src:])
        return torch.stack(sources).contiguous(), torch.stack(targets).contiguous()

    def _random_states(self) -> list:
        """Every numpy RandomState the transforms draw from (Compose, each transform and
        the croppers inside dictionary transforms)."""
        owners = [self.transform]
        for t in self.transform.transforms:
            owners += [t] + [v for v in vars(t).values() if hasattr(v, "R") and hasattr(v, "randomize")]
        return [o.R for o in owners]

    def state(self) -> dict:
        """Random state of the sampler (JSON-able) for exact resumption."""
        states = []
        for r in self._random_states():
            name, keys, pos, has_gauss, gauss = r.get_state()
            states.append([name, [int(v) for v in keys], int(pos), int(has_gauss), float(gauss)])
        return {"rng": self.rng.bit_generator.state, "transforms": states}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        for r, (name, keys, pos, has_gauss, gauss) in zip(self._random_states(), state["transforms"]):
            r.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))


def load_pairs(source, target, axes: str | None, target_axes: str | None,
               spatial_dims: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], str, str]:
    """User inputs (arrays or TIFF paths, or lists of them) -> aligned canonical samples.

    Returns ([(source (C_in, *S), target (C_out, *S)), ...], source_axes, target_axes),
    checking everything that would otherwise fail deep inside training."""
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    targets = list(target) if isinstance(target, (list, tuple)) else [target]
    if len(sources) != len(targets):
        raise InputError(f"got {len(sources)} source image(s) but {len(targets)} target image(s); "
                         "give one target per source.")
    if not sources:
        raise InputError("no training images given.")
    pairs = []
    used_axes = None
    for i, (s, t) in enumerate(zip(sources, targets)):
        label = f" (pair {i})" if len(sources) > 1 else ""
        s_arr, s_file_axes = as_array(s, "source" + label)
        t_arr, t_file_axes = as_array(t, "target" + label)
        check_array(s_arr, "source" + label)
        check_array(t_arr, "target" + label)
        s_axes = check_axes(axes or s_file_axes or _default_axes(s_arr.ndim), s_arr.ndim,
                            spatial_dims, "source" + label)
        t_axes = check_axes(target_axes or (axes if axes and len(axes) == t_arr.ndim else None)
                            or t_file_axes or _default_axes(t_arr.ndim), t_arr.ndim, spatial_dims,
                            "target" + label)
        check_pair(s_arr.shape, s_axes, t_arr.shape, t_axes, spatial_dims, label)
        s_can = np.asarray(to_canonical(s_arr, s_axes, spatial_dims))
        t_can = np.asarray(to_canonical(t_arr, t_axes, spatial_dims))
        if used_axes and (s_can.shape[1], t_can.shape[1]) != (pairs[0][0].shape[0], pairs[0][1].shape[0]):
            raise InputError(f"pair {i} has a different number of channels than pair 0.")
        check_finite(s_can, "source" + label)
        check_finite(t_can, "target" + label)
        used_axes = (s_axes, t_axes)
        pairs += [(s_can[n], t_can[n]) for n in range(s_can.shape[0])]
    return pairs, used_axes[0], used_axes[1]


def check_pair(source_shape, source_axes: str, target_shape, target_axes: str,
               spatial_dims: int = 2, label: str = "") -> None:
    """Raise an InputError unless source and target (with their axes) are aligned:
    the same size along every axis but C. Cheap: only shapes are looked at."""
    def sizes(shape, axes):
        return {a: n for a, n in zip(axes, shape) if a != "C"}

    s_sizes, t_sizes = sizes(source_shape, source_axes), sizes(target_shape, target_axes)
    if s_sizes != t_sizes:
        hint = ""
        if sorted(s_sizes.values()) == sorted(t_sizes.values()):
            hint = " The same sizes appear in another order: check the axes of each image."
        raise InputError(f"source{label} {tuple(source_shape)} (axes {source_axes!r}) and target "
                         f"{tuple(target_shape)} (axes {target_axes!r}) are not aligned: they need "
                         f"the same size along every axis except C.{hint}")


def _default_axes(ndim: int) -> str:
    if ndim == 2:
        return "YX"
    raise InputError(f"the image has {ndim} dimensions; say what they are with axes=... "
                     f"(e.g. {_axes_hint(ndim)!r}).")


class AxesLayout:
    """Addresses one sample's band of rows in an array of any axes order, without
    reshaping it, so that numpy, zarr and dask arrays (and files behind them) are read
    and written region by region.

    A sample is one combination of the non-spatial, non-channel axes (T, and Z for 2D
    models); its block is (C, *spatial) with spatial (Y, X) or (Z, Y, X)."""

    def __init__(self, axes: str, shape: tuple[int, ...], spatial_dims: int) -> None:
        self.axes, self.shape, self.spatial_dims = axes, tuple(int(s) for s in shape), spatial_dims
        self.spatial = spatial_axes(spatial_dims)
        _, self.sample_axes = canonical_order(axes, spatial_dims)
        self.sample_shape = tuple(self.shape[axes.index(a)] for a in self.sample_axes)
        self.n_samples = int(np.prod(self.sample_shape)) if self.sample_shape else 1
        self.channels = self.shape[axes.index("C")] if "C" in axes else 1
        self.spatial_shape = tuple(self.shape[axes.index(a)] for a in self.spatial)
        block = ("C" if "C" in axes else "") + self.spatial
        # order of the block's axes as they come out of array[index]
        self._kept = [a for a in axes if a in block]
        self._to_block = [self._kept.index(a) for a in block]
        self._from_block = [block.index(a) for a in self._kept]

    def index(self, n: int, rows: slice) -> tuple:
        sample = dict(zip(self.sample_axes, np.unravel_index(n, self.sample_shape))) \
            if self.sample_axes else {}
        first = self.spatial[0]
        return tuple(int(sample[a]) if a in sample else rows if a == first else slice(None)
                     for a in self.axes)

    def read(self, array, n: int, rows: slice) -> np.ndarray:
        """(C, rows, *other spatial) of sample ``n``."""
        block = np.asarray(array[self.index(n, rows)])
        block = block.transpose(self._to_block)
        return block if "C" in self.axes else block[None]

    def write(self, array, n: int, rows: slice, block: np.ndarray) -> None:
        """Store a (C, rows, *other spatial) block of sample ``n``."""
        if "C" not in self.axes:
            block = block[0]
        array[self.index(n, rows)] = block.transpose(self._from_block)


def output_shape(layout: AxesLayout, out_axes: str, out_channels: int) -> tuple[int, ...]:
    sizes = dict(zip(layout.sample_axes, layout.sample_shape))
    sizes.update(zip(layout.spatial, layout.spatial_shape))
    sizes["C"] = out_channels
    return tuple(sizes[a] for a in out_axes)
