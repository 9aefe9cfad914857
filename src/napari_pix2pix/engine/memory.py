"""Running out of memory: how it is recognised, and the one order in which work is
shrunk to fit. Prediction retries along it; training names the first setting that fits,
so that the user's next run does not fail again."""

from __future__ import annotations

import gc
import math
import os

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


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get without swapping (Linux MemAvailable,
    else free pages), or None where the system does not say."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def refuse_beyond_memory(nbytes: int, what: str, fix: str, error: type[Exception]) -> None:
    """Refuse, before it starts, to hold ``nbytes`` at once where they would take more
    than 80 % of the available memory (a compressed file can decode to far more than its
    size; swapping would stall the machine for minutes). The message: '<what> 3.2 GiB,
    more than the 2.9 GiB of memory available; <fix>'."""
    free = available_memory()
    if free is not None and nbytes > 0.8 * free:
        raise error(f"{what} {gib(nbytes)}, more than the {gib(free)} of memory available; {fix}")


def device_memory(device: torch.device) -> int | None:
    """Free bytes on ``device`` (free CUDA memory, else the machine's available memory).
    On CUDA the blocks PyTorch's allocator holds cached but unused count as free: they
    are this process's to reuse, and mem_get_info counts them as taken."""
    if device.type == "cuda":
        try:
            free = torch.cuda.mem_get_info(device)[0]
            cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
            return free + max(0, cached)
        except RuntimeError:
            return None
    return available_memory()


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def unet_bytes(config, batch: int, spatial: tuple[int, ...], training: bool = False) -> int:
    """A rough upper estimate of the memory one U-Net call on ``batch`` crops of
    ``spatial`` takes: the encoder's outputs (kept for the skips), the decoder's, the
    input and output, and for training their gradients and the discriminator's share.
    Used to refuse or shrink absurd sizes before allocating, not to plan exactly."""
    n = batch * math.prod(spatial)
    dims = len(spatial)
    chans = [config.base_channels * min(2**i, 8) for i in range(config.depth)]
    levels = sum(c / 2 ** (dims * (i + 1)) for i, c in enumerate(chans))
    per_pixel = config.in_channels + config.out_channels + 6 * levels  # encoder, decoder, cat
    return int(4 * n * per_pixel * (4 if training else 2))
