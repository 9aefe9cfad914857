"""Image-quality scores for validation and benchmarks, in the target's units."""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import PSNRMetric, SSIMMetric


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def image_metrics(pred: np.ndarray, target: np.ndarray, low, high) -> dict[str, float]:
    """MAE (target units), PSNR and SSIM (over the target's [low, high] range) and Pearson r,
    averaged over channels. Arrays are (N, C, *spatial)."""
    spatial_dims = pred.ndim - 2
    lo = np.asarray(low, np.float32).reshape((1, -1) + (1,) * spatial_dims)
    hi = np.asarray(high, np.float32).reshape((1, -1) + (1,) * spatial_dims)
    p = torch.from_numpy(((pred - lo) / (hi - lo)).astype(np.float32))
    t = torch.from_numpy(((target - lo) / (hi - lo)).astype(np.float32))
    mae_units = np.abs(pred.astype(np.float64) - target).mean(axis=(0,) + tuple(range(2, pred.ndim)))
    out = {"mae": float(mae_units.mean()),
           "psnr": float(PSNRMetric(max_val=1.0)(p, t).mean()),
           "ssim": float("nan"),
           "pearson_r": float(np.mean([pearson_r(pred[:, c], target[:, c])
                                       for c in range(pred.shape[1])]))}
    if min(pred.shape[2:]) >= 11:
        out["ssim"] = float(SSIMMetric(spatial_dims=spatial_dims, data_range=1.0)(p, t).mean())
    return out


