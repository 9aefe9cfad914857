"""Resumable training state: generator, discriminator, both optimizers, AMP scaler,
step, history and every random state, in one safetensors file with a JSON document
(no pickle, like model files). Written atomically, so a crash mid-write keeps the
previous checkpoint."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Pix2PixConfig
from ..engine.run_history import RunHistory
from ..errors import InputError, ModelFileError
from ..options import user_path
from .checkpoint_schema import check_document
from .model_checks import check_finite_weights, check_format_version, parse_config
from .output_paths import (
    atomic_write,
    check_input_path,
    check_name_lengths,
    check_output_path,
    reason,
    unfinished_writes,
)
from .run_lock import RunLock, lock_run_folder
from .run_log import LOG_NAME, is_run_log
from .safetensors_file import header_document, read_header, read_tensors, to_bytes

CHECKPOINT_NAME = "checkpoint.safetensors"
# what else a run folder holds: the best model so far, and the model a run (or the Train
# widget) saved when it ended; a run folder opened as a model gives the first there is
MODEL_NAME = "model.safetensors"
BEST_NAME = "best.safetensors"
RUN_MODELS = (MODEL_NAME, BEST_NAME, CHECKPOINT_NAME)
KIND = "napari-pix2pix-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """A read checkpoint: where it was, the run's config, history and step, the data
    sampler's random state and the trainer's state (Trainer.load_state)."""

    path: Path
    config: Pix2PixConfig
    history: RunHistory
    step: int
    sampler: dict
    trainer: dict


def checkpoint_path(location) -> Path:
    """The checkpoint file of a run folder (a path to the file itself is taken as is)."""
    location = user_path(location)
    return location if location.name.endswith(".safetensors") else location / CHECKPOINT_NAME


def claim_run_folder(location) -> RunLock:
    """The run folder made (if missing) and locked for this run before anything looks
    at what it holds (``check_checkpoint_dir``, then under the lock): a second run on
    it is refused naming the first, however close together the two start."""
    folder = _checked_folder(location)
    _make_folder(folder)
    return lock_run_folder(folder)


def check_checkpoint_dir(location, resumed: Path | None = None) -> Path:
    """A run's checkpoint folder, checked before training: a folder (made if missing),
    writable, and not holding another run's checkpoint (except the one being resumed),
    which would be overwritten."""
    folder = _checked_folder(location)
    target = folder / CHECKPOINT_NAME
    if target.exists() or target.is_symlink():
        same = resumed is not None and resumed.exists() and os.path.samefile(target, resumed)
        if not same:
            raise InputError(
                f"{str(folder)!r} already holds a checkpoint of another run; resume="
                f"{str(folder)!r} continues that run, or choose another folder."
            )
    elif resumed is None or not folder.is_dir() or not os.path.samefile(folder, resumed.parent):
        # a run writes these over whatever is there: another run's models (its
        # checkpoint deleted, or never written: killed early) are not this run's to
        # replace; the log of a run that left no model may be
        taken = [name for name in RUN_MODELS if (folder / name).exists()]
        if (folder / LOG_NAME).exists() and (taken or not is_run_log(folder / LOG_NAME)):
            taken.append(LOG_NAME)
        if taken:
            start_from = (
                f" (init_model={str(folder / BEST_NAME)!r} starts a new run from its best model)"
                if BEST_NAME in taken
                else ""
            )
            raise InputError(
                f"{str(folder)!r} already holds {', '.join(taken)} of another run with no "
                "checkpoint to resume, which this run would overwrite; choose a new or empty "
                f"folder, or move them away{start_from}."
            )
    _make_folder(folder)
    for leftover in unfinished_writes(folder, RUN_MODELS):  # a killed write's: never whole
        leftover.unlink(missing_ok=True)
    return check_output_path(target, if_exists="overwrite", ours=lambda p: p == resumed)


def _checked_folder(location) -> Path:
    """A checkpoint_dir that can be a run folder: not a file, nor named like one."""
    folder = check_name_lengths(location)
    if folder.suffix == ".safetensors":  # elsewhere taken as the checkpoint file itself
        raise InputError(
            f"checkpoint_dir {str(folder)!r} names a folder, but ends like a model file; "
            f"give a folder name without .safetensors (e.g. {str(folder.with_suffix(''))!r})."
        )
    if folder.exists() and not folder.is_dir():
        raise InputError(
            f"checkpoint_dir {str(folder)!r} is a file, not a folder; give a folder "
            "for the run's checkpoint (it is created if missing)."
        )
    return folder


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the checkpoint folder {str(folder)!r} ({reason(exc)})."
        ) from exc


def check_model_beside_run(model_path, folder) -> None:
    """A model saved into its run's folder must not take the name of a file the run
    writes there (it would be replaced at each checkpoint, or replace the checkpoint)."""
    if folder is None:
        return
    model_path, folder = user_path(model_path), checkpoint_path(folder).parent
    if model_path.name in (CHECKPOINT_NAME, BEST_NAME) and (
        model_path.parent.resolve() == folder.resolve()
    ):
        raise InputError(
            f"the model path {str(model_path)!r} is the run folder's own {model_path.name}; "
            f"name the model otherwise, e.g. {str(folder / MODEL_NAME)!r}."
        )


def save_checkpoint(
    location,
    *,
    config: Pix2PixConfig,
    step: int,
    history: RunHistory,
    trainer_state: dict,
    sampler_state: dict,
) -> Path:
    """Write ``Trainer.state()`` and the rest of a run's state to ``location``."""
    path = checkpoint_path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    s = trainer_state
    tensors = {f"generator.{k}": v for k, v in s["generator"].items()}
    if s["discriminator"] is not None:
        tensors.update({f"discriminator.{k}": v for k, v in s["discriminator"].items()})
    tensors["rng.torch"] = s["rng_torch"]
    tensors.update({f"rng.cuda.{i}": r for i, r in enumerate(s["rng_cuda"])})
    doc = {
        "format": KIND,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "history": history.to_dict(),
        "step": step,
        "sampler": sampler_state,
        "opt_g": _flatten_optimizer("opt_g", s["opt_g"], tensors),
        "opt_d": None if s["opt_d"] is None else _flatten_optimizer("opt_d", s["opt_d"], tensors),
        "scaler": s["scaler"],
    }
    return atomic_write(path, to_bytes(tensors, doc), replace=True)


