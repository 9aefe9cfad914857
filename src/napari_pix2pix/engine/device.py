"""Choosing the compute device and the mixed-precision mode."""

from __future__ import annotations

import contextlib

import torch

from ..errors import DeviceError, InputError
from ..run_options import DEVICES


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """ "auto" picks cuda, then mps, then cpu; an explicit device must exist here."""
    if isinstance(device, torch.device):
        device = str(device)
    kind, _, index = device.partition(":") if isinstance(device, str) else ("", "", "")
    if kind not in DEVICES or (index and not (kind == "cuda" and index.isdigit())):
        raise InputError(f"device must be one of {DEVICES} (or 'cuda:N'), got {device!r}.")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "device 'cuda' was asked for but this machine has no usable CUDA GPU "
            "(or torch was installed without CUDA); use device='auto' or 'cpu'."
        )
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise DeviceError(
            f"device {device!r} was asked for but this machine has "
            f"{torch.cuda.device_count()} CUDA GPU(s) (cuda:0 ...)."
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(
            "device 'mps' was asked for but Apple's MPS is not available here; "
            "use device='auto' or 'cpu'."
        )
    return torch.device(device)


def amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype for ``amp`` ("auto", "off", "bf16", "fp16") on ``device``.

    "auto" means bf16 (or fp16 where bf16 is unsupported) on CUDA and full precision
    elsewhere: CPU bf16 is opt-in because its speed-up depends on the processor."""
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if amp == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if native_bf16(device) else torch.float16
        return None
    raise InputError(f"amp must be 'auto', 'off', 'bf16' or 'fp16', got {amp!r}.")


def native_bf16(device: torch.device) -> bool:
    """Whether this CUDA device computes bf16 in hardware (compute capability 8.0 or
    more: Ampere, Hopper...). T4 (7.5) and V100 (7.0) emulate it, slower than fp32, so
    "auto" gives them fp16 with the loss scaler. Asked of ``device``, not the current
    device, which may be another card."""
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
