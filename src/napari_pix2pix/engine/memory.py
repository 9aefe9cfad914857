"""Running out of memory: how it is recognised, and the one order in which work is
shrunk to fit. Prediction retries along it; training names the first setting that fits,
so that the user's next run does not fail again."""

from __future__ import annotations

import gc

import torch


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA raises torch.OutOfMemoryError; MPS and some CUDA paths a plain RuntimeError."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def free_memory(device: torch.device) -> None:
    """Give the failed allocation's cached blocks back before retrying smaller."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def smaller(
    batch_size: int, size: tuple[int, ...], multiple: int, min_side: int
) -> tuple[int, tuple[int, ...]] | None:
    """The setting to try after (batch_size, size) ran out of memory: the batch halves
    down to 1, then, at batch 1, each side halves (kept a multiple of ``multiple`` and
    at least ``min_side``). None when nothing smaller is left."""
    if batch_size > 1:
        return batch_size // 2, tuple(size)
    side = tuple(max(min_side, s // 2 // multiple * multiple) for s in size)
    return (1, side) if side != tuple(size) else None


def fallbacks(
    batch_size: int, size: tuple[int, ...], multiple: int, min_side: int
) -> list[tuple[int, tuple[int, ...]]]:
    """Every setting smaller than (batch_size, size), in the order they are tried."""
    found, current = [], smaller(batch_size, size, multiple, min_side)
    while current is not None:
        found.append(current)
        current = smaller(*current, multiple, min_side)
    return found
