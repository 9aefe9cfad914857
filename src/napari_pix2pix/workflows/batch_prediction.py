"""``predict_many``: one model over a folder, a glob or a list of images, an output
each in one folder, for lab pipelines that run unattended and are run again.

Each output is ``<input name without its image ending><suffix>.<format>``. The model is
loaded once; each file is streamed by ``predict`` as on its own (so memory does not grow
with the number of files), and is written under a temporary name until complete. A
file that fails is recorded with its reason and the next one goes on. Run again, the
batch skips the outputs that exist (complete by construction) when this model made them
(each records its model's hash: provenance.recorded_model), continues an unfinished
zarr store, and redoes the rest. A summary (JSON and CSV) in the output folder says what
was done, skipped and failed."""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._version import __version__
from ..errors import ImageFileError, InputError, Pix2PixError
from ..io.datasets import image_files, image_stem
from ..io.images import read_image
from ..io.model_file import as_model
from ..io.output_paths import atomic_write, check_output_path, reason
from ..io.outputs import check_output
from ..io.provenance import recorded_model
from ..options import options_doc, split_options, user_path
from ..run_options import BatchOptions, PredictOptions
from .prediction import predict

SUMMARY = "pix2pix-summary"  # .json and .csv in the output folder
MARK = "napari-pix2pix predict_many"  # in the summary JSON: only such a file is replaced
GLOB_CHARACTERS = "*?["


@dataclass
class FileOutcome:
    """What became of one input: status "done", "skipped" or "failed" ("interrupted" for
    the one a Ctrl-C stopped, "pending" for those after it), why (for skipped and
    failed), the warnings it gave, the seconds it took, and how far it lies from the
    model's training inputs (predict's input check: its highest score and the threshold;
    None when not predicted, or for a model without an input profile)."""

    input: str
    output: str
    status: str
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    input_score: float | None = None
    input_threshold: float | None = None

    @property
    def input_above(self) -> bool:
        """The input differs from the training inputs (its score is above the threshold)."""
        return self.input_score is not None and self.input_score > self.input_threshold


