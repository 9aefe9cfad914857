"""A pair's thumbnail: its source and target planes side by side, small, so a user sees
at a glance which images a row pairs (and a wrong or empty one)."""

from __future__ import annotations

import numpy as np
from qtpy.QtGui import QImage, QPixmap

HEIGHT = 48  # pixels of a thumbnail's side
GAP = 4  # pixels between the source and the target


def grey(plane: np.ndarray, height: int = HEIGHT) -> np.ndarray:
    """``plane`` shrunk (by striding) to at most ``height`` pixels a side, as uint8 from
    its 1-99 % range (a blank plane stays black)."""
    stride = max(1, -(-max(plane.shape) // height))
    small = np.asarray(plane[::stride, ::stride], dtype=np.float64)
    finite = small[np.isfinite(small)]
    lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0.0, 0.0)
    scaled = (np.nan_to_num(small, nan=lo) - lo) / (hi - lo) if hi > lo else small * 0
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def pair_thumbnail(source_plane: np.ndarray, target_plane: np.ndarray) -> np.ndarray:
    """Source and target thumbnails side by side (uint8, HEIGHT rows at most)."""
    left, right = grey(source_plane), grey(target_plane)
    rows = max(left.shape[0], right.shape[0])
    canvas = np.zeros((rows, left.shape[1] + GAP + right.shape[1]), np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] + GAP :] = right
    return canvas


def pixmap(image: np.ndarray) -> QPixmap:
    """A QPixmap of a 2D uint8 image."""
    image = np.ascontiguousarray(image)
    rows, cols = image.shape
    qimage = QImage(image.data, cols, rows, cols, QImage.Format.Format_Grayscale8)
    return QPixmap.fromImage(qimage.copy())  # copied: ``image`` may go
