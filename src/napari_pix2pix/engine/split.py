"""Which pixels are held out for validation: whole pairs (files) when there are several,
slices of a stack, or the right strip of X of a single image; training crops never
touch them."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError
from .lazy import loaded
from .pairs import Sample

MAX_VAL_SAMPLES = 8  # validation samples scored (and held in memory) at most


@dataclass
class Split:
    """Training and validation samples as lists of (source, target) (C, *spatial) arrays
    (training ones may be LazySample views; validation ones are in memory), with the
    names of the pairs each part comes from."""

    train: list[Sample]
    val: list[Sample]
    description: str
    train_pairs: list[str] = field(default_factory=list)
    val_pairs: list[str] = field(default_factory=list)
    # columns at the start of each validation sample that are training data: predicted
    # as context for the held-out strip, never scored (a strip predicted on its own is
    # mostly image border, and scored the border's artefacts more than the model)
    val_context: int = 0
    # the physical pixel sizes of the images (distinct ones), for the model's record
    pixel_sizes: list[dict] = field(default_factory=list)


def split_train_val(
    pairs: list[Sample],
    val_fraction: float,
    max_val_samples: int = MAX_VAL_SAMPLES,
    groups: list[int] | None = None,
    names: list[str] | None = None,
    context: int = 0,
) -> Split:
    """Hold out whole pairs (the last images or files) when there are several and
    ``val_fraction`` of them rounds to at least one; else whole samples (the last slices
    of a stack) when there are enough; else the last ``val_fraction`` of the X axis of
    each image. Training crops are taken only from the training part, so they never
    overlap the validation data. ``groups`` gives the pair of each sample (default: one
    pair per sample), ``names`` the pairs' names for the description. A held-out strip
    is predicted with up to ``context`` training columns to its left (``val_context``)."""
    groups = list(range(len(pairs))) if groups is None else list(groups)
    n_pairs = len(set(groups))
    names = names or [f"pair {i}" for i in range(n_pairs)]
    everything = names[:n_pairs]
    if val_fraction <= 0:
        return Split(pairs, [], "no validation", everything, [])
    n_val_pairs = min(int(round(n_pairs * val_fraction)), n_pairs - 1)
    if n_pairs >= 2 and n_val_pairs >= 1:
        first_val = n_pairs - n_val_pairs
        train = [p for p, g in zip(pairs, groups) if g < first_val]
        val = [p for p, g in zip(pairs, groups) if g >= first_val]
        return Split(
            train,
            _loaded(val[:max_val_samples]),
            f"last {n_val_pairs} of {n_pairs} pairs held out: {', '.join(names[first_val:])}",
            names[:first_val],
            names[first_val:n_pairs],
        )
    n_val = int(round(len(pairs) * val_fraction))
    if len(pairs) >= 2 and n_val >= 1:
        n_val = min(n_val, len(pairs) - 1)
        val = pairs[len(pairs) - n_val :][:max_val_samples]
        return Split(
            pairs[: len(pairs) - n_val],
            _loaded(val),
            f"last {n_val} of {len(pairs)} slices/images held out",
            everything,
            everything if n_pairs == 1 else sorted({names[g] for g in groups[-n_val:]}),
        )
    cuts = [max(1, int(round(s.shape[-1] * val_fraction))) for s, _ in pairs]
    widths = [s.shape[-1] for s, _ in pairs]
    for width, n in zip(widths, cuts):
        if width - n < 1:
            raise InputError(
                f"the image is too narrow ({width} px) to hold out {val_fraction:.0%} "
                "for validation; use val_fraction=0 or a larger image."
            )
    ctx = min([max(0, context)] + [width - n for width, n in zip(widths, cuts)])
    train = [(s[..., : w - n], t[..., : w - n]) for (s, t), w, n in zip(pairs, widths, cuts)]
    val = [
        (s[..., w - n - ctx :], t[..., w - n - ctx :]) for (s, t), w, n in zip(pairs, widths, cuts)
    ]
    return Split(
        train,
        _loaded(val[:max_val_samples]),
        f"right {val_fraction:.0%} of X (columns {widths[0] - cuts[0]}-) held out",
        everything,
        everything,
        ctx,
    )


def _loaded(samples: list[Sample]) -> list[Sample]:
    """Validation samples in memory (at most ``max_val_samples`` of them)."""
    return [(loaded(s), loaded(t)) for s, t in samples]
