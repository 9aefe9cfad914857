"""A run's record in its run folder: ``log.csv`` (a row per step and per validation,
readable by any spreadsheet) and, when the ``tensorboard`` package is installed,
TensorBoard event files in ``tensorboard/`` (``tensorboard --logdir RUN_FOLDER``)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from ..engine.events import StepEvent, TrainingEvent, ValidationEvent
from ..engine.loss_terms import LOSS_NAMES
from ..engine.run_history import RunHistory

LOSSES = LOSS_NAMES
METRICS = ("mae", "psnr", "ssim", "pearson_r", "std_ratio", "spectral")
COLUMNS = ("kind", "step", "seconds", "lr", *LOSSES, *METRICS, "best")
LOG_NAME = "log.csv"
FLUSH_SECONDS = 2.0  # at most this much of a run's log is lost when it is killed
BOARD_NAME = "tensorboard"


class RunLog:
    """Appends a run's loss-log entries and validations to its log files. A resumed run
    drops the rows after its checkpoint's step (they belong to the part that was lost)."""

    def __init__(self, folder, resumed_step: int | None = None) -> None:
        self.path = Path(folder) / LOG_NAME
        rows = _rows_until(self.path, resumed_step) if resumed_step is not None else []
        self.file = open(self.path, "w", newline="", encoding="utf-8")
        self.csv = csv.DictWriter(self.file, COLUMNS, extrasaction="ignore")
        self.csv.writeheader()
        self.csv.writerows(rows)
        self.board = _tensorboard(Path(folder) / BOARD_NAME)
        self.seconds = 0.0
        self.after = resumed_step or 0  # the loss entries of later steps are new rows
        self.history: RunHistory | None = None
        self.lrs: dict[int, float] = {}
        self.flush()  # the rows kept from before a resume, and the header

    def write(self, event: TrainingEvent) -> None:
        self.history = event.model.history
        if isinstance(event, StepEvent):
            self.lrs = {event.step: event.lr}
        self._new_loss_rows()
        if isinstance(event, ValidationEvent):
            row = {"kind": "validation", "step": event.step, "best": int(event.best)}
            row.update(event.metrics)
            for name, value in event.metrics.items():
                self._scalar(f"validation/{name}", value, event.step)
            self._row(row)
        if isinstance(event, ValidationEvent) or time.monotonic() - self.flushed >= FLUSH_SECONDS:
            self.flush()

    def _new_loss_rows(self) -> None:
        """A row for each entry of the loss log (engine/loss_log.py) not written yet:
        those of steps, and the last one a stopped run makes without a step event."""
        if self.history is None:
            return
        losses = self.history.losses
        steps = losses.get("step", [])
        first = next((i for i in range(len(steps) - 1, -1, -1) if steps[i] <= self.after), -1)
        for i in range(first + 1, len(steps)):
            step = steps[i]
            values = {k: v[i] for k, v in losses.items() if k != "step" and i < len(v)}
            for name, value in values.items():
                self._scalar(f"loss/{name}", value, step)
            self._row({"kind": "step", "step": step, "lr": self.lrs.get(step), **values})
            self.after = step

    def _row(self, row: dict) -> None:
        self.seconds = self.history.train_seconds
        row["seconds"] = round(self.seconds, 3)
        self.csv.writerow(row)

    def flush(self) -> None:
        """The rows so far into the file: a run killed (SIGKILL, power) loses only the
        rows after it; called every FLUSH_SECONDS, with each validation and checkpoint."""
        self._new_loss_rows()
        self.file.flush()
        if self.board is not None:
            self.board.flush()
        self.flushed = time.monotonic()

    def _scalar(self, tag: str, value: float, step: int) -> None:
        if self.board is not None:
            self.board.add_scalar(tag, value, step)

    def close(self) -> None:
        self.file.close()
        if self.board is not None:
            self.board.close()


def is_run_log(path: Path) -> bool:
    """Whether ``path`` is a run log napari-pix2pix wrote (its header is ours)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().strip() == ",".join(COLUMNS)
    except (OSError, UnicodeDecodeError):
        return False


def _rows_until(path: Path, step: int) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [
                r
                for r in csv.DictReader(f)
                if r.get("step", "").isdigit() and int(r["step"]) <= step
            ]
    except (OSError, csv.Error):
        return []


def _tensorboard(folder: Path):
    """A SummaryWriter, or None without the optional ``tensorboard`` package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(folder))
