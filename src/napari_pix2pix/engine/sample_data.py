"""A simulated but physically plausible paired sample, so demos and tests need no
downloads: cultured cells imaged as phase contrast (source) and as nuclear (DAPI-like)
fluorescence (target). Works in 2D and 3D."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def _ellipsoid(shape, center, radii, rotation) -> tuple[tuple[slice, ...], np.ndarray]:
    """Bounding-box slices and the mask of a (rotated in YX) ellipsoid."""
    box = tuple(
        slice(max(0, int(c - r * 1.5)), min(n, int(c + r * 1.5) + 1))
        for c, r, n in zip(center, radii, shape)
    )
    grids = np.meshgrid(
        *[np.arange(b.start, b.stop) - c for b, c in zip(box, center)], indexing="ij"
    )
    y, x = grids[-2], grids[-1]
    cos, sin = np.cos(rotation), np.sin(rotation)
    rotated = list(grids[:-2]) + [cos * y - sin * x, sin * y + cos * x]
    dist = sum((g / r) ** 2 for g, r in zip(rotated, radii))
    return box, dist <= 1.0


def make_pair(
    shape=(512, 512), density: float = 1.0, seed: int = 0, nucleus_radius: float = 9.0
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one field of view.

    Each cell is a flat body with a denser nucleus (and nucleoli). The phase image is the
    optical path length seen through a phase-contrast band-pass (dark cell interiors with
    bright halos) plus camera noise; the fluorescence image is the nuclear DNA density
    blurred by a PSF, with Poisson shot noise and a camera offset. Returns
    (phase uint16, fluorescence uint16) of ``shape`` (YX or ZYX).
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    dims = len(shape)
    area = float(np.prod(shape[-2:]))
    n_cells = max(1, int(density * area / (np.pi * (2.2 * nucleus_radius) ** 2) * 0.6))
    opl = np.zeros(shape, np.float32)  # optical path length (phase)
    dna = np.zeros(shape, np.float32)  # nuclear stain density
    z_scale = 0.5 if dims == 3 else 1.0
    for _ in range(n_cells):
        center = [rng.uniform(0, n) for n in shape]
        r_nuc = nucleus_radius * rng.uniform(0.7, 1.3)
        elong = rng.uniform(0.7, 1.0)
        rot = rng.uniform(0, np.pi)
        nuc_r = ([r_nuc * z_scale] if dims == 3 else []) + [r_nuc, r_nuc * elong]
        cell_r = [r * rng.uniform(1.8, 2.6) for r in nuc_r]
        cell_r[-1] *= rng.uniform(0.8, 1.4)
        box, mask = _ellipsoid(shape, center, cell_r, rot + rng.uniform(-0.5, 0.5))
        opl[box] += mask * rng.uniform(0.6, 1.0)
        box, mask = _ellipsoid(shape, center, nuc_r, rot)
        brightness = rng.uniform(0.5, 1.0)
        texture = 1.0 + 0.3 * gaussian_filter(rng.standard_normal(mask.shape), 1.5)
        opl[box] += mask * 0.8
        dna[box] += mask * brightness * texture
        for _ in range(rng.integers(1, 4)):
            offset = [c + rng.uniform(-0.4, 0.4) * r for c, r in zip(center, nuc_r)]
            box, spot = _ellipsoid(shape, offset, [r * 0.2 for r in nuc_r], 0.0)
            opl[box] += spot * 0.5
            dna[box] -= spot * 0.3 * brightness
    opl = gaussian_filter(opl, 1.0)
    halo = opl - gaussian_filter(opl, 6.0)
    phase = 20000.0 - 9000.0 * halo + 600.0 * gaussian_filter(opl, 12.0)
    phase += rng.normal(0, 250.0, shape)
    psf = (0.8, 1.5, 1.5) if dims == 3 else (1.5, 1.5)
    fluo = gaussian_filter(np.clip(dna, 0, None), psf) * 400.0
    fluo = rng.poisson(fluo).astype(np.float32) * 20.0 + 1000.0 + rng.normal(0, 40.0, shape)
    return (np.clip(phase, 0, 65535).astype(np.uint16), np.clip(fluo, 0, 65535).astype(np.uint16))


def make_stack(n_slices: int = 8, shape=(256, 256), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Independent fields stacked along a first (T) axis: (n_slices, Y, X) pairs."""
    pairs = [make_pair(shape, seed=seed + i) for i in range(n_slices)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
