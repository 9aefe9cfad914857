"""Aligned (source, target) training pairs: axes resolved and checked, every image
turned into canonical (C, *spatial) samples, before any training starts. Images in
memory (numpy) become numpy views; lazy ones (file-backed, zarr, dask) become
LazySample views that are read box by box during training."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .arrays import as_array, check_array, check_finite
from .axes import AxesLayout, check_axes, required_axes, to_canonical
from .lazy import LazySample

Sample = tuple[np.ndarray | LazySample, np.ndarray | LazySample]


def check_pair(
    source_shape,
    source_axes: str,
    target_shape,
    target_axes: str,
    spatial_dims: int = 2,
    label: str = "",
) -> None:
    """Raise an InputError unless source and target (with their axes) are aligned:
    the same size along every axis but C. Cheap: only shapes are looked at."""

    def sizes(shape, axes):
        return {a: n for a, n in zip(axes, shape) if a != "C"}

    s_sizes, t_sizes = sizes(source_shape, source_axes), sizes(target_shape, target_axes)
    if s_sizes != t_sizes:
        hint = ""
        if sorted(s_sizes.values()) == sorted(t_sizes.values()):
            hint = " The same sizes appear in another order: check the axes of each image."
        raise InputError(
            f"source{label} {tuple(source_shape)} (axes {source_axes!r}) and target "
            f"{tuple(target_shape)} (axes {target_axes!r}) are not aligned: they need "
            f"the same size along every axis except C.{hint}"
        )


def prepare_pairs(
    sources: list[tuple],
    targets: list[tuple],
    axes: str | None,
    target_axes: str | None,
    spatial_dims: int,
    names: list[str] | None = None,
) -> tuple[list[Sample], str, str, list[int]]:
    """(array, axes from its file or '') per source and target -> aligned samples.
    ``names``: each pair's name (its file's), which messages about several pairs use: a
    user finds 'a.tif' in a folder, not 'pair 0'.

    Returns ([(source (C_in, *S), target (C_out, *S)), ...], source axes, target axes,
    the pair each sample comes from), checking everything that would otherwise fail
    deep inside training. numpy images are checked for NaN here; lazy ones as they are
    read."""
    if len(sources) != len(targets):
        raise InputError(
            f"got {len(sources)} source image(s) but {len(targets)} target image(s); "
            "give one target per source."
        )
    if not sources:
        raise InputError("no training images given.")
    samples: list[Sample] = []
    groups: list[int] = []
    used_axes = ("", "")
    for i, ((s, s_file_axes), (t, t_file_axes)) in enumerate(zip(sources, targets)):
        label = f" ({_pair_name(names, i)})" if len(sources) > 1 else ""
        s_arr, t_arr = as_array(s, "source" + label), as_array(t, "target" + label)
        check_array(s_arr, "source" + label)
        check_array(t_arr, "target" + label)
        s_axes = check_axes(
            axes or s_file_axes or required_axes(s_arr.ndim, "source" + label),
            s_arr.ndim,
            spatial_dims,
            "source" + label,
        )
        t_axes = check_axes(
            target_axes
            or (axes if axes and len(axes) == t_arr.ndim else None)
            or t_file_axes
            or required_axes(t_arr.ndim, "target" + label),
            t_arr.ndim,
            spatial_dims,
            "target" + label,
        )
        check_pair(s_arr.shape, s_axes, t_arr.shape, t_axes, spatial_dims, label)
        s_can = _samples(s_arr, s_axes, spatial_dims, "source" + label)
        t_can = _samples(t_arr, t_axes, spatial_dims, "target" + label)
        if samples and (s_can[0].shape[0], t_can[0].shape[0]) != (
            samples[0][0].shape[0],
            samples[0][1].shape[0],
        ):
            raise InputError(
                f"{_pair_name(names, i)} has {s_can[0].shape[0]} -> {t_can[0].shape[0]} "
                f"channels but {_pair_name(names, 0)} has {samples[0][0].shape[0]} -> "
                f"{samples[0][1].shape[0]}; every pair needs the same channels."
            )
        used_axes = (s_axes, t_axes)
        samples += list(zip(s_can, t_can))
        groups += [i] * len(s_can)
    return samples, used_axes[0], used_axes[1], groups


def _pair_name(names: list[str] | None, i: int) -> str:
    return repr(names[i]) if names else f"pair {i + 1}"


def _samples(array, axes: str, spatial_dims: int, what: str) -> list:
    """The (C, *spatial) samples of one image: numpy views (checked for NaN now), or
    LazySample views of a lazy array (nothing is read here)."""
    if isinstance(array, np.ndarray):
        canonical = np.asarray(to_canonical(array, axes, spatial_dims))
        check_finite(canonical, what)
        return list(canonical)
    layout = AxesLayout(axes, array.shape, spatial_dims)
    return [LazySample(array, layout, n, what=what) for n in range(layout.n_samples)]
