"""Every user-facing option, declared once.

Pix2PixConfig (the model's recipe, saved in the model file) and the run options of
training and prediction (run_options.py) declare each field with ``option(default, help,
...)``: its type is the field's annotation; the default, allowed range or choices, a
one-line help text and its place in the GUI travel with it. The type and range checks,
the CLI's arguments, the napari widgets' forms and the table in docs/options.md are all
made from these declarations, so adding an option means adding one field.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

# annotation (as a string, under ``from __future__ import annotations``) -> kind
KINDS = {
    "int": "int",
    "int | None": "int",
    "float": "float",
    "float | None": "float",
    "str": "str",
    "str | None": "str",
    "bool": "bool",
    "tuple[int, ...]": "size",
    "tuple[int, ...] | None": "size",
    "tuple[float, float]": "pair",
    "list[float]": "floats",
    "Path | None": "path",
}
MAX_ITEMS = 4096  # longest list a config may hold (per-channel normalization)


@dataclass(frozen=True)
class Spec:
    """How one option is checked and shown.

    group: "basic" and "advanced" options are form fields in the GUI (advanced ones in a
    collapsible section); "data" options go with the inputs (the axes beside the layer
    pickers, a button); "internal" ones are filled in by the library and never set by
    users. ``low``/``high`` bound numbers (and each item of a sequence), inclusive unless
    ``low_open``/``high_open``. ``open_choices``: the choices are suggestions and other
    values are checked later (``device="cuda:1"``). ``none`` says what None means for an
    option that may be None; forms write it as 0 and the CLI as "none". ``surfaces``:
    where the option must appear besides the docs.
    """

    help: str
    group: str = "advanced"
    label: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    open_choices: bool = False
    none: str = ""
    step: float | None = None
    surfaces: tuple[str, ...] = ("cli", "gui")
    alias: str = ""  # the keyword and CLI flag, where it differs from the field name
    allowed: str = ""  # the docs' "allowed" text, where the range alone does not say it
    shown_default: str = ""  # the docs' "default" text, where the library resolves it
    human_unit: tuple[str, float] = ()  # (name, size): the CLI and GUI count in this unit
    unit: str = ""  # the library's unit ("seconds"), said with the bounds in messages


def option(default, help: str, **spec) -> Any:
    """A dataclass field that carries its Spec."""
    metadata = {"spec": Spec(help, **spec)}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Option:
    """One declared option: a field's name, annotation and default with its Spec."""

    name: str
    annotation: str
    default: Any
    spec: Spec

    @property
    def kind(self) -> str:
        return KINDS[self.annotation]

    @property
    def optional(self) -> bool:
        return self.annotation.endswith("| None")

    @property
    def keyword(self) -> str:
        """The name users type (train's keyword, the CLI flag without dashes)."""
        return self.spec.alias or self.name

    @property
    def label(self) -> str:
        label = self.spec.label or self.keyword.replace("_", " ").capitalize()
        return f"{label} ({self.spec.human_unit[0]})" if self.spec.human_unit else label

    @property
    def flag(self) -> str:
        return "--" + self.keyword.replace("_", "-")

    def from_human(self, value):
        """A number typed in the CLI or GUI (e.g. minutes) in the library's unit."""
        unit = self.spec.human_unit
        return value * unit[1] if unit and value is not None else value

    def to_human(self, value):
        unit = self.spec.human_unit
        return value / unit[1] if unit and value is not None else value

    def default_text(self) -> str:
        if self.spec.shown_default:
            return self.spec.shown_default
        if self.default is None:
            return self.spec.none or "none"
        if isinstance(self.default, bool):
            return "yes" if self.default else "no"
        if isinstance(self.default, tuple):
            return " ".join(_number(v) for v in self.default)
        return _number(self.default) if isinstance(self.default, float) else str(self.default)

    def allowed_text(self) -> str:
        s = self.spec
        if s.allowed:
            text = s.allowed
        elif s.choices:
            text = ", ".join(map(str, s.choices)) + (", ..." if s.open_choices else "")
        elif s.low is None and s.high is None:
            text = {"path": "a folder", "bool": "yes/no"}.get(self.kind, "")
        else:
            low = "-inf" if s.low is None else _number(s.low)
            high = "inf" if s.high is None or math.isinf(s.high) else _number(s.high)
            opening = "(" if s.low_open else "["
            closing = ")" if s.high_open or high == "inf" else "]"
            text = f"{opening}{low}, {high}{closing}"
        return text + (f"; none: {s.none}" if self.optional and s.none else "")

    def check(self, value):
        """The value converted to the option's type, or an InputError naming the fix.
        numpy scalars pass like Python numbers."""
        if value is None and self.optional:
            return None
        value = _convert(self, value)
        if self.spec.choices and not self.spec.open_choices and value not in self.spec.choices:
            raise InputError(f"{self.keyword} must be one of {self.spec.choices}, got {value!r}.")
        items = value if isinstance(value, (tuple, list)) else [value]
        if self.kind in ("int", "float", "size", "pair", "floats") and not all(
            self._in_range(v) for v in items
        ):
            raise InputError(self._range_message(value))
        return value

    def _in_range(self, v) -> bool:
        s = self.spec
        if isinstance(v, float) and not math.isfinite(v):
            return False
        low_ok = s.low is None or (v > s.low if s.low_open else v >= s.low)
        high_ok = s.high is None or (v < s.high if s.high_open else v <= s.high)
        return low_ok and high_ok

    def _range_message(self, value) -> str:
        s, name = self.spec, self.keyword
        items = value if isinstance(value, (tuple, list)) else [value]
        if (
            self.kind in ("int", "size")
            and s.high is not None
            and all(s.low is None or v >= s.low for v in items)
        ):
            return (
                f"{name}={value} is beyond what napari-pix2pix supports "
                f"(at most {_number(s.high)})."
            )
        if self.kind == "int" and s.low == 1:
            return f"{name} must be a positive integer, got {value!r}."
        if self.kind == "size" and s.low == 1:
            return f"{name} must be a positive integer (or one per spatial axis), got {value!r}."
        low = None if s.low is None else _number(s.low)
        high = None if s.high is None or math.isinf(s.high) else _number(s.high)
        if low is None and high is None:
            return f"{name} must hold finite numbers, got {value!r}."
        # said in words, each bound exactly as declared (never rounded past the value)
        lows = {False: "at least", True: "above"}
        highs = {False: "at most", True: "below"}
        if high is None:
            bounds = f"finite and {lows[s.low_open]} {low}"
        elif low is None:
            bounds = f"finite and {highs[s.high_open]} {high}"
        elif not (s.low_open or s.high_open):
            bounds = f"between {low} and {high}"
        else:
            bounds = f"{lows[s.low_open]} {low} and {highs[s.high_open]} {high}"
        bounds += f" {s.unit}" if s.unit else ""
        if self.optional and s.none:
            bounds += f", or None for {s.none}"
        if self.kind in ("size", "pair", "floats"):
            return f"each value of {name} must be {bounds}; got {value!r}."
        return f"{name} must be {bounds}; got {value!r}."