def load_checkpoint(location) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``, checked like a model file (its
    document's schema, every tensor's shape against the config, finite weights) before
    anything uses it: a damaged one is refused with a message, never half-loaded."""
    path = checkpoint_path(location)
    if not path.exists():
        kept = [path.parent / n for n in (BEST_NAME, MODEL_NAME)]
        kept = [p for p in kept if p.is_file()]
        if kept:  # the checkpoint was removed, a model of the run was not
            raise ModelFileError(
                f"no checkpoint at {str(path)!r}, so the run cannot be resumed, but its "
                f"model {str(kept[0])!r} is there: init_model={str(kept[0])!r} starts a new "
                "run from it (in another checkpoint_dir)."
            )
        raise ModelFileError(
            f"no checkpoint at {str(path)!r}; pass the checkpoint_dir of an earlier run to "
            "resume (a run stopped before its first checkpoint leaves none: start it again)."
        )
    check_input_path(path, ModelFileError, "checkpoint")
    header = read_header(path)
    doc = header_document(header, path, what="checkpoint")
    if doc.get("format") != KIND:
        raise ModelFileError(f"{str(path)!r} is not a napari-pix2pix checkpoint.")
    check_format_version(doc, path, FORMAT_VERSION)
    config = parse_config(doc.get("config"), path, "checkpoint")
    check_document(doc, header, config, path)
    tensors = read_tensors(path)
    check_finite_weights({k: v for k, v in tensors.items() if not k.startswith("rng.")}, path)

    def part(prefix):
        return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}

    trainer = {
        "generator": part("generator"),
        "discriminator": part("discriminator") or None,
        "opt_g": _unflatten_optimizer("opt_g", doc["opt_g"], tensors),
        "opt_d": None
        if doc.get("opt_d") is None  # checked against the GAN mode by check_document
        else _unflatten_optimizer("opt_d", doc["opt_d"], tensors),
        "scaler": doc.get("scaler"),  # None: no fp16 scaler state (a fresh one is used)
        "rng_torch": tensors["rng.torch"],
        "rng_cuda": [
            tensors[k]
            for k in sorted(
                (k for k in tensors if k.startswith("rng.cuda.")),
                key=lambda k: (len(k), k),  # rng.cuda.10 after rng.cuda.9, not after .1
            )
        ],
    }
    history = RunHistory.from_dict(doc["history"], path)
    return Checkpoint(path, config, history, int(doc["step"]), doc["sampler"], trainer)


def _flatten_optimizer(prefix: str, state: dict, tensors: dict) -> dict:
    """Tensors of an optimizer state_dict go to ``tensors``; the rest is returned as JSON."""
    plain: dict = {"param_groups": state["param_groups"], "state": {}}
    for pid, values in state["state"].items():
        plain["state"][str(pid)] = {}
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{name}"] = value
            else:
                plain["state"][str(pid)][name] = value
    return plain


def _unflatten_optimizer(prefix: str, plain: dict, tensors: dict) -> dict:
    state: dict = {int(pid): dict(values) for pid, values in plain["state"].items()}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            pid, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": plain["param_groups"]}
