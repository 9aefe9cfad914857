"""Resumable training state: generator, discriminator, both optimizers, AMP scaler,
step, history and every random state, in one safetensors file with JSON metadata
(no pickle, like model files). Written atomically, so a crash mid-write keeps the
previous checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import Pix2PixConfig
from .errors import ModelFileError
from .model import META_KEY, atomic_write, parse_document, read_safetensors, read_safetensors_header

CHECKPOINT_NAME = "checkpoint.safetensors"
KIND = "napari-pix2pix-checkpoint"


def checkpoint_path(location) -> Path:
    location = Path(location)
    return location / CHECKPOINT_NAME if location.is_dir() or not location.suffix else location


def _flatten_optimizer(prefix: str, state: dict, tensors: dict) -> dict:
    """Tensors of an optimizer state_dict go to ``tensors``; the rest is returned as JSON."""
    plain: dict = {"param_groups": state["param_groups"], "state": {}}
    for pid, values in state["state"].items():
        plain["state"][str(pid)] = {}
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                plain["state"][str(pid)][name] = value
    return plain


def _unflatten_optimizer(prefix: str, plain: dict, tensors: dict) -> dict:
    state: dict = {}
    for pid, values in plain["state"].items():
        state[int(pid)] = dict(values)
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            pid, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_checkpoint(location, *, config: Pix2PixConfig, step: int, history: dict,
                    generator, discriminator, opt_g, opt_d, scaler, sampler_state: dict) -> Path:
    from safetensors.torch import save

    path = checkpoint_path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    if discriminator is not None:
        tensors.update({f"discriminator.{k}": v.detach().cpu().contiguous()
                        for k, v in discriminator.state_dict().items()})
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    doc = {
        "format": KIND, "format_version": 1, "config": config.to_dict(), "history": history,
        "step": step, "sampler": sampler_state,
        "opt_g": _flatten_optimizer("opt_g", opt_g.state_dict(), tensors),
        "opt_d": None if opt_d is None else _flatten_optimizer("opt_d", opt_d.state_dict(), tensors),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
    }
    atomic_write(path, save(tensors, metadata={META_KEY: json.dumps(doc)}))
    return path


def load_checkpoint(location) -> dict:
    """Read a checkpoint; returns its parts (config, step, history, states)."""
    path = checkpoint_path(location)
    if not path.is_file():
        raise ModelFileError(f"no checkpoint at {str(path)!r}; pass the checkpoint_dir of an "
                             "earlier run to resume.")
    header = read_safetensors_header(path)
    try:
        doc = json.loads((header.get("__metadata__") or {})[META_KEY])
    except (KeyError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{str(path)!r} is not a napari-pix2pix checkpoint.") from exc
    if doc.get("format") != KIND:
        raise ModelFileError(f"{str(path)!r} is not a napari-pix2pix checkpoint.")
    config, history = parse_document({**doc, "format": "napari-pix2pix-model"}, path)
    tensors = read_safetensors(path)

    def part(prefix):
        return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}

    return {
        "path": path, "config": config, "history": history, "step": int(doc["step"]),
        "sampler": doc["sampler"], "scaler": doc["scaler"],
        "generator": part("generator"), "discriminator": part("discriminator"),
        "opt_g": _unflatten_optimizer("opt_g", doc["opt_g"], tensors),
        "opt_d": None if doc["opt_d"] is None else _unflatten_optimizer("opt_d", doc["opt_d"], tensors),
        "rng_torch": tensors["rng.torch"],
        "rng_cuda": [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))],
    }