def _number(v: float) -> str:
    """1000000000 rather than 1e+09; 0.0002 rather than 0.000200; never rounded (a
    bound shown rounded could contradict the value it refuses)."""
    if float(v).is_integer():
        return str(int(v))
    short = f"{v:g}"
    return short if float(short) == float(v) else repr(float(v))


def _convert(opt: Option, value):
    def fail():
        raise InputError(
            f"{opt.keyword} has an invalid value {value!r} ({opt.annotation} expected)."
        )

    def integer(v):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            fail()
        if isinstance(v, numbers.Integral):
            return int(v)
        if math.isfinite(v) and float(v).is_integer():  # 64.0 from JSON or a spin box
            return int(v)
        fail()

    def real(v):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            fail()
        return float(v)

    def sequence(v, n=None):
        if not isinstance(v, (list, tuple)) or len(v) > MAX_ITEMS or (n and len(v) != n):
            fail()
        return v

    kind = opt.kind
    if kind == "str":
        if not isinstance(value, str) or len(value) > 64:
            fail()
        return value
    if kind == "bool":
        if not isinstance(value, (bool,)) and type(value).__name__ != "bool_":
            fail()
        return bool(value)
    if kind == "int":
        return integer(value)
    if kind == "float":
        return real(value)
    if kind == "size":
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return integer(value)
        return tuple(integer(v) for v in sequence(value))
    if kind == "pair":
        return tuple(real(v) for v in sequence(value, 2))
    if kind == "floats":
        return [real(v) for v in sequence(value)]
    if kind == "path":
        if not isinstance(value, (str, os.PathLike)):
            fail()
        return user_path(value, opt.keyword)
    raise AssertionError(kind)


