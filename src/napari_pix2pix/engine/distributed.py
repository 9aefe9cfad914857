"""Multi-GPU (or multi-process CPU) training with torch's own engine: run the same
script under ``torchrun --nproc_per_node=N``; ``train_iter`` notices the environment,
joins the process group and wraps both networks in DistributedDataParallel. Each rank
draws its own crops; gradients are averaged, so the weights stay identical."""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


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
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        # the group we joined is left before the interpreter tears down: gloo's threads
        # destroyed unjoined abort the process ("terminate called without an active
        # exception", seen once in the torchrun test)
        atexit.register(_leave)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
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


def agree(value: float) -> float:
    """Rank 0's ``value`` on every rank (decisions such as 'time is up' must be the
    same everywhere, or the ranks would wait for each other forever)."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.broadcast(tensor, src=0)
    return float(tensor.item())