@dataclass
class BatchResult:
    outcomes: list[FileOutcome]
    summary: Path | None = None  # the JSON (the CSV lies beside it)

    def having(self, status: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def done(self) -> list[FileOutcome]:
        return self.having("done")

    @property
    def skipped(self) -> list[FileOutcome]:
        return self.having("skipped")

    @property
    def failed(self) -> list[FileOutcome]:
        return self.having("failed")


def predict_many(
    model,
    inputs,
    out_dir,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    file_progress: Callable[[int, int, FileOutcome], None] | None = None,
    **options,
) -> BatchResult:
    """Predict every image of ``inputs`` into ``out_dir``, one output file each.

    Args:
        model: a Pix2PixModel or the path of a saved model (loaded once).
        inputs: a folder (its image files), a glob pattern (``"incoming/*.ome.tif"``,
            ``**`` for subfolders), or a list of image paths.
        out_dir: the folder for the outputs and the summary; made if missing.
        overwrite: predict again into outputs that exist (only predictions of
            napari-pix2pix are replaced); by default they are skipped.
        progress: called with (tiles done, tiles total) of the file under way.
        file_progress: called after each file with (files finished, files total, its
            FileOutcome).

    Options: ``suffix`` and ``format`` name the outputs; the rest are ``predict``'s
    (tile_size, overlap, batch_size, device, amp, fuse, axes), the same for every file.

    Returns:
        BatchResult: one FileOutcome per input (``done``, ``skipped``, ``failed``) and
        the summary's path. Errors of the whole batch (the model, the output folder,
        the options, no inputs) are raised before any file is read; a file's own
        errors are recorded and the batch goes on. Ctrl-C stops it after writing the
        summary (that file is "interrupted": rerun to continue).
    """
    batch_options, predict_options = split_options(
        options, BatchOptions, PredictOptions, what="predict_many"
    )
    # their defaults, as a run config's predict: section holds them (--print-config),
    # ask for nothing a batch does differently
    defaults = {"uncertainty": False, "if_exists": "error"}
    predict_options = {
        k: v for k, v in predict_options.items() if not (k in defaults and v == defaults[k])
    }
    if {"uncertainty", "if_exists"} & set(predict_options):
        raise InputError(
            "predict_many writes files: uncertainty is not available, and existing "
            "outputs are skipped (overwrite=True predicts them again) rather than if_exists."
        )
    opts = BatchOptions(**batch_options)
    PredictOptions(**predict_options)  # checked now, not at the first file
    fmt = opts.format.lower().lstrip(".")
    if os.sep in opts.suffix or "/" in opts.suffix:
        raise InputError(f"suffix is added to file names: no '/' in it, got {opts.suffix!r}.")
    files = input_files(inputs)
    model = as_model(model)
    folder, made = _output_folder(out_dir)
    try:
        # the ending is one predict writes (the name a template: only its ending counts)
        check_output(folder / f"<name>{opts.suffix}.{fmt}", None, "")
        summary = folder / f"{SUMMARY}.json"
        for path, ours in ((summary, _is_summary), (summary.with_suffix(".csv"), _is_summary_csv)):
            check_output_path(
                path, if_exists="overwrite", ours=ours, not_ours=" as a batch summary"
            )
    except InputError:
        if made:
            folder.rmdir()  # made by this call a moment ago, and still empty
        raise
    outcomes = _planned(files, folder, opts.suffix, fmt)
    result = BatchResult(outcomes, summary)
    sha256 = hashlib.sha256(model.to_bytes()).hexdigest()  # what outputs record
    try:
        for i, outcome in enumerate(outcomes):
            if outcome.status == "pending":
                _predict_one(model, sha256, outcome, overwrite, progress, predict_options)
            _write_summary(result, folder)  # after each file: a killed batch still has one
            if file_progress is not None:
                file_progress(i + 1, len(outcomes), outcome)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM in the CLI: wherever it came
        for outcome in outcomes:
            if outcome.status == "pending":  # the first one is the one under way
                outcome.status, outcome.reason = "interrupted", "stopped by Ctrl-C"
                break
        _write_summary(result, folder)
        raise
    return result


predict_many.__doc__ += options_doc(BatchOptions)


def input_files(inputs) -> list[Path]:
    """The image files of a folder, a glob pattern or a list of paths (a folder or a
    pattern inside the list is expanded too), each once, in order."""
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if not items:
        raise InputError("no inputs given; give a folder, a glob pattern or image files.")
    files: list[Path] = []
    for item in items:
        path = user_path(item, "input")
        text = os.fspath(path)
        if path.is_dir() and image_stem(path.name) is None:
            found = image_files(path)
            if not found:
                raise InputError(f"the folder {text!r} holds no image files.")
        elif not os.path.lexists(path) and any(c in text for c in GLOB_CHARACTERS):
            found = [
                Path(p)
                for p in sorted(glob.glob(text, recursive=True))
                if image_stem(Path(p).name) is not None
            ]
            if not found:
                raise InputError(f"no image files match {text!r}.")
        else:
            found = [path]  # a missing or unreadable file fails on its own, not the batch
        files += found
    return list(dict.fromkeys(files))  # each once, in order


def _output_folder(out_dir) -> tuple[Path, bool]:
    """The output folder, and whether it was made now."""
    folder = user_path(out_dir, "the output folder")
    if not folder.is_dir() and image_stem(folder.name) is not None:
        raise InputError(
            f"{str(folder)!r} is named like an image, but several inputs (a folder, a glob or "
            "a list) need an output folder, where each gets <name><suffix>.<format>: give a "
            "folder name (or one input, to name its output)."
        )
    if folder.exists() and not folder.is_dir():
        raise InputError(
            f"the output folder {str(folder)!r} is a file; give a folder (one output per input)."
        )
    if folder.is_dir():
        return folder, False
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise InputError(
            f"cannot make the output folder {str(folder)!r} ({exc.strerror or exc})."
        ) from exc
    return folder, True


def _planned(files: list[Path], folder: Path, suffix: str, fmt: str) -> list[FileOutcome]:
    """An outcome per input with its output path; those that cannot run are settled
    now: an input that is itself an output of this batch (the output folder is the
    input folder), two inputs with one output name."""
    outcomes, taken = [], {}
    ending = f"{suffix}.{fmt}".lower()
    for path in files:
        out = folder / f"{image_stem(path.name) or path.name}{suffix}.{fmt}"
        outcome = FileOutcome(str(path), str(out), "pending")
        if suffix and path.name.lower().endswith(ending) and _same(path.parent, folder):
            outcome.status, outcome.reason = "skipped", "an output of this batch (its name ends so)"
        elif out in taken:
            outcome.status = "failed"
            outcome.reason = (
                f"its output {out.name!r} is also that of {taken[out]!r}; rename one of them"
            )
        else:
            taken[out] = path.name
        outcomes.append(outcome)
    return outcomes


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _predict_one(
    model, sha256: str, outcome: FileOutcome, overwrite: bool, progress, options
) -> None:
    """Predict one file, or settle it as skipped (its output exists, made by this
    model), or failed (among others: its output was made by another model)."""
    out, start = Path(outcome.output), time.perf_counter()
    if_exists = "overwrite" if overwrite else "error"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)  # each file's own, said for each
        try:
            if os.path.lexists(out) and not overwrite:
                # replaceable means written by napari-pix2pix; otherwise say why not
                check_output(out, None, "", "overwrite", inputs=(outcome.input,))
                recorded = recorded_model(out)
                if recorded and not sha256.startswith(recorded):  # another model's
                    outcome.status = "failed"
                    outcome.reason = (
                        f"its output exists, predicted by another model (sha256 "
                        f"{recorded[:12]}..., this one {sha256[:12]}...): overwrite=True "
                        "(CLI --overwrite) predicts it again with this model"
                    )
                    return
                if _finished(out):
                    outcome.status = "skipped"
                    outcome.reason = (
                        "its output exists (overwrite=True, CLI --overwrite, redoes it)"
                    )
                    return
                if_exists = "resume"  # an unfinished zarr store: continue it
            _, check = predict(
                model,
                outcome.input,
                out=out,
                progress=progress,
                if_exists=if_exists,
                return_input_check=True,
                **options,
            )
            if check is not None:
                outcome.input_score = round(check.score, 3)
                outcome.input_threshold = check.threshold
            outcome.status = "done"
        except Exception as exc:  # recorded, and the next file goes on
            outcome.status, outcome.reason = "failed", _reason(exc)
        finally:
            outcome.seconds = round(time.perf_counter() - start, 3)
            outcome.warnings = [str(w.message) for w in caught if w.category is UserWarning]
    for w in caught:  # said again, a user's warning naming its file
        if w.category is UserWarning:
            warnings.warn(f"{Path(outcome.input).name}: {w.message}", stacklevel=3)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _finished(out: Path) -> bool:
    """Whether an existing output of ours is complete: files are only ever renamed into
    place when complete; a store says whether it is (read_image refuses an unfinished
    one)."""
    if not out.is_dir():
        return True
    try:
        read_image(out, lazy=True)
        return True
    except ImageFileError:
        return False