def user_path(value, name: str = "the path") -> Path:
    """A path as the user typed it, ``~`` expanded. Not Path.expanduser: that raises for
    a name that merely starts with a tilde ('~notes.tif') when no such user exists.
    An empty (or blank) path is refused, naming it as ``name``: Path('') is Path('.'),
    the current folder, which would be read (or written) silently."""
    text = os.fspath(value)
    if not text.strip():
        raise InputError(f"{name} is an empty path ({text!r}); give a file or folder.")
    return Path(os.path.expanduser(text))


def options_of(cls) -> list[Option]:
    """The declared options of a dataclass, in declaration order."""
    result = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        result.append(Option(f.name, f.type, default, f.metadata["spec"]))
    return result


def check_fields(obj) -> None:
    """Convert and range-check every declared field of a dataclass instance in place."""
    for opt in options_of(type(obj)):
        object.__setattr__(obj, opt.name, opt.check(getattr(obj, opt.name)))


def split_options(given: dict, *classes, what: str = "train") -> list[dict]:
    """Sort keyword arguments by the option class that declares them (by keyword), with
    a message for any unknown one."""
    owners = {
        o.keyword: (i, o.name)
        for i, cls in enumerate(classes)
        for o in options_of(cls)
        if o.spec.group != "internal"
    }
    parts: list[dict] = [{} for _ in classes]
    for key, value in given.items():
        if key not in owners:
            raise InputError(
                f"{what}() has no option {key!r}.{did_you_mean(key, owners)} The options are "
                "listed in docs/options.md."
            )
        i, name = owners[key]
        parts[i][name] = value
    return parts


def did_you_mean(key: str, names) -> str:
    """' Did you mean 'steps'?' for a mistyped option name, or ''."""
    close = difflib.get_close_matches(key, list(names), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def markdown_table(cls) -> str:
    """The options of ``cls`` as a Markdown table (docs/options.md is made from it)."""
    rows = [
        "| option | CLI | default | allowed | GUI | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for o in options_of(cls):
        if o.spec.group == "internal":
            continue
        cli = f"`{o.flag}`" if "cli" in o.spec.surfaces else "-"
        gui = (
            {"basic": o.label, "advanced": f"{o.label} (Advanced)"}.get(
                o.spec.group, "with the inputs"
            )
            if "gui" in o.spec.surfaces
            else "-"
        )
        rows.append(
            f"| `{o.keyword}` | {cli} | {o.default_text()} | {o.allowed_text()} | {gui} "
            f"| {o.spec.help} |"
        )
    return "\n".join(rows) + "\n"


def options_doc(*classes) -> str:
    """A docstring section listing the options of ``classes`` (appended to train's and
    predict's docstrings, so ``help()`` shows them)."""
    lines = ["", "Options (keyword arguments; see also docs/options.md):"]
    for cls in classes:
        for o in options_of(cls):
            if o.spec.group not in ("internal",):
                lines.append(f"    {o.keyword} ({o.default_text()}): {o.spec.help}.")
    return "\n".join(lines) + "\n"
