"""Augmentations against overfitting a few fields of view (MONAI transforms): zoom and
elastic deformation applied identically to source and target so that pairs stay aligned
(on by default), and intensity changes on the source only, which bend a quantitative
mapping (one source value, several targets) and so are off unless asked for
(docs/quality.md, four tasks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Augmentations:
    """Probabilities of the random augmentations of training crops (0 = off).

    Intensity changes apply to the source only (the target keeps its units); spatial
    ones apply the same random transform to source and target, so pairs stay aligned."""

    intensity: float = 0.0  # scale by 1 +- 0.2 and shift by +- 0.2 (normalized units)
    gamma: float = 0.0  # gamma in [0.7, 1.5] over the crop's range
    zoom: float = 0.0  # zoom by 0.85-1.15, size kept
    elastic: float = 0.0  # smooth deformation of a few pixels
    flips: float = 0.0  # each flip and the 90-degree rotation (done by the sampler)

    @property
    def any(self) -> bool:
        return any((self.intensity, self.gamma, self.zoom, self.elastic))

    @classmethod
    def of(cls, config) -> Augmentations:
        return cls(
            config.augment_intensity,
            config.augment_gamma,
            config.augment_zoom,
            config.augment_elastic,
            config.augment_flips,
        )


def build_augmentations(augment: Augmentations, patch_size: tuple[int, ...]):
    """MONAI dictionary transforms on {"source", "target"} crops: intensity on the
    source only, spatial ones (one random draw for both keys) on both."""
    from monai.transforms import (
        Compose,
        Rand2DElasticd,
        Rand3DElasticd,
        RandAdjustContrastd,
        RandScaleIntensityd,
        RandShiftIntensityd,
        RandZoomd,
    )

    both, dims = ["source", "target"], len(patch_size)
    linear = "bilinear" if dims == 2 else "trilinear"
    steps = [
        RandZoomd(
            both,
            prob=augment.zoom,
            min_zoom=0.85,
            max_zoom=1.15,
            mode=linear,
            padding_mode="reflect",
            keep_size=True,
        ),
        Rand2DElasticd(
            both,
            spacing=max(4, min(patch_size) // 4),
            magnitude_range=(1.0, 2.0),
            prob=augment.elastic,
            mode="bilinear",
            padding_mode="reflection",
        )
        if dims == 2
        else Rand3DElasticd(
            both,
            sigma_range=(5.0, 7.0),
            magnitude_range=(50.0, 100.0),
            prob=augment.elastic,
            mode="bilinear",
            padding_mode="reflection",
        ),
        RandScaleIntensityd(["source"], factors=0.2, prob=augment.intensity),
        RandShiftIntensityd(["source"], offsets=0.2, prob=augment.intensity),
        RandAdjustContrastd(["source"], prob=augment.gamma, gamma=(0.7, 1.5)),
    ]
    return Compose(steps)
