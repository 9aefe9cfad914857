"""A run's history, as one typed object owned by its model (``model.history``): what the
run did (steps, losses, validations, the validation it kept, how long, on what device),
what it trained on (split, pairs, pixel sizes, the data's identity) and how it was set
up (recipe, time budget, the model it started from).

Why typed, not a plain dict: a dozen modules write and read it; a misspelt key or a
value of the wrong shape was silent until a reader met it. Here each entry has a type
and a default (the default is what a reader assumed when the entry was missing).

The stored form (``to_dict``) is the JSON that model files and checkpoints have always
held, key for key, so files written before and after this class read alike (the model
format version is unchanged). ``from_dict`` reads it back: a malformed entry is dropped
with a warning (the history only describes the model, which is intact), and keys this
version does not know (a newer version's) are kept in ``extra`` and written back, so
that opening and saving a newer model here does not lose what the newer version
recorded."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _metrics(v) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and _number(x) for k, x in v.items())


def _pixel_size(v) -> bool:
    return isinstance(v, dict) and all(
        (k == "unit" and isinstance(x, str))
        or (k in "ZYX" and _number(x) and math.isfinite(x) and x > 0)
        for k, x in v.items()
    )


def _optional(check):
    return lambda v: v is None or check(v)


@dataclass
class ValidationRecord:
    """A validation the run kept track of (``best``: the kept one; ``most_accurate``):
    its step, the metric it was chosen by, that metric's value and all its scores."""

    step: int
    metric: str
    value: float
    metrics: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def valid(v) -> bool:
        return (
            isinstance(v, dict)
            and isinstance(v.get("metric"), str)
            and _count(v.get("step"))
            and _number(v.get("value"))
            and _metrics(v.get("metrics", {}))
        )

    @classmethod
    def from_dict(cls, d: dict) -> ValidationRecord:
        return cls(d["step"], d["metric"], d["value"], dict(d.get("metrics", {})))

    def to_dict(self) -> dict:
        return {"step": self.step, "metric": self.metric, "value": self.value,
                "metrics": self.metrics}  # fmt: skip


@dataclass
class Validation:
    """One validation of the run: its step and its scores (mae, psnr, ssim, pearson_r,
    spectral, std_ratio; NaN where a score could not be computed)."""

    step: int
    metrics: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def valid(v) -> bool:
        return isinstance(v, dict) and _count(v.get("step")) and _metrics(v)

    @classmethod
    def from_dict(cls, d: dict) -> Validation:
        return cls(d["step"], {k: v for k, v in d.items() if k != "step"})

    def to_dict(self) -> dict:
        return {"step": self.step, **self.metrics}


# what each stored entry must be for its readers (the model card, the pixel-size check,
# a resumed run), in the order a warning names them; one that is not is dropped
_CHECKS = {
    "steps_done": _count,
    "train_seconds": lambda v: _number(v) and v >= 0,
    "time_budget": _optional(lambda v: _number(v) and v > 0),
    "device": lambda v: isinstance(v, str),
    "kept": lambda v: isinstance(v, str),
    "recipe": _optional(lambda v: isinstance(v, dict) and isinstance(v.get("preset", ""), str)),
    "best": _optional(ValidationRecord.valid),
    "most_accurate": _optional(ValidationRecord.valid),
    "final_metrics": _metrics,
    "pixel_size": lambda v: isinstance(v, list) and all(map(_pixel_size, v)),
    "losses": lambda v: isinstance(v, dict) and all(isinstance(x, list) for x in v.values()),
    "validation": lambda v: isinstance(v, list) and all(map(Validation.valid, v)),
    "split": _optional(lambda v: isinstance(v, str)),
    "train_pairs": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "val_pairs": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "data": _optional(lambda v: isinstance(v, dict)),
    "init_model": _optional(lambda v: isinstance(v, dict)),
    "validation_shift": _optional(lambda v: isinstance(v, dict)),
    "stopped": _optional(lambda v: isinstance(v, str)),
}
# written even when None, as a run has always written them ("none given"); any other
# entry that is None (or final_metrics when empty) is left out, as it was before
_NULL_WRITTEN = ("recipe", "time_budget")


