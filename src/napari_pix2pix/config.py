"""The one description of a model: architecture, data layout, normalization and the
training recipe. It is written into every model file and read back from it, so that
nothing about a model has to be re-derived anywhere else."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

from .errors import InputError

GAN_MODES = ("vanilla", "lsgan", "hinge", "none")
# Upper bounds far above any sensible model: a config (perhaps from a stranger's model
# file) beyond them would only exhaust memory.
LIMITS = {"in_channels": 4096, "out_channels": 4096, "depth": 16, "base_channels": 4096,
          "disc_layers": 12, "disc_channels": 4096, "steps": 10**9, "batch_size": 65536,
          "patch_size": 65536}
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
    # the adversarial term is off for this fraction of the steps, then ramps in over as
    # many: the generator first learns the L1 solution, so that the discriminator cannot
    # push a still-untrained generator to a flat image (seen on sparse fluorescence)
    gan_warmup: float = 0.1
    # share of training crops centred on target foreground (sparse targets)
    foreground_crops: float = 0.5
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
        if isinstance(self.patch_size, numbers.Integral) and isinstance(self.spatial_dims, int):
            self.patch_size = (self.patch_size,) * self.spatial_dims
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), f.type))
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
            if getattr(self, name) > LIMITS[name]:
                raise InputError(f"{name}={getattr(self, name)} is beyond what napari-pix2pix "
                                 f"supports (at most {LIMITS[name]}).")
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
        for name in ("gan_warmup", "foreground_crops"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)!r}.")
        if not 0.0 <= self.val_fraction < 1.0:
            raise InputError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}.")
        if not 0 <= self.lambda_l1 < math.inf:
            raise InputError(f"lambda_l1 must be a finite number >= 0, got {self.lambda_l1!r}.")
        if self.lambda_l1 == 0 and self.gan_mode == "none":
            raise InputError("lambda_l1=0 with gan_mode='none' leaves no loss to train on.")
        if not 0 < self.lr < math.inf:
            raise InputError(f"lr must be a finite number > 0, got {self.lr!r}.")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise InputError(f"betas must be two numbers in [0, 1), got {self.betas}.")
        if len(self.percentiles) != 2 or not 0.0 <= self.percentiles[0] < self.percentiles[1] <= 100.0:
            raise InputError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles}.")
        if len(self.patch_size) != self.spatial_dims:
            raise InputError(
                f"patch_size {self.patch_size} needs {self.spatial_dims} values for spatial_dims="
                f"{self.spatial_dims}.")
        for p in self.patch_size:
            if p > LIMITS["patch_size"]:
                raise InputError(f"patch_size {self.patch_size} is beyond what napari-pix2pix "
                                 f"supports (at most {LIMITS['patch_size']} per side).")
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
            if (low or high) and not (len(low) == len(high) == channels and all(
                    -math.inf < lo < h < math.inf for lo, h in zip(low, high))):
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
        return cls(**data)

    def replace(self, **changes) -> Pix2PixConfig:
        return dataclasses.replace(self, **changes)


def _deepest_hint(size: int) -> str:
    depth = (size & -size).bit_length() - 1 if size > 0 else 0
    return f", or depth={depth}, the deepest U-Net that fits patch_size={size}" if depth else ""


def _coerce(key: str, value, annotation: str):
    """Type-check one value (from Python or parsed JSON) against the field annotation
    (a string, as under ``from __future__ import annotations``); numpy scalars pass."""
    def fail():
        raise InputError(f"{key} has an invalid value {value!r} ({annotation} expected).")

    def integer(v) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    def real(v) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    if annotation == "str":
        if not isinstance(value, str) or len(value) > 64:
            fail()
    elif annotation in ("int", "int | None"):
        if value is None and annotation == "int | None":
            return value
        if not integer(value):
            fail()
        value = int(value)
    elif annotation == "float":
        if not real(value):
            fail()
        value = float(value)
    elif annotation.startswith(("tuple", "list")):
        item, check = (int, integer) if "int" in annotation else (float, real)
        if not isinstance(value, (list, tuple)) or len(value) > 4096:
            fail()
        if not all(check(v) for v in value):
            fail()
        value = [item(v) for v in value]
        if annotation.startswith("tuple"):
            value = tuple(value)
    return value
