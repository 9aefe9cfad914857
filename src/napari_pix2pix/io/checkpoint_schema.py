"""What a checkpoint must hold before ``resume`` uses it: its JSON document's structure
and every tensor it declares, compared with the networks its config describes (on the
meta device: no memory). A damaged checkpoint is found here, with a message, instead of
failing inside training with a raw KeyError exactly when a run is being recovered."""

from __future__ import annotations

import torch

from ..config import Pix2PixConfig
from ..engine.networks import build_discriminator, build_generator
from ..errors import ModelFileError

# (key, type) of the document's parts
PARTS = (("step", int), ("history", dict), ("sampler", dict), ("opt_g", dict))


def check_document(doc: dict, header: dict, config: Pix2PixConfig, path) -> None:
    """Raise ModelFileError naming what is wrong with a checkpoint's document."""

    def damaged(what: str) -> ModelFileError:
        return ModelFileError(
            f"the checkpoint {str(path)!r} is damaged ({what}); it cannot be "
            "resumed. Resume from an earlier copy, or start a new run."
        )

    for key, kind in PARTS:
        if not isinstance(doc.get(key), kind) or isinstance(doc.get(key), bool):
            raise damaged(f"{key!r} is missing or not a {kind.__name__}")
    if not 0 <= doc["step"] <= config.steps:
        raise damaged(f"step {doc['step']} is outside 0..{config.steps}")
    use_gan = config.gan_mode != "none"
    if use_gan != isinstance(doc.get("opt_d"), dict):
        raise damaged("the discriminator's optimizer does not match the GAN mode")
    if doc.get("scaler") is not None and not isinstance(doc["scaler"], dict):
        raise damaged("the mixed-precision scaler state is malformed")
    _check_sampler(doc["sampler"], damaged)
    with torch.device("meta"):
        nets = {"generator": build_generator(config)}
        if use_gan:
            nets["discriminator"] = build_discriminator(config)
    declared = {
        k: v.get("shape") if isinstance(v, dict) else None
        for k, v in header.items()
        if k != "__metadata__"
    }
    for name, net in nets.items():
        for key, value in net.state_dict().items():
            if declared.get(f"{name}.{key}") != list(value.shape):
                raise damaged(f"{name} weight {key!r} is missing or has the wrong shape")
        params = [list(p.shape) for p in net.parameters()]
        _check_optimizer(
            doc["opt_g" if name == "generator" else "opt_d"],
            "opt_g" if name == "generator" else "opt_d",
            params,
            declared,
            damaged,
        )
    if declared.get("rng.torch") is None:
        raise damaged("the random generator state is missing")


def _check_sampler(state: dict, damaged) -> None:
    rng, transforms = state.get("rng"), state.get("transforms")
    if not isinstance(rng, dict) or not isinstance(transforms, list):
        raise damaged("the crop sampler's random state is malformed")
    for item in transforms:
        if not (
            isinstance(item, list)
            and len(item) == 5
            and isinstance(item[1], list)
            and len(item[1]) == 624
            and all(isinstance(v, int) for v in item[1])
        ):
            raise damaged("a random state of the crop sampler is malformed")


def _check_optimizer(plain: dict, prefix: str, params: list, declared: dict, damaged) -> None:
    """One Adam parameter group over the network's parameters; moment tensors of the
    parameters' shapes."""
    groups = plain.get("param_groups")
    if not (
        isinstance(groups, list)
        and len(groups) == 1
        and isinstance(groups[0], dict)
        and groups[0].get("params") == list(range(len(params)))
    ):
        raise damaged(f"{prefix}'s parameter groups do not match the network")
    if not isinstance(plain.get("state"), dict):
        raise damaged(f"{prefix}'s state is malformed")
    for pid, values in plain["state"].items():
        if not (str(pid).isdigit() and int(pid) < len(params) and isinstance(values, dict)):
            raise damaged(f"{prefix} has state for an unknown parameter {pid!r}")
        for name in ("exp_avg", "exp_avg_sq"):
            if declared.get(f"{prefix}.{pid}.{name}") != params[int(pid)]:
                raise damaged(f"{prefix}'s {name} for parameter {pid} is missing or misshapen")
