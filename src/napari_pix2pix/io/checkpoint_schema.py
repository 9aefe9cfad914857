"""What a checkpoint must hold before ``resume`` uses it: its JSON document's structure
and every tensor it declares, compared with the networks its config describes (on the
meta device: no memory). A damaged checkpoint is found here, with a message, instead of
failing inside training with a raw KeyError exactly when a run is being recovered."""

from __future__ import annotations

import torch

from ..config import Pix2PixConfig
from ..engine.networks import build_discriminator, build_generator
from ..engine.run_history import RunHistory
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
    _check_history(doc["history"], damaged)
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
        prefix = "opt_g" if name == "generator" else "opt_d"
        _check_optimizer(doc[prefix], prefix, net, config, declared, damaged)
    if declared.get("rng.torch") is None:
        raise damaged("the random generator state is missing")


# the parts of the history a resumed run appends to and reads: present and well formed
_RESUMED = {
    "losses": "the history's losses are malformed",
    "validation": "the history's validations are malformed",
    "train_seconds": "the history's training time is malformed",
    "best": "the history's kept validation is malformed",
    "most_accurate": "the history's most accurate validation is malformed",
}
_REQUIRED = ("losses", "validation", "train_seconds")


def _check_history(history: dict, damaged) -> None:
    """The parts of the history a resumed run appends to and reads (the checks are the
    history's own: RunHistory.malformed); the other entries only describe the run."""
    bad = set(RunHistory.malformed(history)) | {k for k in _REQUIRED if k not in history}
    for key, what in _RESUMED.items():
        if key in bad:
            raise damaged(what)


def _check_sampler(state: dict, damaged) -> None:
    if "batch" in state:  # the crop stream's seed and position (sampling.py)
        seed, batch = state.get("seed"), state.get("batch")
        if not (isinstance(seed, int) and seed >= 0 and isinstance(batch, int) and batch >= 0):
            raise damaged("the crop sampler's state is malformed")
        return
    # before crops were keyed by batch: the RandomStates of the sampler's transforms
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


def _check_optimizer(
    plain: dict, prefix: str, net: torch.nn.Module, config: Pix2PixConfig, declared: dict, damaged
) -> None:
    """Exactly what the run's own Adam would hold: one group over the network's
    parameters with the config's settings (only the scheduled lr may differ), and for
    each parameter a step and two moments of its shape, nothing else."""
    params = [list(p.shape) for p in net.parameters()]
    reference = torch.optim.Adam(net.parameters(), lr=config.lr, betas=config.betas)
    expected = reference.state_dict()["param_groups"][0]
    groups = plain.get("param_groups")
    if not (isinstance(groups, list) and len(groups) == 1 and isinstance(groups[0], dict)):
        raise damaged(f"{prefix}'s parameter groups do not match the network")
    group = groups[0]
    if set(group) != set(expected) or group.get("params") != expected["params"]:
        raise damaged(f"{prefix}'s parameter groups do not match the network")
    lr = group["lr"]
    if type(lr) not in (int, float) or not 0 <= lr <= config.lr:
        raise damaged(f"{prefix}'s learning rate {lr!r} is not in 0..{config.lr}")
    for key, value in expected.items():
        if key in ("params", "lr"):
            continue
        want = list(value) if isinstance(value, tuple) else value
        if group[key] != want or type(group[key]) is not type(want):
            raise damaged(f"{prefix}'s {key!r} is {group[key]!r}, not {want!r} as configured")
    if not isinstance(plain.get("state"), dict):
        raise damaged(f"{prefix}'s state is malformed")
    for pid, values in plain["state"].items():
        if not (str(pid).isdigit() and int(pid) < len(params) and values == {}):
            raise damaged(f"{prefix} has state for an unknown parameter {pid!r}")
    moments = {"step": [], "exp_avg": None, "exp_avg_sq": None}
    for key, shape in declared.items():
        if not key.startswith(prefix + "."):
            continue
        pid, _, name = key[len(prefix) + 1 :].partition(".")
        if not (pid.isdigit() and int(pid) < len(params) and name in moments):
            raise damaged(f"{prefix} holds an unknown tensor {key!r}")
        if shape != (moments[name] if name == "step" else params[int(pid)]):
            raise damaged(f"{prefix}'s {name} for parameter {pid} is misshapen")
    for pid in plain["state"]:
        for name in moments:
            if f"{prefix}.{pid}.{name}" not in declared:
                raise damaged(f"{prefix}'s {name} for parameter {pid} is missing")