@dataclass
class RunHistory:
    """What a run did and how; the attribute names are the stored keys."""

    steps_done: int = 0
    # "step" -> the steps of the log's entries; each loss name (g_l1, ...) -> its means
    losses: dict[str, list[float]] = field(default_factory=dict)
    validation: list[Validation] = field(default_factory=list)
    train_seconds: float = 0.0
    device: str | None = None  # where it trained ("cpu", "cuda:0", ...)
    recipe: dict | None = None  # the recipe that chose the network (engine/recipes.py)
    split: str | None = None  # how the data was split into training and validation
    train_pairs: list[str] = field(default_factory=list)  # names of the pairs trained on
    val_pairs: list[str] = field(default_factory=list)
    pixel_size: list[dict] = field(default_factory=list)  # of the training images
    data: dict | None = None  # the identity of the data (workflows/data_identity.py)
    time_budget: float | None = None  # seconds, the whole run's (None: steps only)
    init_model: dict | None = None  # the model it started from (workflows/starting_point.py)
    final_metrics: dict[str, float] = field(default_factory=dict)  # the last validation's
    best: ValidationRecord | None = None  # the validation kept (engine/best_model.py)
    most_accurate: ValidationRecord | None = None
    # the registration shift measured on validation (engine/alignment.py)
    validation_shift: dict | None = None
    stopped: str | None = None  # why the run stopped early (patience)
    kept: str | None = None  # which weights the model holds: "best", "accurate", "last"
    # stored entries this version does not know (written by a newer one): kept as read
    extra: dict = field(default_factory=dict)

    @staticmethod
    def malformed(d: dict) -> list[str]:
        """The entries of a stored history that are not what their readers need."""
        return [k for k, check in _CHECKS.items() if k in d and not check(d[k])]

    @classmethod
    def from_dict(cls, d: dict, source) -> RunHistory:
        """The stored history ``d`` (of the file ``source``, named in the warning), its
        malformed entries dropped with a warning."""
        bad = cls.malformed(d)
        if bad:
            warnings.warn(
                f"the training history in {str(source)!r} has malformed entries ("
                f"{', '.join(bad)}), which are ignored; the model itself is intact.",
                stacklevel=3,
            )
        names = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in d.items() if k in names and k not in bad}
        values["validation"] = [Validation.from_dict(v) for v in values.get("validation", [])]
        for key in ("best", "most_accurate"):
            if values.get(key) is not None:
                values[key] = ValidationRecord.from_dict(values[key])
        extra = {k: v for k, v in d.items() if k not in names and k != "extra"}
        return cls(**values, extra=extra)

    def to_dict(self) -> dict:
        """The stored form (JSON-ready): the same keys and values as always."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (value is None and f.name not in _NULL_WRITTEN):
                continue
            if f.name == "final_metrics" and not value:
                continue
            if f.name == "validation":
                value = [v.to_dict() for v in value]
            elif isinstance(value, ValidationRecord):
                value = value.to_dict()
            out[f.name] = value
        return {**self.extra, **out}

    # the dict it was until 0.1.0: scripts that read ``model.history["steps_done"]`` keep
    # working (the stored form's values: plain dicts and lists), with a pointer to the
    # attribute; reading only (a change goes through the attributes)
    def __getitem__(self, key: str):
        stored = self.to_dict()
        if key not in stored:
            raise KeyError(key)
        _said_dict(key)
        return stored[key]

    def get(self, key: str, default=None):
        stored = self.to_dict()
        if key in stored:
            _said_dict(key)
        return stored.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self.to_dict()

    def kept_record(self) -> ValidationRecord | None:
        """The validation whose weights the model holds (kept "best" or "accurate"),
        None when it holds its last step's."""
        return {"best": self.best, "accurate": self.most_accurate}.get(self.kept or "")


def _said_dict(key: str) -> None:
    warnings.warn(
        f"model.history is a RunHistory now, not a dict: read model.history.{key} instead "
        f'of model.history["{key}"] (the dict form goes away in a later version).',
        DeprecationWarning,
        stacklevel=3,
    )
