"""Aligned (source, target) training pairs: axes resolved and checked, every image
turned into canonical (C, *spatial) samples, before any training starts."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .arrays import as_array, check_array, check_finite
from .axes import check_axes, required_axes, to_canonical

Sample = tuple[np.ndarray, np.ndarray]


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
) -> tuple[list[Sample], str, str]:
    """(array, axes from its file or '') per source and target -> aligned samples.

    Returns ([(source (C_in, *S), target (C_out, *S)), ...], source axes, target axes),
    checking everything that would otherwise fail deep inside training."""
    if len(sources) != len(targets):
        raise InputError(
            f"got {len(sources)} source image(s) but {len(targets)} target image(s); "
            "give one target per source."
        )
    if not sources:
        raise InputError("no training images given.")
    samples: list[Sample] = []
    used_axes = ("", "")
    for i, ((s, s_file_axes), (t, t_file_axes)) in enumerate(zip(sources, targets)):
        label = f" (pair {i})" if len(sources) > 1 else ""
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
        s_can = np.asarray(to_canonical(s_arr, s_axes, spatial_dims))
        t_can = np.asarray(to_canonical(t_arr, t_axes, spatial_dims))
        if samples and (s_can.shape[1], t_can.shape[1]) != (
            samples[0][0].shape[0],
            samples[0][1].shape[0],
        ):
            raise InputError(f"pair {i} has a different number of channels than pair 0.")
        check_finite(s_can, "source" + label)
        check_finite(t_can, "target" + label)
        used_axes = (s_axes, t_axes)
        samples += [(s_can[n], t_can[n]) for n in range(s_can.shape[0])]
    return samples, used_axes[0], used_axes[1]
