"""Which images a run trains on, recorded in its checkpoint (``history.data``) so
that ``resume`` goes on only on the same data. A resumed run keeps the normalization
fitted on its first images: resumed on a target 50x brighter, its predictions clip at
2 % of the new range, and its history would still name the old files. So each side's
file names, shapes, dtypes and the normalization that would be fitted on it now (the
percentile lows and highs, which see the pixels, not only the files' names) are
compared, and other data is refused unless the user asks for it."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..engine.normalization import Normalization
from ..engine.split import Split
from ..errors import InputError

SIDES = ("source", "target")
ARRAY = "array"  # the name of an image given in memory
TOLERANCE = 1e-3  # of the recorded range: the same pixels fit the same numbers


def data_identity(
    inputs, opened: tuple[list, list], split: Split, percentiles, fitted=None
) -> dict:
    """The identity of a run's data: per side the pairs' names, shapes and dtypes (as
    opened) and the normalization fitted on the training part (``fitted``: the
    {side: Normalization} just fitted for the run, else fitted here), and the names of
    the validation pairs."""
    identity: dict = {}
    for i, side in enumerate(SIDES):
        norm = (fitted or {}).get(side) or Normalization.fit(
            [pair[i] for pair in split.train], percentiles, side
        )
        arrays = [array for array, _ in opened[i]]
        identity[side] = {
            "names": [_name(getattr(p, side)) for p in inputs],
            "shapes": [[int(n) for n in a.shape] for a in arrays],
            "dtypes": [str(np.dtype(getattr(a, "dtype", "float32"))) for a in arrays],
            "low": [float(v) for v in norm.low],
            "high": [float(v) for v in norm.high],
        }
    identity["validation"] = list(split.val_pairs)
    return identity


def check_same_data(recorded, now: dict, other_data_ok: bool, folder) -> str:
    """Raise InputError if the data differ from the checkpoint's (unless
    ``other_data_ok``); return what the user should know ('' when nothing)."""
    if not _well_formed(recorded):
        return (
            f"the checkpoint in {str(folder)!r} does not record which images it was trained "
            "on (written by an earlier version), so these cannot be checked against them; "
            "the run goes on with its own normalization."
        )
    differ = differences(recorded, now)
    if not differ:
        return ""
    if other_data_ok:
        return (
            f"resuming on other images than the run's, as asked: {'; '.join(differ)}. The "
            "run keeps its own normalization: values beyond its range are clipped."
        )
    raise InputError(
        f"resume={str(folder)!r} continues a run on the images it was trained on, and "
        f"these differ: {'; '.join(differ)}. A resumed run keeps its normalization, so "
        "its predictions for other data would be clipped or compressed. Train a new run "
        "on these images (another checkpoint_dir), or, to go on with them and the run's "
        "normalization, pass resume_other_data=True (CLI --resume-other-data)."
    )


def differences(then: dict, now: dict) -> list[str]:
    """What differs, each as 'WHAT NOW now vs THEN in the checkpoint'."""
    found = []
    for side in SIDES:
        a, b = now[side], then[side]
        for key, what in (("names", "files"), ("shapes", "shapes"), ("dtypes", "dtypes")):
            if key == "names" and not _names_differ(a[key], b[key]):
                continue
            if a[key] != b[key]:
                found.append(
                    f"{side} {what} {_few(a[key])} now vs {_few(b[key])} in the checkpoint"
                )
        if not _close(a, b):
            found.append(f"{side} normalization {_ranges(a)} now vs {_ranges(b)} in the checkpoint")
    if now["validation"] != then["validation"]:
        found.append(
            f"validation pairs {_few(now['validation'])} now vs "
            f"{_few(then['validation'])} in the checkpoint"
        )
    return found


def _names_differ(now: list, then: list) -> bool:
    """Names compare only where both are files': an in-memory array (a napari layer, a
    script's array of the same file) has none, and its pixels are compared anyway."""
    if len(now) != len(then):
        return True
    return any(a != b for a, b in zip(now, then) if ARRAY not in (a, b))


def _close(a: dict, b: dict) -> bool:
    if len(a["low"]) != len(b["low"]):
        return False
    for lo, hi, lo0, hi0 in zip(a["low"], a["high"], b["low"], b["high"]):
        span = max(abs(hi0 - lo0), 1e-12)
        if abs(lo - lo0) > TOLERANCE * span or abs(hi - hi0) > TOLERANCE * span:
            return False
    return True


def _ranges(side: dict) -> str:
    return ", ".join(f"{lo:.6g}..{hi:.6g}" for lo, hi in zip(side["low"], side["high"]))


def _few(items: list, shown: int = 3) -> str:
    text = ", ".join(str(tuple(i)) if isinstance(i, list) else str(i) for i in items[:shown])
    more = len(items) - shown
    return (text or "none") + (f" and {more} more" if more > 0 else "")


def _name(item) -> str:
    if isinstance(item, (str, os.PathLike)):
        return Path(item).name
    source = getattr(item, "source", None)  # an ImageData read from a file
    return source.name if isinstance(source, Path) else ARRAY


def _well_formed(recorded) -> bool:
    """A recorded identity this version can compare (an edited or older one is not)."""
    if not isinstance(recorded, dict) or not isinstance(recorded.get("validation"), list):
        return False
    for side in SIDES:
        part = recorded.get(side)
        if not isinstance(part, dict):
            return False
        if not all(isinstance(part.get(k), list) for k in ("names", "shapes", "dtypes")):
            return False
        low, high = part.get("low"), part.get("high")
        if not (isinstance(low, list) and isinstance(high, list) and low and len(low) == len(high)):
            return False
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in low + high
        ):
            return False
    return True
