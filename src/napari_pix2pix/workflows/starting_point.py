"""Where a run starts: the library's defaults with a preset's choices (and those the
data and device decide), or a model to fine-tune. Options the user gives always win;
a fine-tuned model keeps its own architecture and normalisation."""

from __future__ import annotations

import torch

from ..config import Pix2PixConfig
from ..engine.device import amp_dtype
from ..engine.networks import build_generator
from ..engine.recipes import (
    RECIPE_FIELDS,
    depth_for,
    fit_patch_to_data,
    median,
    pick_width,
    preset_options,
)
from ..engine.split import Split
from ..engine.trainer import Trainer
from ..errors import InputError
from ..io.checkpoint import Checkpoint
from ..io.model_file import Pix2PixModel, load_model
from ..options import options_of
from .training_data import batch_seconds


def run_config(
    ckpt: Checkpoint | None, options: dict, axes, target_axes, preset: str
) -> Pix2PixConfig:
    """The run's config: a resumed run's own (longer if more steps are asked for), else
    the options given over the preset's choices over the defaults."""
    if ckpt is not None:
        steps = options.get("steps")
        return ckpt.config.replace(steps=max(steps or 0, ckpt.config.steps))
    options.update(preset_options(preset, options, options.get("spatial_dims", 2)))
    if axes is not None:
        options["source_axes"] = axes
    if target_axes or axes:
        options["target_axes"] = target_axes or axes  # refined from the data in train_iter
    return Pix2PixConfig(**options)


def ignored_on_resume(ckpt: Checkpoint, options: dict) -> str:
    """A resumed run goes on as it was set up: the options given that differ from its
    own, which it does not use, said as a note ('' when none)."""
    differ = []
    steps = options.get("steps")
    if steps is not None and steps < ckpt.config.steps:  # more steps extend the run
        differ.append(
            f"steps={steps!r} (the run's: {ckpt.config.steps}; a resumed run can be made "
            "longer, not shorter: stop it, or give time_budget, to end it earlier)"
        )
    for name, value in options.items():
        if name in ("steps", "source_axes", "target_axes") or not hasattr(ckpt.config, name):
            continue
        kept = getattr(ckpt.config, name)
        try:
            given = getattr(ckpt.config.replace(**{name: value}), name)
        except InputError:  # does not even fit the run's other options
            given = value
        if _plain(given) != _plain(kept):
            differ.append(f"{name}={value!r} (the run's: {kept!r})")
    if not differ:
        return ""
    return (
        "a resumed run goes on as it was set up, so these options are not used: "
        + ", ".join(differ)
        + ". To train with them, start a new run (init_model= starts it from this one)."
    )


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


# what a fine-tuned model takes from the model it starts from; giving another value is
# refused (the weights would not fit, or would no longer mean what they meant)
KEPT_FROM_INIT = ("spatial_dims", "depth", "base_channels", "norm", "dropout", "percentiles")


def load_init_model(init) -> tuple[Pix2PixModel | None, str | None]:
    """The model to fine-tune (loaded on the CPU, any format load_model reads) and how
    the new model's history names it."""
    if init is None:
        return None, None
    if isinstance(init, Pix2PixModel):
        if not init.config.normalized:
            raise InputError("init_model has no normalization parameters (was it trained?).")
        return init, "<in-memory model>"
    return load_model(init, device="cpu"), str(init)


def init_config(init: Pix2PixModel, options: dict) -> Pix2PixConfig:
    """A fine-tuning run's config: the model's (architecture, channels, axes,
    normalization and, unless given, its recipe) with the recipe options given."""
    base = init.config
    declared = {o.name: o for o in options_of(Pix2PixConfig)}
    conflicts = []
    for name in KEPT_FROM_INIT:
        if name in options and declared[name].check(options[name]) != getattr(base, name):
            conflicts.append(f"{declared[name].keyword}={options[name]!r}")
    for name in ("source_axes", "target_axes"):
        options.pop(name, None)  # the images' axes (train's axes=) describe only them
    if conflicts:
        kept = ", ".join(f"{declared[n].keyword}={getattr(base, n)!r}" for n in KEPT_FROM_INIT)
        raise InputError(
            f"init_model fixes the architecture and normalization; {', '.join(conflicts)} "
            f"differ(s) from the model's ({kept}). Leave them out, or train a new model "
            "without init_model."
        )
    try:
        return base.replace(**options)
    except InputError as exc:
        raise InputError(f"{exc} (with init_model, depth is the model's: {base.depth})") from exc


def init_record(init: Pix2PixModel, source: str) -> dict:
    """Where a fine-tuned model started: the model's source and its own steps (and
    where that one started, if it was fine-tuned too)."""
    record = {"source": source, "steps_done": init.history.steps_done}
    if init.history.init_model is not None:
        record["init_model"] = init.history.init_model
    return record


def fit_recipe(config: Pix2PixConfig, split: Split, given: dict, run, dev):
    """The auto preset's choices that need the data and the device: crops no larger
    than the images, and with a time budget the widest network that still gets enough
    steps in it (timed here). Returns the config and what was chosen, and why."""
    why, timed = [], {}
    if run.preset == "auto" and "patch_size" not in given:
        sides = [min(s.shape[1:]) for s, _ in split.train]
        side = fit_patch_to_data(min(sides), config.spatial_dims)
        depth = config.depth if "depth" in given else depth_for(side)
        if side < config.patch_size[0] and side % 2**depth == 0:
            config = config.replace(patch_size=(side,) * config.spatial_dims, depth=depth)
            why.append(f"patch {side}: the smallest image is {min(sides)} px")
    if run.preset == "auto" and run.time_budget and "base_channels" not in given:
        disc_free = "disc_channels" not in given

        def sized(width: int) -> Pix2PixConfig:
            if disc_free:  # ndf = ngf, as in the paper; D at 64 would cost 3x G at 16
                return config.replace(base_channels=width, disc_channels=width)
            return config.replace(base_channels=width)

        with torch.random.fork_rng(devices=[]):
            width, times, reason = pick_width(
                sized,
                dev,
                0.9 * run.time_budget,
                lambda c: Trainer(c, build_generator(c), dev, amp_dtype(dev, c.amp)),
                batch_seconds(split, config),
            )
        config = sized(width)
        why.append(reason)
        timed = {
            "ms_per_step": round(median(times) * 1000, 1),
            "ms_per_step_range": [round(times[0] * 1000, 1), round(times[-1] * 1000, 1)],
        }
    return config, {"preset": run.preset, **recipe_of(config), **timed, "why": "; ".join(why)}


def recipe_of(config: Pix2PixConfig) -> dict:
    """The fields a recipe sets, as the history will read them back from a model file's
    JSON (tuples are lists)."""
    values = {k: getattr(config, k) for k in (*RECIPE_FIELDS, "batch_size")}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
