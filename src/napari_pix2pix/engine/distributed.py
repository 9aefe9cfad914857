"""Multi-GPU (or multi-process CPU) training with torch's own engine: run the same
script under ``torchrun --nproc_per_node=N``; ``train_iter`` notices the environment,
joins the process group and wraps both networks in DistributedDataParallel. Each rank
draws its own crops; gradients are averaged, so the weights stay identical."""

from __future__ import annotations

import atexit
import datetime
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

GROUP_TIMEOUT = 2 * 3600  # seconds a rank may wait for the others (validation, saving)


def world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def launch_rank() -> int:
    """This process's rank as torchrun gives it (0 outside torchrun), known before the
    process group is joined: only rank 0 writes, and owns, the run folder."""
    return int(os.environ.get("RANK", "0") or 0)


def setup(device: torch.device) -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes (if any): (rank, world size, device)."""
    if world_size() <= 1 or not dist.is_available():
        return 0, 1, device
    if not dist.is_initialized():
        # rank 0 alone validates and writes checkpoints while the others wait in their
        # next collective: a long validation must not look like a dead peer
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=datetime.timedelta(seconds=GROUP_TIMEOUT),
        )
        # the group we joined is left before the interpreter tears down: gloo's threads
        # destroyed unjoined abort the process ("terminate called without an active
        # exception", seen once in the torchrun test)
        atexit.register(_leave)
    if device.type == "cuda":
        # a scheduler that shows each process only its own GPU (CUDA_VISIBLE_DEVICES per
        # task) leaves one device visible whatever LOCAL_RANK is
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    return DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None
    )


def unwrap(module):
    return module.module if isinstance(module, DistributedDataParallel) else module


def sync_buffers(module: torch.nn.Module) -> None:
    """Give every rank rank 0's BatchNorm statistics (DDP broadcasts them before each
    forward, so after the last step they differ); all ranks must call this together."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for buffer in unwrap(module).buffers():
            dist.broadcast(buffer, src=0)


def sync_weights(module: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers: only rank 0 validates, so only it
    knows which weights a run keeps; all ranks must call this together."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        with torch.no_grad():
            for tensor in unwrap(module).state_dict().values():
                dist.broadcast(tensor, src=0)


def agree_object(value):
    """Rank 0's ``value`` (any picklable object, e.g. the recipe it timed) on every
    rank; all ranks call it together. Objects come only from rank 0 of the same job."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def agree_all(values: list[float]) -> list[float]:
    """Rank 0's ``values`` on every rank, in one broadcast (decisions such as 'time is
    up' must be the same everywhere, or the ranks would wait for each other forever);
    all ranks call it together."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.broadcast(tensor, src=0)
    return [float(v) for v in tensor.cpu()]
