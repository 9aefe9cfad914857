"""Per-channel linear normalization: the training data's low and high percentiles map
to [-1, 1] (the generator's tanh range) and back. One object serves training,
prediction, the metrics and the bioimage.io export; its numbers live in the config
(source_low/high, target_low/high), so every model file carries its own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Normalization:
    """Maps ``low`` to -1 and ``high`` to +1, per channel."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def fit(
        cls,
        samples: list[np.ndarray],
        percentiles: tuple[float, float],
        what: str,
        max_values: int = 2**24,
    ) -> Normalization:
        """Percentiles per channel over (C, *spatial) samples, subsampled evenly when
        larger than ``max_values`` per channel to stay fast on big stacks."""
        channels = samples[0].shape[0]
        stride = sum(int(np.prod(s.shape[1:])) for s in samples) // max_values + 1
        lows, highs = [], []
        for c in range(channels):
            values = np.concatenate(
                [np.asarray(s[c]).ravel()[::stride].astype(np.float64) for s in samples]
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
