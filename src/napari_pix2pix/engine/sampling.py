"""Which pixels training learns from: random aligned crops of the training part, with
paired flips and rotations (MONAI dictionary transforms) and the optional augmentations
(augment.py); crops of large files are read box by box (lazy.py)."""

from __future__ import annotations

import threading

import numpy as np

from .augment import Augmentations, build_augmentations
from .lazy import LazySample, read_box
from .pairs import Sample

# normalized target level ([-1, 1]) above which a pixel counts as foreground for crop
# sampling: the upper three quarters of the target's percentile range
FOREGROUND_LEVEL = -0.5


def pad_to_at_least(x: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Reflect-pad the spatial axes (the last len(size)) up to ``size``."""
    pads = [(0, 0)] * (x.ndim - len(size)) + [
        (0, max(0, s - d)) for s, d in zip(size, x.shape[-len(size) :])
    ]
    if any(p[1] for p in pads):
        x = np.pad(x, pads, mode="reflect" if min(x.shape[-len(size) :]) > 1 else "edge")
    return x


# foreground crops from lazy samples: boxes drawn per crop at most, and the share of
# foreground pixels at which a box is taken at once (else the one with the most)
FOREGROUND_TRIES = 8
FOREGROUND_ENOUGH = 0.01


class PairedPatchSampler:
    """Random aligned (source, target) crops with paired flips and 90-degree rotations.

    Samples are (C, *spatial) numpy arrays or LazySample views of files: for each crop
    the sampler picks a sample (in proportion to its area) and a box, reads only that
    box, normalizes it (``normalization``: the source and target Normalization; the
    target is clipped to [-1, 1]) and reflect-pads it when the image is smaller than the
    patch. MONAI dictionary transforms then apply the same random flip/rotation (and
    spatial augmentations) to source and target, which keeps every pair pixel-aligned.

    With ``foreground`` > 0 that fraction of the crops contains target pixels in the
    upper three quarters of the target's normalized range: sparse targets such as
    nuclei then fill most crops instead of empty background, which the discriminator
    would otherwise learn to reward. In-memory samples centre such crops on a
    foreground pixel (MONAI's RandCropByPosNegLabeld with precomputed indices); lazy
    samples cannot be scanned whole, so up to FOREGROUND_TRIES random boxes are drawn
    and the first with FOREGROUND_ENOUGH of foreground (else the one with the most) is
    taken: bounded reads, and memory that does not grow with the data.

    Batch k's random draws are seeded from (seed, k) alone: any thread can make any
    batch, in any order, with the same crops (prefetch.py makes them in several), and
    ``state()`` is just the seed and the next batch's number, so a resumed run draws
    the same crops as an uninterrupted one.
    """

    def __init__(
        self,
        train: list[Sample],
        patch_size: tuple[int, ...],
        seed: int | None = None,
        foreground: float = 0.0,
        normalization=None,
        augment: Augmentations | None = None,
    ) -> None:
        dims = len(patch_size)
        self.patch_size = tuple(patch_size)
        self.foreground = foreground
        self.normalization = normalization
        self.augmentations = augment or Augmentations()  # None: no augmentation at all
        self.samples = list(train)
        self.shapes = [
            tuple(max(n, p) for n, p in zip(s.shape[1:], patch_size)) for s, _ in self.samples
        ]
        self.indices = [self._foreground_indices(t) for _, t in self.samples]
        areas = np.array([float(np.prod(s)) for s in self.shapes])
        self.weights = areas / areas.sum()
        self.dims = dims
        # the stream's key: batch k's draws depend on (seed, k) alone
        self.seed = int(np.random.SeedSequence().entropy) % 2**63 if seed is None else int(seed)
        self.next = 0  # the batch ``batch()`` makes next
        self._local = threading.local()  # each thread's own transforms (their states)

    def _draws(self) -> _Draws:
        """This thread's transforms: MONAI's hold their random state, so threads that make
        batches at once each need their own."""
        draws = getattr(self._local, "draws", None)
        if draws is None:
            draws = self._local.draws = _Draws(self)
        return draws

    def _foreground_indices(self, target):
        """(foreground, background) flat indices over the padded normalized target of an
        in-memory sample; None for lazy samples and without foreground crops."""
        if self.foreground <= 0 or isinstance(target, LazySample):
            return None
        norm = pad_to_at_least(self._target(target), self.patch_size)
        mask = (norm > FOREGROUND_LEVEL).any(axis=0).ravel()
        return np.flatnonzero(mask), np.flatnonzero(~mask)

    def _source(self, x: np.ndarray) -> np.ndarray:
        if self.normalization is None:
            return np.asarray(x, np.float32)
        return self.normalization[0].forward(x)

    def _target(self, x: np.ndarray) -> np.ndarray:
        if self.normalization is None:
            return np.asarray(x, np.float32)
        return np.clip(self.normalization[1].forward(x), -1.0, 1.0)

    def _read(self, i: int, box: tuple[slice, ...], target=None):
        """The normalized, padded (source, target) crop of sample ``i`` in ``box`` (a box
        of the padded sample): only the part inside the image is read."""
        src, tgt = self.samples[i]
        inside = tuple(slice(b.start, min(b.stop, n)) for b, n in zip(box, src.shape[1:]))
        s = pad_to_at_least(self._source(read_box(src, inside)), self.patch_size)
        t = target if target is not None else self._target(read_box(tgt, inside))
        return s, pad_to_at_least(t, self.patch_size)

    def _box(self, i: int, draws: _Draws):
        """A random patch box in sample ``i`` (padded), drawn with the crop transform's
        own RandomState as MONAI would; for lazy foreground crops, the box and its
        normalized target crop."""
        cropper = draws.crop.cropper
        shape = self.shapes[i]
        if self.foreground <= 0:
            cropper.randomize(shape)
            return cropper._slices, None
        if self.indices[i] is not None:
            fg, bg = self.indices[i]
            cropper.randomize(label=None, fg_indices=fg, bg_indices=bg, image=_Shape(shape))
            center = cropper.centers[0]
            starts = [max(int(c) - p // 2, 0) for c, p in zip(center, self.patch_size)]
            return tuple(slice(a, a + p) for a, p in zip(starts, self.patch_size)), None
        from monai.data.utils import get_random_patch

        if cropper.R.rand() >= self.foreground:  # a background (any) crop
            return get_random_patch(shape, self.patch_size, cropper.R), None
        best = (-1, None, None)
        for _ in range(FOREGROUND_TRIES):
            box = get_random_patch(shape, self.patch_size, cropper.R)
            _, target = self._read_target(i, box)
            share = float((target > FOREGROUND_LEVEL).any(axis=0).mean())
            if share > best[0]:
                best = (share, box, target)
            if share >= FOREGROUND_ENOUGH:
                break
        return best[1], best[2]

    def _read_target(self, i: int, box):
        tgt = self.samples[i][1]
        inside = tuple(slice(b.start, min(b.stop, n)) for b, n in zip(box, tgt.shape[1:]))
        return box, self._target(read_box(tgt, inside))

    def batch(self, batch_size: int):
        """The next batch of the stream (``batch_at(self.next)``)."""
        made = self.batch_at(self.next, batch_size)
        self.next += 1
        return made

    def batch_at(self, index: int, batch_size: int):
        """Batch ``index`` of the stream: (source, target) float32 tensors of shape
        (B, C, *patch_size). Its random draws come from (seed, index) alone, so any
        thread can make any batch (prefetch.py) and a run resumes from the index."""
        import torch

        draws = self._draws()
        keys = np.random.SeedSequence([self.seed % 2**64, index]).generate_state(
            1 + len(draws.states)
        )
        rng = np.random.default_rng(keys[0])
        for state, key in zip(draws.states, keys[1:]):
            state.seed(int(key))
        sources, targets = [], []
        for i in rng.choice(len(self.samples), size=batch_size, p=self.weights):
            box, target = self._box(i, draws)
            s, t = self._read(i, box, target)
            item = {"pair": torch.from_numpy(np.ascontiguousarray(np.concatenate([s, t])))}
            for transform in draws.after_crop:
                item = transform(item)
            pair = _tensor(item["pair"])
            source, target = pair[: s.shape[0]], pair[s.shape[0] :]
            if draws.augment is not None:
                item = draws.augment({"source": source, "target": target})
                source, target = _tensor(item["source"]), _tensor(item["target"])
            sources.append(source)
            targets.append(target)
        return torch.stack(sources).contiguous(), torch.stack(targets).contiguous()

    def state(self) -> dict:
        """Where the stream is (JSON-able), for exact resumption."""
        return {"seed": self.seed, "batch": self.next}

    def set_state(self, state: dict) -> None:
        """Go on from ``state``; without "seed" (another rank's state) with this
        sampler's own seed, at the same batch."""
        self.seed = int(state.get("seed", self.seed))
        self.next = int(state["batch"])


class _Draws:
    """One thread's crop, flip/rotation and augmentation transforms (MONAI dictionary
    transforms), and every numpy RandomState they draw from, in a fixed order."""

    def __init__(self, sampler: PairedPatchSampler) -> None:
        from monai.transforms import (
            RandCropByPosNegLabeld,
            RandFlipd,
            RandRotate90d,
            RandSpatialCropd,
        )

        keys, dims, patch = ["pair"], sampler.dims, sampler.patch_size
        flip = sampler.augmentations.flips
        self.crop = (
            RandCropByPosNegLabeld(
                keys,
                label_key=None,
                image_key="pair",
                spatial_size=patch,
                pos=sampler.foreground,
                neg=1.0 - sampler.foreground,
                fg_indices_key="fg",
                bg_indices_key="bg",
            )
            if sampler.foreground > 0
            else RandSpatialCropd(keys, roi_size=patch, random_size=False)
        )
        # the crop draws its boxes (sampler._box); these run on each crop
        self.after_crop = [
            *(RandFlipd(keys, prob=flip, spatial_axis=i) for i in range(dims)),
            RandRotate90d(keys, prob=flip, spatial_axes=(dims - 2, dims - 1)),
        ]
        augment = sampler.augmentations
        self.augment = build_augmentations(augment, patch) if augment.any else None
        self.states = _own_states([self.crop, *self.after_crop, self.augment])


class _Shape:
    """Stands in for an image where MONAI only needs its shape."""

    def __init__(self, spatial: tuple[int, ...]) -> None:
        self.shape = (1, *spatial)


def _tensor(x):
    import torch

    return x.as_tensor() if hasattr(x, "as_tensor") else torch.as_tensor(x)


def _own_states(roots: list) -> list:
    """A RandomState of its own for each transform and each randomizable part inside
    them (the croppers inside dictionary transforms), in a fixed order (attribute order,
    depth first). Own: until set, MONAI's ``R`` is one class attribute that every
    instance, in every thread, draws from."""
    seen, states = set(), []

    def visit(obj, depth: int) -> None:
        if id(obj) in seen or depth > 4:
            return
        seen.add(id(obj))
        if isinstance(getattr(obj, "R", None), np.random.RandomState):
            obj.R = np.random.RandomState()
            states.append(obj.R)
        children = list(getattr(obj, "transforms", None) or [])
        children += [v for v in vars(obj).values() if hasattr(v, "set_random_state")]
        for child in children:
            visit(child, depth + 1)

    for root in roots:
        if root is not None:
            visit(root, 0)
    return states
