"""The one description of a model: data layout, architecture, normalization and the
training recipe. It is written into every model file and read back from it, so nothing
about a model is re-derived anywhere else. Each field is an option declared once
(options.py): checks, the CLI, the GUI form and docs/options.md come from here."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .errors import InputError
from .options import check_fields, option

GAN_MODES = ("vanilla", "lsgan", "hinge", "none")
NORMS = ("batch", "instance")
AMP_MODES = ("auto", "off", "bf16", "fp16")
# far above any sensible model: a config (perhaps from a stranger's model file) beyond
# them would only exhaust memory
MAX_CHANNELS = 4096


@dataclass
class Pix2PixConfig:
    """Everything needed to rebuild, train and apply one pix2pix model.

    Axes strings use the letters T, Z, C, Y, X. ``spatial_dims`` 2 treats Z/T as
    independent slices, 3 makes Z a spatial axis.
    """

    # data layout
    source_axes: str = option(
        "YX",
        "axes of the source image(s)",
        group="data",
        alias="axes",
        allowed="letters T Z C Y X",
        shown_default="from the file; YX for 2D",
    )
    target_axes: str = option(
        "YX",
        "axes of the target image(s)",
        group="data",
        allowed="letters T Z C Y X",
        shown_default="like the source, or from the file",
    )
    spatial_dims: int = option(
        2,
        "2: Z and T are independent slices; 3: Z is spatial and the model learns from 3D patches",
        choices=(2, 3),
    )
    in_channels: int = option(
        1, "source channels (from the data)", group="internal", low=1, high=MAX_CHANNELS
    )
    out_channels: int = option(
        1, "target channels (from the data)", group="internal", low=1, high=MAX_CHANNELS
    )
    patch_size: tuple[int, ...] = option(
        (256, 256),
        "side of the square (cubic in 3D) training crops; a multiple of 2**depth",
        group="basic",
        high=65536,
        step=16,
        allowed="a multiple of 2**depth, up to 65536",
    )
    # generator (U-Net) and discriminator (PatchGAN)
    depth: int = option(
        8,
        "U-Net down-samplings; patch sides must be multiples of 2**depth",
        group="basic",
        label="U-Net depth",
        low=1,
        high=16,
    )
    base_channels: int = option(
        64,
        "channels of the first U-Net level (ngf), doubled per level up to 8x",
        group="basic",
        low=1,
        high=MAX_CHANNELS,
    )
    norm: str = option(
        "batch", "normalization layers of both networks", choices=NORMS, label="Normalization"
    )
    dropout: float = option(
        0.5,
        "dropout of the innermost decoder levels (the paper's noise; off at prediction)",
        low=0.0,
        high=1.0,
        high_open=True,
        step=0.05,
    )
    disc_layers: int = option(
        3,
        "PatchGAN layers: 1, 3, 5 give 16, 70, 286 px receptive fields",
        label="Discriminator layers",
        low=1,
        high=12,
    )
    disc_channels: int = option(
        64,
        "channels of the discriminator's first layer",
        label="Discriminator channels",
        low=1,
        high=MAX_CHANNELS,
    )
    # loss and optimisation
    gan_mode: str = option(
        "vanilla",
        "adversarial loss: vanilla (BCE), lsgan, hinge, or none (L1 only)",
        group="basic",
        choices=GAN_MODES,
        label="GAN loss",
    )
    lambda_l1: float = option(
        100.0,
        "weight of the L1 term: loss = cGAN + lambda_l1 * L1",
        group="basic",
        label="λ L1",
        low=0.0,
        high=math.inf,
        high_open=True,
        step=10.0,
    )
    # the generator first learns the L1 solution, so that the discriminator cannot push a
    # still-untrained generator to a flat image (seen on sparse fluorescence)
    gan_warmup: float = option(
        0.1,
        "share of the steps trained with L1 only before the "
        "adversarial term ramps in (over as many steps)",
        label="Adversarial warm-up",
        low=0.0,
        high=1.0,
        step=0.05,
    )
    foreground_crops: float = option(
        0.5,
        "share of training crops centred on bright target pixels (sparse targets such as nuclei)",
        low=0.0,
        high=1.0,
        step=0.1,
    )
    # augmentations of the training crops against overfitting: each a probability per
    # crop, 0 = off. Intensity and gamma change the source and not the target, so they
    # teach that one source value maps to several target values: off by default, since
    # they bend quantitative mappings (MR -> tissue map, a synthetic one: docs/quality.md,
    # four tasks). Zoom and elastic change both alike and stay on
    augment_flips: float = option(
        0.0,
        "probability of each random flip and of a 90-degree rotation of a training crop, "
        "the same for source and target; 0 where orientation carries meaning (e.g. "
        "directional shading in phase contrast or DIC)",
        label="Augment: flips",
        low=0.0,
        high=1.0,
        step=0.1,
    )
    augment_intensity: float = option(
        0.0,
        "probability of a random intensity scale (x 1 +- 0.2) and shift (+- 10 % of the "
        "range) of a training crop's source, the target unchanged: for illumination that "
        "changes between imaging sessions; it bends quantitative mappings (MR -> CT, "
        "calibrated stains)",
        label="Augment: intensity",
        low=0.0,
        high=1.0,
        step=0.1,
    )
    augment_gamma: float = option(
        0.0,
        "probability of a random gamma (0.7-1.5) of a training crop's source, the target "
        "unchanged: for exposure or detector response that changes between sessions; it "
        "bends quantitative mappings",
        label="Augment: gamma",
        low=0.0,
        high=1.0,
        step=0.1,
    )
    augment_zoom: float = option(
        0.8,
        "probability of a random zoom (0.85-1.15) of a training crop, the same for source "
        "and target",
        label="Augment: zoom",
        low=0.0,
        high=1.0,
        step=0.1,
    )
    augment_elastic: float = option(
        0.5,
        "probability of a small random elastic deformation (a few pixels) of a training "
        "crop, the same for source and target",
        label="Augment: elastic",
        low=0.0,
        high=1.0,
        step=0.1,
    )
    steps: int = option(
        2000,
        "training steps (a resumed run keeps the checkpoint's unless more are asked for)",
        group="basic",
        low=1,
        high=10**9,
        step=100,
    )
    batch_size: int = option(4, "crops per training step", group="basic", low=1, high=65536)
    lr: float = option(
        2e-4,
        "Adam learning rate: constant for half the steps, then linear decay to 0",
        label="Learning rate",
        low=0.0,
        low_open=True,
        high=10.0,  # beyond, Adam's first step alone overflows float32 weights
        step=1e-5,
    )
    betas: tuple[float, float] = option(
        (0.5, 0.999),
        "Adam's beta1 and beta2",
        label="Adam betas",
        low=0.0,
        high=1.0,
        high_open=True,
        step=0.001,
    )
    val_fraction: float = option(
        0.1,
        "share held out for validation: whole slices/images when "
        "there are enough, else the right part of X",
        group="basic",
        label="Validation fraction",
        low=0.0,
        high=1.0,
        high_open=True,
        step=0.05,
    )
    seed: int | None = option(
        0, "random seed; makes CPU runs repeatable", none="random", low=0, high=2**31 - 1
    )
    amp: str = option(
        "auto",
        "mixed precision: auto (bf16, or fp16, on CUDA; off elsewhere), off, bf16, fp16",
        choices=AMP_MODES,
        label="Mixed precision",
    )
    # per-channel normalization to [-1, 1], fitted on the training data (Normalization)
    percentiles: tuple[float, float] = option(
        (0.5, 99.5),
        "low and high percentiles of the training data mapped to [-1, 1], per channel",
        low=0.0,
        high=100.0,
        step=0.1,
    )
    source_low: list[float] = option([], "source values mapped to -1", group="internal")
    source_high: list[float] = option([], "source values mapped to +1", group="internal")
    target_low: list[float] = option([], "target values mapped to -1", group="internal")
    target_high: list[float] = option([], "target values mapped to +1", group="internal")

    def __post_init__(self) -> None:
        if isinstance(self.patch_size, int) and self.spatial_dims in (2, 3):
            self.patch_size = (self.patch_size,) * self.spatial_dims
        check_fields(self)
        if isinstance(self.patch_size, int):
            self.patch_size = (self.patch_size,) * self.spatial_dims
        self.validate()

    @property
    def multiple(self) -> int:
        """Spatial sizes the generator accepts are multiples of this (one halving per level)."""
        return 2**self.depth

    @property
    def normalized(self) -> bool:
        return bool(self.source_low) and bool(self.target_low)

    def validate(self) -> None:
        """The checks that involve several options (each alone is checked on creation)."""
        if self.lambda_l1 == 0 and self.gan_mode == "none":
            raise InputError("lambda_l1=0 with gan_mode='none' leaves no loss to train on.")
        if self.percentiles[0] >= self.percentiles[1]:
            raise InputError(
                f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles}."
            )
        if self.percentiles[1] <= 1:  # fractions given where percents are meant
            low, high = self.percentiles
            raise InputError(
                f"percentiles are in percent (0-100): {self.percentiles} would map the "
                f"lowest {high:g} % of the values to the whole range. For the usual "
                f"range give ({low * 100:g}, {high * 100:g})."
            )
        if len(self.patch_size) != self.spatial_dims:
            raise InputError(
                f"patch_size {self.patch_size} needs {self.spatial_dims} values for "
                f"spatial_dims={self.spatial_dims}."
            )
        for p in self.patch_size:
            if p <= 0 or p % self.multiple:
                raise InputError(
                    f"patch_size {self.patch_size} does not suit depth={self.depth}: each side "
                    f"must be a multiple of 2**depth = {self.multiple}. Use patch_size="
                    f"{self.multiple} (or a multiple of it){_deepest_hint(p)}."
                )
            if self.gan_mode != "none" and p < 3 * 2**self.disc_layers:
                raise InputError(
                    f"patch_size {p} is too small for a discriminator with disc_layers="
                    f"{self.disc_layers}: use patch_size >= {3 * 2**self.disc_layers} or fewer "
                    "layers."
                )
        for side, channels in (("source", self.in_channels), ("target", self.out_channels)):
            low, high = getattr(self, f"{side}_low"), getattr(self, f"{side}_high")
            if (low or high) and not (
                len(low) == len(high) == channels
                and all(-math.inf < lo < h < math.inf for lo, h in zip(low, high))
                # the scale 2 / (high - low) and its inverse must be finite too
                and all(
                    math.isfinite(2 / (h - lo)) and h - lo < math.inf for lo, h in zip(low, high)
                )
            ):
                raise InputError(
                    f"{side} normalization needs {channels} low < high values (finite, and "
                    f"their span too), got {low} / {high}."
                )

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict) -> Pix2PixConfig:
        """Build from a parsed JSON dict, refusing unknown keys and wrong types."""
        if not isinstance(data, dict):
            raise InputError("model config must be a JSON object")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise InputError(
                f"unknown config keys {unknown}; the model may come from a newer version."
            )
        return cls(**data)

    def replace(self, **changes) -> Pix2PixConfig:
        return dataclasses.replace(self, **changes)


def _deepest_hint(size: int) -> str:
    depth = (size & -size).bit_length() - 1 if size > 0 else 0
    return f", or depth={depth}, the deepest U-Net that fits patch_size={size}" if depth else ""
