"""Image-quality scores for validation and benchmarks, in the target's units."""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import PSNRMetric, SSIMMetric, compute_ssim_and_cs

from .normalization import Normalization

SSIM_MIN_SIDE = 11  # px along every spatial axis: the Gaussian window's size


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def image_metrics(pred: np.ndarray, target: np.ndarray, norm: Normalization) -> dict[str, float]:
    """MAE (target units), PSNR and SSIM (over the target's [low, high] range) and Pearson r,
    averaged over channels. Arrays are (N, C, *spatial)."""
    spatial_dims = pred.ndim - 2
    p = torch.from_numpy(norm.unit_range(pred))
    t = torch.from_numpy(norm.unit_range(target))
    mae_units = np.abs(pred.astype(np.float64) - target).mean(
        axis=(0,) + tuple(range(2, pred.ndim))
    )
    out = {
        "mae": float(mae_units.mean()),
        "psnr": float(PSNRMetric(max_val=1.0)(p, t).mean()),
        "ssim": float("nan"),
        "pearson_r": float(
            np.mean([pearson_r(pred[:, c], target[:, c]) for c in range(pred.shape[1])])
        ),
    }
    if min(pred.shape[2:]) >= SSIM_MIN_SIDE:
        out["ssim"] = float(SSIMMetric(spatial_dims=spatial_dims, data_range=1.0)(p, t).mean())
    return out


def plane_scores(
    pred: np.ndarray, target: np.ndarray, data_range: float, mask: np.ndarray | None = None
) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Scores of (P, Y, X) planes against their target over the pixels where ``mask``
    (the same shape) is nonzero, for each plane and for all planes together: MAE in the
    target's units, PSNR over ``data_range`` (MONAI's PSNRMetric), SSIM (MONAI's map with
    an 11 px Gaussian window of sigma 1.5, as Wang et al. 2004, on the values divided by
    ``data_range``: unchanged by that scaling, and float32-safe for raw counts), averaged
    over the windows centred on scored pixels, and Pearson r. A score that is not defined
    (no scored pixel, planes under 11 px for SSIM, a constant image for r) is NaN."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    mask = np.ones(pred.shape, bool) if mask is None else np.asarray(mask) != 0
    half = SSIM_MIN_SIDE // 2
    ssim_map = centres = None
    if min(pred.shape[1:]) >= SSIM_MIN_SIDE:
        ssim_map = (
            compute_ssim_and_cs(
                torch.from_numpy(pred[:, None] / data_range).float(),
                torch.from_numpy(target[:, None] / data_range).float(),
                spatial_dims=2,
                kernel_size=(SSIM_MIN_SIDE,) * 2,
                kernel_sigma=(1.5, 1.5),
                data_range=1.0,
            )[0][:, 0]
            .double()
            .numpy()
        )
        centres = mask[:, half:-half, half:-half]  # the map's pixels are window centres

    def scores(planes: slice) -> dict[str, float]:
        m = mask[planes]
        p, t = pred[planes][m], target[planes][m]
        out = dict.fromkeys(("mae", "psnr", "ssim", "pearson_r"), float("nan"))
        out["pixels"] = int(p.size)
        if p.size == 0:
            return out
        out["mae"] = float(np.abs(p - t).mean())
        psnr = PSNRMetric(max_val=data_range)
        out["psnr"] = float(psnr(torch.from_numpy(p)[None, None], torch.from_numpy(t)[None, None]))
        if ssim_map is not None and centres[planes].any():
            out["ssim"] = float(ssim_map[planes][centres[planes]].mean())
        if p.size > 1 and np.ptp(p) > 0 and np.ptp(t) > 0:
            out["pearson_r"] = float(np.corrcoef(p, t)[0, 1])
        return out

    return [scores(slice(i, i + 1)) for i in range(len(pred))], scores(slice(None))


def radial_power_spectrum(image: np.ndarray) -> np.ndarray:
    """Radially averaged power spectrum of a 2D image (mean removed), one value per
    integer frequency radius up to the Nyquist limit of the shorter side."""
    image = np.asarray(image, np.float64)
    power = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))) ** 2
    ny, nx = image.shape
    y, x = np.indices(image.shape)
    # radius in cycles per image along the shorter side, so non-square images compare
    r = np.hypot((y - ny // 2) * min(ny, nx) / ny, (x - nx // 2) * min(ny, nx) / nx)
    r = np.round(r).astype(int)
    n = min(ny, nx) // 2
    sums = np.bincount(r.ravel(), power.ravel(), minlength=n + 1)[1 : n + 1]
    counts = np.bincount(r.ravel(), minlength=n + 1)[1 : n + 1]
    return sums / np.maximum(counts, 1)


def spectral_distance(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute difference of the log10 radial power spectra: how far the texture
    and sharpness of a prediction are from the target's at every scale. A blurred (L1
    only) prediction lacks high-frequency power, which this measures and MAE does not."""
    p, t = radial_power_spectrum(pred), radial_power_spectrum(target)
    eps = 1e-12 * max(t.max(), 1e-30)
    return float(np.mean(np.abs(np.log10(p + eps) - np.log10(t + eps))))


def spectral_distance_nd(pred: np.ndarray, target: np.ndarray, slices: int = 8) -> float:
    """``spectral_distance`` of (C, *spatial) arrays, averaged over channels; for 3D over
    up to ``slices`` evenly spaced Z planes (enough to see blur, and cheap). Constant
    target planes (background outside a body) have no spectrum and are skipped. NaN for
    planes under 8 px on a side, whose spectra hold too few frequencies to compare."""
    pred, target = np.asarray(pred), np.asarray(target)
    if min(pred.shape[-2:]) < 8:
        return float("nan")
    if pred.ndim == 4:
        varied = [z for z in range(pred.shape[1]) if np.ptp(target[:, z]) > 0]
        picks = np.unique(np.linspace(0, len(varied) - 1, min(slices, len(varied))).round())
        pairs = [
            (p[varied[int(i)]], t[varied[int(i)]]) for p, t in zip(pred, target) for i in picks
        ]
    else:
        pairs = list(zip(pred, target))
    distances = [spectral_distance(p, t) for p, t in pairs if np.ptp(t) > 0]
    return float(np.mean(distances)) if distances else float("nan")