def _reason(exc: Exception) -> str:
    """An error as one line: the library's own messages say what and how; anything
    else is named by its type (a bug to report, not the file's fault alone)."""
    if isinstance(exc, Pix2PixError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{reason(exc)} ({exc.filename})" if exc.filename else reason(exc)
    return f"{type(exc).__name__}: {exc}"


def _is_summary(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("written_by") == MARK
    except (OSError, ValueError, AttributeError):
        return False


SUMMARY_COLUMNS = (
    "input",
    "output",
    "status",
    "reason",
    "warnings",
    "seconds",
    "input_score",  # predict's input check: empty for a model without an input profile
    "input_flag",  # "above": the input differs from the training inputs
)
# a summary written before the input check: still ours, replaced by a batch run again
EARLIER_COLUMNS = SUMMARY_COLUMNS[:6]


def _is_summary_csv(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return next(csv.reader(fh), None) in (list(SUMMARY_COLUMNS), list(EARLIER_COLUMNS))
    except (OSError, UnicodeDecodeError):
        return False


def _write_summary(result: BatchResult, folder: Path) -> None:
    statuses = ("done", "skipped", "failed", "interrupted", "pending")
    counts = {s: len(result.having(s)) for s in statuses}
    document = {
        "written_by": MARK,
        "version": __version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "counts": counts,
        "files": [asdict(o) for o in result.outcomes],
    }
    atomic_write(result.summary, (json.dumps(document, indent=1) + "\n").encode(), replace=True)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for o in result.outcomes:
        score = "" if o.input_score is None else o.input_score
        flag = "above" if o.input_above else ""
        said = " | ".join(o.warnings)
        writer.writerow([o.input, o.output, o.status, o.reason, said, o.seconds, score, flag])
    atomic_write(result.summary.with_suffix(".csv"), text.getvalue().encode(), replace=True)


def is_many(inputs: list[str]) -> bool:
    """Whether the command line's inputs ask for a batch: several, a folder (not a zarr
    store) or a glob pattern that names no file."""
    if len(inputs) != 1:
        return True
    path = user_path(inputs[0], "INPUT")
    if path.is_dir():
        return image_stem(path.name) is None
    return not os.path.lexists(path) and any(c in inputs[0] for c in GLOB_CHARACTERS)
