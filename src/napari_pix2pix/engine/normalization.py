"""Per-channel linear normalization: the training data's low and high percentiles map
to [-1, 1] (the generator's tanh range) and back. One object serves training,
prediction, the metrics and the bioimage.io export; its numbers live in the config
(source_low/high, target_low/high), so every model file carries its own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .lazy import LazySample

# pixels per lazy sample read to fit the normalization: all samples together about
# LAZY_VALUES, each at least LAZY_MIN and at most LAZY_MAX
LAZY_VALUES, LAZY_MIN, LAZY_MAX = 2**20, 2**10, 2**18


def lazy_budget(count: int) -> int:
    """Pixels read from each of ``count`` lazy samples to fit the normalization."""
    return int(np.clip(LAZY_VALUES // max(count, 1), LAZY_MIN, LAZY_MAX))


def grid_pixels(sample: LazySample, budget: int) -> np.ndarray:
    """(C, <= budget) float32 values of a lazy sample: the whole sample when small,
    else boxes on a regular grid over it (16 in 2D, 27 in 3D), together ``budget``
    pixels at most."""
    shape = sample.shape[1:]
    if int(np.prod(shape)) <= budget:
        return sample.read().reshape(sample.shape[0], -1).astype(np.float32)
    dims = len(shape)
    per_axis = 4 if dims == 2 else 3
    side = max(1, int((budget / per_axis**dims) ** (1 / dims)))
    starts = [np.unique(np.linspace(0, max(n - side, 0), per_axis).astype(int)) for n in shape]
    blocks = [
        sample.read(tuple(slice(int(a), int(a) + side) for a in corner))
        .reshape(sample.shape[0], -1)
        .astype(np.float32)
        for corner in np.array(np.meshgrid(*starts, indexing="ij")).reshape(dims, -1).T
    ]
    return np.concatenate(blocks, axis=1)


@dataclass(frozen=True)
class Normalization:
    """Maps ``low`` to -1 and ``high`` to +1, per channel."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def fit(
        cls,
        samples: list,
        percentiles: tuple[float, float],
        what: str,
        max_values: int = 2**24,
    ) -> Normalization:
        """Percentiles per channel over all (C, *spatial) samples (every pair).

        In-memory samples are subsampled evenly when together larger than
        ``max_values`` per channel. Lazy samples (LazySample, read from files) give at
        most ``lazy_budget`` pixels each, read as a grid of small boxes spread over the
        image, so the fit reads a bounded amount of every pair whatever the dataset's
        size."""
        channels = samples[0].shape[0]
        eager = [s for s in samples if not isinstance(s, LazySample)]
        lazy = [s for s in samples if isinstance(s, LazySample)]
        stride = sum(int(np.prod(s.shape[1:])) for s in eager) // max_values + 1
        budget = lazy_budget(len(lazy))
        picked = [grid_pixels(s, budget) for s in lazy]
        lows, highs = [], []
        for c in range(channels):
            values = np.concatenate(
                [np.asarray(s[c]).ravel()[::stride].astype(np.float64) for s in eager]
                + [p[c] for p in picked]
            )
            lo, hi = np.percentile(values, percentiles)
            if not hi > lo:
                lo, hi = float(values.min()), float(values.max())
            if not hi > lo:
                raise InputError(
                    f"channel {c} of the {what} is constant ({lo:g}); it carries no "
                    "information to learn from. Remove that channel or check the image."
                )
            lows.append(float(lo))
            highs.append(float(hi))
        return cls(tuple(lows), tuple(highs))

    @classmethod
    def of(cls, config, side: str) -> Normalization:
        """The source or target normalization stored in a config."""
        return cls(tuple(getattr(config, f"{side}_low")), tuple(getattr(config, f"{side}_high")))

    def config_fields(self, side: str) -> dict:
        """The config fields that store it: ``config.replace(**norm.config_fields("source"))``."""
        return {f"{side}_low": list(self.low), f"{side}_high": list(self.high)}

    def _vectors(self, ndim: int, channel_axis: int) -> tuple[np.ndarray, np.ndarray]:
        shape = [1] * ndim
        shape[channel_axis] = -1
        return (
            np.asarray(self.low, np.float32).reshape(shape),
            np.asarray(self.high, np.float32).reshape(shape),
        )

    def forward(self, x: np.ndarray, channel_axis: int = 0) -> np.ndarray:
        """Image units -> [-1, 1] (float32)."""
        lo, hi = self._vectors(x.ndim, channel_axis)
        return ((np.asarray(x, dtype=np.float32) - lo) * (2.0 / (hi - lo)) - 1.0).astype(np.float32)

    def inverse(self, y: np.ndarray, channel_axis: int = 0) -> np.ndarray:
        """[-1, 1] -> image units (float32); the exact inverse of ``forward``."""
        lo, hi = self._vectors(y.ndim, channel_axis)
        return ((np.asarray(y, dtype=np.float32) + 1.0) * ((hi - lo) / 2.0) + lo).astype(np.float32)

    def unit_range(self, x: np.ndarray, channel_axis: int = 1) -> np.ndarray:
        """Image units -> [0, 1] over [low, high] (float32): the data range of PSNR/SSIM."""
        lo, hi = self._vectors(x.ndim, channel_axis)
        return ((x - lo) / (hi - lo)).astype(np.float32)

    def gain_offset(self, inverse: bool = False) -> tuple[list[float], list[float]]:
        """Per-channel (gain, offset) with ``y = x * gain + offset`` for ``forward`` (or
        its inverse): bioimage.io's ``scale_linear``."""
        gains, offsets = [], []
        for lo, hi in zip(self.low, self.high):
            if inverse:
                gains.append((hi - lo) / 2.0)
                offsets.append(lo + (hi - lo) / 2.0)
            else:
                gains.append(2.0 / (hi - lo))
                offsets.append(-2.0 * lo / (hi - lo) - 1.0)
        return gains, offsets
