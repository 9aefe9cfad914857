"""What a run trains on: the user's images (arrays, paths, folders, lists) turned into
checked, aligned pairs, split into training and validation, with the normalisation
fitted on them, and the crop sampler over the training part."""

from __future__ import annotations

import time

import torch

from ..config import Pix2PixConfig
from ..engine.augment import Augmentations
from ..engine.lazy import loaded
from ..engine.normalization import Normalization
from ..engine.pairs import prepare_pairs
from ..engine.recipes import median
from ..engine.sampling import PairedPatchSampler
from ..engine.split import MAX_VAL_SAMPLES, Split, split_train_val
from ..errors import InputError
from ..io.datasets import open_pairs, pair_inputs
from .data_identity import data_identity


def prepare_data(
    source, target, axes, target_axes, config: Pix2PixConfig, ckpt, val=(None, None), init=None
):
    """The checked pairs, split, with the config's channels, axes and normalization
    filled in (a resumed run keeps its own; a fine-tuned model its own, the images' axes
    only describing the images), and the data's identity (data_identity.py). Files are
    opened lazily: training reads them box by box."""
    if (val[0] is None) != (val[1] is None):
        raise InputError("give both val_source and val_target, or neither.")
    inputs = pair_inputs(source, target)
    given_axes = (
        axes if ckpt is None else config.source_axes,
        target_axes if ckpt is None else config.target_axes,
    )
    sources, targets, sizes = open_pairs(inputs)
    pairs, s_axes, t_axes, groups = prepare_pairs(
        sources, targets, *given_axes, config.spatial_dims, [p.name for p in inputs]
    )
    channels = (pairs[0][0].shape[0], pairs[0][1].shape[0])
    if ckpt is None and init is None:
        config = config.replace(
            source_axes=s_axes,
            target_axes=t_axes,
            in_channels=channels[0],
            out_channels=channels[1],
        )
    elif channels != (config.in_channels, config.out_channels):
        raise InputError(
            f"the images have {channels[0]} -> {channels[1]} channels but the "
            f"{'checkpoint' if ckpt is not None else 'init_model'}'s model has "
            f"{config.in_channels} -> {config.out_channels}."
        )
    names = [p.name for p in inputs]
    if val[0] is not None:
        split = _given_validation(pairs, names, val, given_axes, config, channels)
    else:
        split = split_train_val(
            pairs, config.val_fraction, groups=groups, names=names, context=max(config.patch_size)
        )
    split.pixel_sizes = [p for i, p in enumerate(sizes) if p and p not in sizes[:i]]
    fitted = None
    if not config.normalized:
        fitted = {
            side: Normalization.fit([pair[i] for pair in split.train], config.percentiles, side)
            for i, side in enumerate(("source", "target"))
        }
        config = config.replace(
            **fitted["source"].config_fields("source"), **fitted["target"].config_fields("target")
        )
    identity = data_identity(inputs, (sources, targets), split, config.percentiles, fitted)
    return config, split, identity


def _given_validation(pairs, names, val, given_axes, config, channels) -> Split:
    """All pairs train; the validation pairs are the ones given (read into memory, at
    most MAX_VAL_SAMPLES samples)."""
    inputs = pair_inputs(*val, what="validation")
    val_pairs, *_ = prepare_pairs(
        *open_pairs(inputs)[:2],
        given_axes[0] or config.source_axes,
        given_axes[1] or config.target_axes,
        config.spatial_dims,
        [p.name for p in inputs],
    )
    if (val_pairs[0][0].shape[0], val_pairs[0][1].shape[0]) != channels:
        raise InputError(
            "the validation images have another number of channels than the training images."
        )
    val_names = [p.name for p in inputs]
    return Split(
        pairs,
        [(loaded(s), loaded(t)) for s, t in val_pairs[:MAX_VAL_SAMPLES]],
        f"validation pairs given: {', '.join(val_names)}",
        names,
        val_names,
    )


def make_sampler(split, config: Pix2PixConfig, rank: int) -> PairedPatchSampler:
    """Crops of the training part, read and normalized crop by crop; every rank draws
    its own (same weights, other crops)."""
    return PairedPatchSampler(
        split.train,
        config.patch_size,
        seed=None if config.seed is None else config.seed + 1000 * rank,
        foreground=config.foreground_crops,
        normalization=(Normalization.of(config, "source"), Normalization.of(config, "target")),
        augment=Augmentations.of(config),
    )


def batch_seconds(split, config: Pix2PixConfig, repeats: int = 3) -> float:
    """Reading, cropping and augmenting one batch, timed here after one untimed batch
    (which builds the transforms): on a CPU with the default augmentations it costs
    about as much as the network's step."""
    with torch.random.fork_rng(devices=[]):
        sampler = make_sampler(split, config, 0)
        sampler.batch(config.batch_size)
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            sampler.batch(config.batch_size)
            times.append(time.perf_counter() - began)
    return median(times)
