"""Which pixels training learns from: the train/validation split and random aligned
crops with paired flips and rotations (MONAI dictionary transforms)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .pairs import Sample

# normalized target level ([-1, 1]) above which a pixel counts as foreground for crop
# sampling: the upper three quarters of the target's percentile range
FOREGROUND_LEVEL = -0.5


@dataclass
class Split:
    """Training and validation samples as lists of (source, target) (C, *spatial) arrays."""

    train: list[Sample]
    val: list[Sample]
    description: str


def split_train_val(pairs: list[Sample], val_fraction: float, max_val_samples: int = 8) -> Split:
    """Hold out whole samples (the last slices or images) when there are several, else the
    last ``val_fraction`` of the X axis of each image. Training crops are taken only from
    the training part, so they never overlap the validation data."""
    if val_fraction <= 0:
        return Split(pairs, [], "no validation")
    n_val = int(round(len(pairs) * val_fraction))
    if len(pairs) >= 2 and n_val >= 1:
        n_val = min(n_val, len(pairs) - 1)
        val = pairs[len(pairs) - n_val :][:max_val_samples]
        return Split(
            pairs[: len(pairs) - n_val], val, f"last {n_val} of {len(pairs)} slices/images held out"
        )
    train, val = [], []
    for src, tgt in pairs:
        width = src.shape[-1]
        n = max(1, int(round(width * val_fraction)))
        if width - n < 1:
            raise InputError(
                f"the image is too narrow ({width} px) to hold out {val_fraction:.0%} "
                "for validation; use val_fraction=0 or a larger image."
            )
        train.append((src[..., : width - n], tgt[..., : width - n]))
        val.append((src[..., width - n :], tgt[..., width - n :]))
    return Split(
        train,
        val[:max_val_samples],
        f"right {val_fraction:.0%} of X (columns {pairs[0][0].shape[-1] - n}-) held out",
    )


def pad_to_at_least(x: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Reflect-pad the spatial axes (the last len(size)) up to ``size``."""
    pads = [(0, 0)] * (x.ndim - len(size)) + [
        (0, max(0, s - d)) for s, d in zip(size, x.shape[-len(size) :])
    ]
    if any(p[1] for p in pads):
        x = np.pad(x, pads, mode="reflect" if min(x.shape[-len(size) :]) > 1 else "edge")
    return x


class PairedPatchSampler:
    """Random aligned (source, target) crops with paired flips and 90-degree rotations.

    MONAI dictionary transforms apply the same random crop/flip/rotation to both keys,
    which keeps every pair pixel-aligned. Samples are drawn in proportion to their area.
    With ``foreground`` > 0 that fraction of the crops is centred on a target pixel in
    the upper three quarters of the target's normalized range (MONAI's
    RandCropByPosNegLabeld with precomputed indices): sparse targets such as nuclei then
    fill most crops instead of empty background, which the discriminator would
    otherwise learn to reward.
    """

    def __init__(
        self,
        train: list[Sample],
        patch_size: tuple[int, ...],
        seed: int | None = None,
        foreground: float = 0.0,
    ) -> None:
        import torch
        from monai.transforms import (
            Compose,
            RandCropByPosNegLabeld,
            RandFlipd,
            RandRotate90d,
            RandSpatialCropd,
        )

        dims = len(patch_size)
        self.samples, self.indices = [], []
        for src, tgt in train:
            both = np.concatenate([src, tgt], axis=0)
            both = pad_to_at_least(both, patch_size)
            self.samples.append((torch.from_numpy(np.ascontiguousarray(both)), src.shape[0]))
            if foreground > 0:
                mask = (both[src.shape[0] :] > FOREGROUND_LEVEL).any(axis=0).ravel()
                self.indices.append((np.flatnonzero(mask), np.flatnonzero(~mask)))
        areas = np.array([float(np.prod(s.shape[1:])) for s, _ in self.samples])
        self.weights = areas / areas.sum()
        keys = ["pair"]
        flips = [RandFlipd(keys, prob=0.5, spatial_axis=i) for i in range(dims)]
        crop = (
            RandCropByPosNegLabeld(
                keys,
                label_key=None,
                image_key="pair",
                spatial_size=patch_size,
                pos=foreground,
                neg=1.0 - foreground,
                fg_indices_key="fg",
                bg_indices_key="bg",
            )
            if foreground > 0
            else RandSpatialCropd(keys, roi_size=patch_size, random_size=False)
        )
        self.transform = Compose(
            [
                crop,
                *flips,
                RandRotate90d(keys, prob=0.5, spatial_axes=(dims - 2, dims - 1)),
            ]
        )
        self.rng = np.random.default_rng(seed)
        self.transform.set_random_state(seed=None if seed is None else seed + 1)

    def batch(self, batch_size: int):
        """(source, target) float32 tensors of shape (B, C, *patch_size)."""
        import torch

        sources, targets = [], []
        for i in self.rng.choice(len(self.samples), size=batch_size, p=self.weights):
            both, n_src = self.samples[i]
            item = {"pair": both}
            if self.indices:
                item["fg"], item["bg"] = self.indices[i]
            crop = self.transform(item)
            crop = (crop[0] if isinstance(crop, list) else crop)["pair"]
            crop = crop.as_tensor() if hasattr(crop, "as_tensor") else torch.as_tensor(crop)
            sources.append(crop[:n_src])
            targets.append(crop[n_src:])
        return torch.stack(sources).contiguous(), torch.stack(targets).contiguous()

    def _random_states(self) -> list:
        """Every numpy RandomState the transforms draw from (Compose, each transform and
        the croppers inside dictionary transforms)."""
        owners = [self.transform]
        for t in self.transform.transforms:
            owners += [t] + [
                v for v in vars(t).values() if hasattr(v, "R") and hasattr(v, "randomize")
            ]
        return [o.R for o in owners]

    def state(self) -> dict:
        """Random state of the sampler (JSON-able) for exact resumption."""
        states = []
        for r in self._random_states():
            name, keys, pos, has_gauss, gauss = r.get_state()
            states.append([name, [int(v) for v in keys], int(pos), int(has_gauss), float(gauss)])
        return {"rng": self.rng.bit_generator.state, "transforms": states}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        for r, (name, keys, pos, has_gauss, gauss) in zip(
            self._random_states(), state["transforms"]
        ):
            r.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
