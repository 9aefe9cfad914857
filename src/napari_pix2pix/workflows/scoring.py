"""``evaluate_files``: predictions already on disk scored against their targets, with
no model: files, or folders whose files pair up by name, each with an optional mask.
One row per image (and per slice of a stack) goes into a CSV and a JSON file that a
pipeline keeps beside its predictions.

PSNR and SSIM need the range the values may span. A model knows it (its normalization,
which validation and ``evaluate`` use); files do not, so it is the target's own max -
min inside the mask, per image and channel, unless ``data_range`` gives one value for
all (use that to compare images with each other: a dim image's own range is small)."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._version import __version__
from ..engine.metrics import plane_scores
from ..errors import InputError, Pix2PixError
from ..io.datasets import image_files, image_stem
from ..io.images import read_image
from ..io.output_paths import atomic_write, check_output_path
from ..options import options_doc, split_options, user_path
from ..run_options import ScoringOptions

METRICS = ("mae", "psnr", "ssim", "pearson_r")
COLUMNS = (
    "prediction",
    "target",
    "mask",
    "channel",
    "slice",
    "status",
    "reason",
    "pixels",
    "data_range",
    *METRICS,
)
MARK = "napari-pix2pix evaluate"  # in every JSON it writes: only those are replaced
WHOLE = "all"  # the slice column of an image's own row


@dataclass
class Pairing:
    """What is scored against what; ``problem`` says why it cannot be (no partner)."""

    name: str
    prediction: Path | None
    target: Path | None
    mask: Path | None = None
    problem: str = ""


@dataclass
class FileScores:
    """The rows (dicts with COLUMNS), and the files they were written to."""

    rows: list[dict] = field(default_factory=list)
    csv: Path | None = None
    json: Path | None = None

    @property
    def images(self) -> list[dict]:
        """The row of each image as a whole (and each failed pair)."""
        return [r for r in self.rows if r["slice"] == WHOLE]

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "failed"]

    @property
    def mean(self) -> dict[str, float]:
        """Each metric averaged over the images scored (NaN where none has it)."""
        ok = [r for r in self.images if r["status"] == "ok"]
        return {m: _mean([r[m] for r in ok]) for m in METRICS}


def evaluate_files(
    predictions,
    targets,
    mask=None,
    *,
    out=None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> FileScores:
    """Score ``predictions`` against ``targets`` in the target's units.

    Args:
        predictions, targets: an image file each (TIFF, NIfTI, zarr), two folders whose
            files pair up by name (a prediction's name may end in ``suffix``:
            ``a_pix2pix.ome.zarr`` pairs with ``a.tif``), or two lists of files paired in
            order. A file without a partner gets a "failed" row; the others are scored.
        mask: None (every pixel), a file (for every pair) or a folder paired by name:
            pixels where it is nonzero are scored. It has the target's shape, or its last
            axes' (a YX mask for every slice of a stack).
        out: where to write the rows: ``name.csv`` or ``name.json``; both are written.
            An existing one is replaced only with ``overwrite`` and only if this function
            wrote it.
        progress: called with (pairs done, pairs total).

    Returns:
        FileScores: per image a row (``slice`` "all", per channel where there are several),
        per slice of a stack a row (``slice`` e.g. "Z=3"), each with MAE, PSNR, SSIM
        (2D, per YX plane; an image's is the mean over its planes), Pearson r, the
        pixels scored and the data range; a pair that cannot be scored has one row,
        ``status`` "failed", and its ``reason``.
    """
    opts = ScoringOptions(**split_options(options, ScoringOptions, what="evaluate_files")[0])
    pairs = pair_files(predictions, targets, mask, opts.suffix)
    paths = _output_paths(out, overwrite, pairs) if out is not None else None
    result = FileScores()
    for i, pairing in enumerate(pairs):
        result.rows += score_pair(pairing, opts.data_range)
        if progress is not None:
            progress(i + 1, len(pairs))
    if paths is not None:
        result.csv, result.json = _write(result, paths, overwrite, opts)
    return result


evaluate_files.__doc__ += options_doc(ScoringOptions)


def pair_files(predictions, targets, mask, suffix: str) -> list[Pairing]:
    """The pairs to score: file with file, folder with folder (by name: the
    prediction's without ``suffix``), list with list (in order); a mask file goes with
    every pair, a mask folder by name. Own matching rather than datasets.match_folders,
    which refuses any unmatched file (training needs every pair) and knows no suffix."""
    kinds = [_kind(predictions, "predictions"), _kind(targets, "targets")]
    if kinds[0] != kinds[1]:
        raise InputError(
            f"give predictions and targets alike: two files, two folders or two lists "
            f"(got a {kinds[0]} and a {kinds[1]})."
        )
    if kinds[0] == "list":
        if not predictions:
            raise InputError("no predictions given (an empty list); give files or folders.")
        if len(predictions) != len(targets):
            raise InputError(
                f"got {len(predictions)} predictions but {len(targets)} targets; give one "
                "target per prediction."
            )
        pairs = [
            Pairing(Path(p).name, user_path(p), user_path(t)) for p, t in zip(predictions, targets)
        ]
    elif kinds[0] == "file":
        pairs = [Pairing(Path(predictions).name, user_path(predictions), user_path(targets))]
    else:
        pairs = _match(_keyed(user_path(predictions), suffix), _keyed(user_path(targets), ""))
        _check_some_match(pairs, predictions, targets, suffix)
    if mask is None:
        return pairs
    if _kind(mask, "mask") == "list":
        raise InputError("mask is one file or one folder, not a list.")
    mask = user_path(mask, "mask")
    if not (mask.is_dir() and image_stem(mask.name) is None):
        for p in pairs:
            p.mask = mask
        return pairs
    masks = _keyed(mask, "")
    for p in pairs:
        keys = (_key(p.target, ""), _key(p.prediction, suffix))
        found = next((masks[k] for k in keys if k in masks), None)
        if isinstance(found, Path):
            p.mask = found
        elif not p.problem:
            p.problem = found or f"no mask for it in {str(mask)!r} (named as its target)"
    return pairs


def _check_some_match(pairs: list[Pairing], predictions, targets, suffix: str) -> None:
    """Two folders of which no file pairs with another: a naming rule missed (the
    suffix, most often), said once before anything is read, not as one failure a file."""
    if any(p.prediction and p.target for p in pairs):
        return
    for folder in (predictions, targets):
        if not image_files(user_path(folder)):
            raise InputError(f"{str(folder)!r} holds no image files; give the folder that does.")
    ours = sorted(p.prediction.name for p in pairs if p.prediction)[:2]
    theirs = sorted(p.target.name for p in pairs if p.target)[:2]
    if not ours or not theirs:  # one side's names all clash: each pair says so
        return
    raise InputError(
        f"no prediction in {str(predictions)!r} is named like a target in "
        f"{str(targets)!r} (e.g. {', '.join(ours)} and {', '.join(theirs)}): a prediction "
        f"'<name>{suffix}.tif' pairs with the target '<name>.tif'; give the suffix your "
        "predictions carry (--suffix), or two lists of files paired in order."
    )


def _kind(item, name: str) -> str:
    if isinstance(item, (list, tuple)):
        return "list"
    path = user_path(item, name)
    return "folder" if path.is_dir() and image_stem(path.name) is None else "file"


def _key(path: Path | None, suffix: str) -> str | None:
    stem = image_stem(path.name) if path is not None else None
    if stem and suffix and stem.endswith(suffix) and len(stem) > len(suffix):
        return stem[: -len(suffix)]
    return stem


def _keyed(folder: Path, suffix: str) -> dict[str, Path | str]:
    """Key -> file of a folder; a key that several files share maps to that problem."""
    names: dict[str, list[Path]] = {}
    for path in image_files(folder):
        names.setdefault(_key(path, suffix), []).append(path)
    return {
        key: paths[0]
        if len(paths) == 1
        else (
            f"{' and '.join(repr(p.name) for p in paths)} in {str(folder)!r} have the same "
            "name but for the ending (or suffix); keep one of them"
        )
        for key, paths in names.items()
    }


def _match(predictions: dict, targets: dict) -> list[Pairing]:
    pairs = []
    for key in sorted(set(predictions) | set(targets)):
        p, t = predictions.get(key), targets.get(key)
        pairing = Pairing(
            key, p if isinstance(p, Path) else None, t if isinstance(t, Path) else None
        )
        if isinstance(p, str) or isinstance(t, str):
            pairing.problem = p if isinstance(p, str) else t
        elif p is None:
            pairing.problem = "no prediction named like this target"
        elif t is None:
            pairing.problem = "no target named like this prediction"
        pairs.append(pairing)
    if not pairs:
        raise InputError("the prediction and target folders hold no image files.")
    return pairs


def score_pair(pairing: Pairing, data_range: float | None) -> list[dict]:
    """The rows of one pair: per channel, its slices and itself; one failed row when the
    files cannot be read or scored together."""
    base = {
        "prediction": str(pairing.prediction or ""),
        "target": str(pairing.target or ""),
        "mask": str(pairing.mask or ""),
    }
    try:
        if pairing.problem:
            raise InputError(pairing.problem)
        pred, target, mask, axes = _read(pairing)
        rows = []
        channels = [slice(None)] if "C" not in axes else range(pred.shape[axes.index("C")])
        for c in channels:
            rows += _score_channel(base, c, pred, target, mask, axes, data_range)
        return rows
    except (Pix2PixError, OSError, ValueError, MemoryError) as exc:
        return [_row(base, "", WHOLE, "failed", str(exc))]


def _read(pairing: Pairing):
    """The prediction, target and mask (broadcast to the target's shape) and the axes."""
    images = [read_image(pairing.prediction), read_image(pairing.target)]
    pred, target = (np.asarray(i.array) for i in images)
    known = [i.axes if len(i.axes) == a.ndim else "" for i, a in zip(images, (pred, target))]
    if pred.shape != target.shape:  # the same but for axes of length 1 (a C of one): fine
        if np.squeeze(pred).shape != np.squeeze(target).shape:
            raise InputError(
                f"the prediction's shape {pred.shape} differs from the target's "
                f"{target.shape}: pair each prediction with its own target."
            )
        known = [
            "".join(x for x, n in zip(k, a.shape) if n != 1) for k, a in zip(known, (pred, target))
        ]
        pred, target = np.squeeze(pred), np.squeeze(target)
    axes = known[0] or known[1]
    if pred.ndim < 2:
        raise InputError(f"the images hold {pred.ndim}D arrays; images are at least YX.")
    for what, array in (("prediction", pred), ("target", target)):
        if array.dtype.kind not in "biuf":
            raise InputError(f"the {what} has dtype {array.dtype}; numbers are expected.")
        if not np.isfinite(array).all():
            raise InputError(
                f"the {what} holds NaN or infinite values (an unfinished or damaged "
                "prediction?); finish or replace it."
            )
    mask = np.ones(target.shape, bool)
    if pairing.mask is not None:
        given = np.asarray(read_image(pairing.mask).array)
        if not np.isfinite(given).all():  # NaN != 0 would score those pixels
            raise InputError(
                "the mask holds NaN or infinite values; a mask is 0 where pixels are left "
                "out and nonzero where they are scored."
            )
        try:
            mask = np.broadcast_to(given != 0, target.shape)
        except ValueError:
            raise InputError(
                f"the mask's shape {given.shape} fits neither the target's {target.shape} "
                "nor its last axes (a YX mask for every slice)."
            ) from None
        if not mask.any():
            raise InputError("the mask has no nonzero pixel: there is nothing to score.")
    return pred, target, mask, axes or "TZYX"[-min(pred.ndim, 4) :].rjust(pred.ndim, "?")


def _score_channel(base, c, pred, target, mask, axes, data_range) -> list[dict]:
    """A channel's planes (every axis but Y and X flattened) scored one by one and
    together."""
    channel = "" if isinstance(c, slice) else c
    take = (lambda a: np.take(a, c, axis=axes.index("C"))) if channel != "" else (lambda a: a)
    plane_axes = axes.replace("C", "") if channel != "" else axes
    p, t, m = (take(a) for a in (pred, target, mask))
    shape = p.shape[:-2]
    p, t, m = (a.reshape(-1, *a.shape[-2:]) for a in (p, t, m))
    if data_range is None:
        inside = t[m]
        data_range = float(inside.max()) - float(inside.min())  # no integer overflow
        if data_range == 0:
            raise InputError(
                f"the target{f' channel {channel}' if channel != '' else ''} is constant "
                f"({inside.max():g}) where it is scored, so it has no range for PSNR and "
                "SSIM; pass data_range (CLI --data-range)."
            )
    per_plane, whole = plane_scores(p, t, data_range, m)
    rows = []
    if len(per_plane) > 1:
        for i, scores in enumerate(per_plane):
            index = np.unravel_index(i, shape)
            label = " ".join(f"{a}={n}" for a, n in zip(plane_axes[: len(shape)], index))
            if scores["pixels"]:
                rows.append(_row(base, channel, label, "ok", "", scores, data_range))
            else:
                rows.append(_row(base, channel, label, "empty", "no pixel of the mask in it"))
    return [*rows, _row(base, channel, WHOLE, "ok", "", whole, data_range)]


def _row(base, channel, label, status, reason, scores=None, data_range=None) -> dict:
    scores = scores or {}
    return {
        **base,
        "channel": channel,
        "slice": label,
        "status": status,
        "reason": reason,
        "pixels": scores.get("pixels", 0),
        "data_range": data_range,
        **{m: scores.get(m, float("nan")) for m in METRICS},
    }


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _output_paths(out, overwrite: bool, pairs: list[Pairing]) -> tuple[Path, Path]:
    """``name.csv`` and ``name.json``, checked before anything is read: not one of the
    inputs, replaceable only if written here (the JSON's mark, the CSV's header)."""
    path = user_path(out, "out")
    if path.suffix.lower() not in (".csv", ".json"):
        raise InputError(f"out must end in .csv or .json (both are written), got {str(path)!r}.")
    inputs = [p for pair in pairs for p in (pair.prediction, pair.target, pair.mask) if p]
    checks = ((path.with_suffix(".csv"), _csv_is_ours), (path.with_suffix(".json"), _json_is_ours))
    for target, ours in checks:
        check_output_path(
            target,
            inputs=inputs,
            if_exists="overwrite" if overwrite else "error",
            ours=ours,
            overwrite_hint="overwrite=True",
            not_ours=" as evaluation results",
        )
    return checks[0][0], checks[1][0]


def _csv_is_ours(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return next(csv.reader(fh), None) == list(COLUMNS)
    except (OSError, UnicodeDecodeError):
        return False


def _json_is_ours(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("written_by") == MARK
    except (OSError, ValueError, AttributeError):
        return False


def _write(result: FileScores, paths, overwrite: bool, opts: ScoringOptions) -> tuple[Path, Path]:
    csv_path, json_path = paths
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in result.rows:
        writer.writerow({k: "" if _missing(v) else v for k, v in row.items()})
    atomic_write(csv_path, text.getvalue().encode(), replace=overwrite)
    finite = lambda v: None if _missing(v) else v  # noqa: E731 (JSON has no NaN)
    document = {
        "written_by": MARK,
        "version": __version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data_range": opts.data_range if opts.data_range is not None else "target",
        "images": len(result.images),
        "failed": len(result.failed),
        "mean": {k: finite(v) for k, v in result.mean.items()},
        "rows": [{k: finite(v) for k, v in row.items()} for row in result.rows],
    }
    atomic_write(json_path, (json.dumps(document, indent=1) + "\n").encode(), replace=overwrite)
    return csv_path, json_path


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
