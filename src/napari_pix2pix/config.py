"""The one description of a model: architecture, data layout, normalization and the
training recipe. It is written into every model file and read back from it, so that
nothing about a model has to be re-derived anywhere else."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .errors import InputError

GAN_MODES = ("vanilla", "lsgan", "hinge", "none")
NORMS = ("batch", "instance")
AMP_MODES = ("auto", "off", "bf16", "fp16")


@dataclass
class Pix2PixConfig:
    """Everything needed to rebuild, train and apply one pix2pix model.

    Axes strings use the letters T, Z, C, Y, X. ``spatial_dims`` 2 treats Z/T as
    independent slices, 3 makes Z a spatial axis.
    """

    # data layout
    source_axes: str = "YX"
    target_axes: str = "YX"
    spatial_dims: int = 2
    in_channels: int = 1
    out_channels: int = 1
    patch_size: tuple[int, ...] = (256, 256)
    # generator (U-Net) and discriminator (PatchGAN)
    depth: int = 8
    base_channels: int = 64
    norm: str = "batch"
    dropout: float = 0.5
    disc_layers: int = 3
    disc_channels: int = 64
    # loss and optimisation
    gan_mode: str = "vanilla"
    lambda_l1: float = 100.0
    steps: int = 2000
    batch_size: int = 4
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    val_fraction: float = 0.1
    seed: int | None = 0
    amp: str = "auto"
    # per-channel percentile normalization to [-1, 1], filled in from the training data
    percentiles: tuple[float, float] = (0.5, 99.5)
    source_low: list[float] = field(default_factory=list)
    source_high: list[float] = field(default_factory=list)
    target_low: list[float] = field(default_factory=list)
    target_high: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.patch_size, int):
            self.patch_size = (self.patch_size,) * self.spatial_dims
        self.patch_size = tuple(int(p) for p in self.patch_size)
        self.betas = tuple(float(b) for b in self.betas)
        self.percentiles = tuple(float(p) for p in self.percentiles)
        self.validate()

    @property
    def multiple(self) -> int:
        """Spatial sizes the generator accepts are multiples of this (one halving per level)."""
        return 2**self.depth

    def validate(self) -> None:
        """Refuse option values that would fail (or silently misbehave) later in training."""
        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InputError(f"{name} must be a positive integer, got {value!r}.")

        for name in ("in_channels", "out_channels", "depth", "base_channels",
                     "disc_layers", "disc_channels", "steps", "batch_size"):
            positive_int(name)
        if self.spatial_dims not in (2, 3):
            raise InputError(f"spatial_dims must be 2 or 3, got {self.spatial_dims!r}.")
        if self.gan_mode not in GAN_MODES:
            raise InputError(f"gan_mode must be one of {GAN_MODES}, got {self.gan_mode!r}.")
        if self.norm not in NORMS:
            raise InputError(f"norm must be one of {NORMS}, got {self.norm!r}.")
        if self.amp not in AMP_MODES:
            raise InputError(f"amp must be one of {AMP_MODES}, got {self.amp!r}.")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {self.dropout!r}.")
        if not 0.0 <= self.val_fraction < 1.0:
            raise InputError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}.")
        if self.lambda_l1 < 0:
            raise InputError(f"lambda_l1 must be >= 0, got {self.lambda_l1!r}.")
        if self.lambda_l1 == 0 and self.gan_mode == "none":
            raise InputError("lambda_l1=0 with gan_mode='none' leaves no loss to train on.")
        if not self.lr > 0:
            raise InputError(f"lr must be > 0, got {self.lr!r}.")
        lo, hi = self.percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise InputError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles}.")
        if len(self.patch_size) != self.spatial_dims:
            raise InputError(
                f"patch_size {self.patch_size} needs {self.spatial_dims} values for spatial_dims="
                f"{self.spatial_dims}.")
        for p in self.patch_size:
            if p <= 0 or p % self.multiple:
                raise InputError(
                    f"patch_size {self.patch_size} does not suit depth={self.depth}: each side must be "
                    f"a multiple of 2**depth = {self.multiple}. Use patch_size={self.multiple} (or a "
                    f"multiple of it){_deepest_hint(p)}.")
            if self.gan_mode != "none" and p < 3 * 2**self.disc_layers:
                raise InputError(
                    f"patch_size {p} is too small for a discriminator with disc_layers="
                    f"{self.disc_layers}: use patch_size >= {3 * 2**self.disc_layers} or fewer layers.")

        for side, channels in (("source", self.in_channels), ("target", self.out_channels)):
            low, high = getattr(self, f"{side}_low"), getattr(self, f"{side}_high")
            if (low or high) and not (len(low) == len(high) == channels
                                      and all(h > lo for lo, h in zip(low, high))):
                raise InputError(f"{side} normalization needs {channels} low < high values, "
                                 f"got {low} / {high}.")

    @property
    def normalized(self) -> bool:
        return bool(self.source_low) and bool(self.target_low)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key, value in d.items():
            if isinstance(value, tuple):
                d[key] = list(value)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> Pix2PixConfig:
        """Build from a parsed JSON dict, refusing unknown keys and wrong types."""
        if not isinstance(data, dict):
            raise InputError("model config must be a JSON object")
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise InputError(f"unknown config keys {unknown}; the model may come from a newer version.")
        kwargs = {}
        for key, value in data.items():
            kwargs[key] = _coerce(key, value, names[key].type)
        return cls(**kwargs)

    def replace(self, **changes) -> Pix2PixConfig:
        return dataclasses.replace(self, **changes)


def _deepest_hint(size: int) -> str:
    depth = (size & -size).bit_length() - 1 if size > 0 else 0
    return f", or depth={depth}, the deepest U-Net that fits patch_size={size}" if depth else ""


def _coerce(key: str, value, annotation: str):
    """Type-check one JSON value against the field annotation (strings, as in __future__)."""
    def fail():
        raise InputError(f"config field {key!r} has an invalid value {value!r} ({annotation} expected)")

    number = (int, float)
    if annotation == "str":
        if not isinstance(value, str) or len(value) > 64:
            fail()
    elif annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
    elif annotation == "int | None":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            fail()
    elif annotation == "float":
        if isinstance(value, bool) or not isinstance(value, number):
            fail()
        value = float(value)
    elif annotation.startswith(("tuple", "list")):
        item = int if "int" in annotation else float
        if not isinstance(value, list) or len(value) > 4096:
            fail()
        if any(isinstance(v, bool) or not isinstance(v, number) for v in value):
            fail()
        value = [item(v) for v in value]
        if annotation.startswith("tuple"):
            value = tuple(value)
    return value
