"""How the numbers a person reads about a model are written: its validation scores,
durations and pixel sizes ('PSNR 23.9 dB', '20.1 min', '0.65 x 0.65 µm (Y x X)'),
alike on the model card, the run plan, the step display and in messages."""

from __future__ import annotations

METRIC_NAMES = {"mae": "MAE", "psnr": "PSNR", "ssim": "SSIM", "pearson_r": "Pearson r"}
METRIC_UNITS = {"mae": "target units", "psnr": "dB"}  # SSIM and r have none


def metric_label(name: str) -> str:
    """'MAE (target units)', 'PSNR (dB)', 'SSIM': a column or axis title."""
    unit = METRIC_UNITS.get(name)
    return METRIC_NAMES.get(name, name) + (f" ({unit})" if unit else "")


def metric_text(name: str, value) -> str:
    """'PSNR 23.9 dB', 'MAE 855 (target units)', 'SSIM 0.784'."""
    label = METRIC_NAMES.get(name, name)
    if not isinstance(value, (int, float)):
        return f"{label} {value}"
    if name == "psnr":
        return f"{label} {value:.1f} dB"
    if name == "mae":
        return f"{label} {value:.4g} (target units)"
    return f"{label} {value:.3f}"


def duration_text(seconds: float) -> str:
    """'45 s', '20.1 min', '2.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def pixel_size_text(record: dict) -> str:
    """'0.65 x 0.65 µm (Y x X)'."""
    axes = [a for a in "ZYX" if a in record]
    values = " x ".join(f"{record[a]:.4g}" for a in axes)
    return f"{values} {record.get('unit', '')} ({' x '.join(axes)})"
