"""Run configs: the options of ``napari-pix2pix train`` and ``predict`` in a YAML (or
JSON) file, read by ``--config`` (flags override it), printed by ``--print-config``,
saved and loaded by the Train widget, and written into every run folder as the run's
resolved options (``run_config.yaml``).

One file serves both commands, a section each (``train:``, ``predict:``): batch_size,
device, amp and axes mean different things to training and to prediction (crops per
step or tiles per call; amp "auto" or "off" by default), so a flat file could not say
which one it sets. Keys are the options' keywords (train's and predict's, the flags
without dashes), values in the library's units (``time_budget`` in seconds, as
``train(time_budget=...)`` takes it): a section is the keyword arguments of
``train``/``predict`` as they are. Every key is checked by its declaration
(options.py), so a file can say nothing that the flags could not."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import yaml

from .._version import __version__
from ..config import Pix2PixConfig
from ..engine.recipes import RECIPE_FIELDS
from ..errors import InputError, OutputError
from ..options import Option, did_you_mean, options_of
from ..run_options import PredictOptions, TrainingRun
from .output_paths import atomic_write, check_input_path

SECTIONS = {"train": (Pix2PixConfig, TrainingRun), "predict": (PredictOptions,)}
CONFIG_NAME = "run_config.yaml"  # a run's resolved options, in its run folder
SCHEMA_KEY = "$schema"  # where a JSON file (or an editor) names the schema; ignored
MAX_BYTES = 1 << 20  # a config is a few kB; anything larger is not one
# left out unless set, as the Train widget's "auto" boxes: the recipe (preset) chooses
# these, and the number of steps follows the time budget, so a default written into
# the file would change the run
CHOSEN = (*RECIPE_FIELDS, "steps")
RESOLVED_HEADER = "# napari-pix2pix resolved run config"


def section_options(section: str) -> list[Option]:
    """The options a section may set: those its command's flags set."""
    return [
        o
        for cls in SECTIONS[section]
        for o in options_of(cls)
        if o.spec.group != "internal" and "cli" in o.spec.surfaces
    ]


def left_to_library(option: Option) -> bool:
    """Whether the option's default is worked out by the library (the recipe, the
    image's axes) rather than the declared one, so a file leaves it out unless set."""
    return option.name in CHOSEN or (bool(option.spec.shown_default) and not option.optional)


def defaults(section: str) -> dict:
    """The section's defaults as a file holds them (those left to the library left out)."""
    return {o.keyword: o.default for o in section_options(section) if not left_to_library(o)}


# ------------------------------------------------------------------ reading
class _Loader(yaml.SafeLoader):
    """YAML as YAML 1.2 and JSON read it: PyYAML follows YAML 1.1, where ``amp: off``
    is the boolean false and ``lr: 1e-4`` is text. A key given twice is an error (the
    YAML spec says so; PyYAML would keep the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(  # after the integers: 64 stays an int, 1e-4 is a float
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def read_run_config(path, section: str | None = None) -> dict:
    """The checked options of a run config file: ``{section: {keyword: value}}``, or
    the one ``section`` (empty where the file has none). Values are converted as the
    options' checks convert them (a list to a tuple, a path to a Path). Anything a
    user can get wrong is an InputError naming the file, the key and the fix."""
    path = check_input_path(path, InputError, "run config")
    document = _parse(path)
    name = str(path)
    if document is None:  # an empty file sets nothing
        document = {}
    if not isinstance(document, dict):
        raise InputError(
            f"{name}: a run config holds sections (train:, predict:), not "
            f"{type(document).__name__}; print one with napari-pix2pix train --print-config."
        )
    checked = {}
    for key, options in document.items():
        if key == SCHEMA_KEY:
            continue
        if key not in SECTIONS:
            raise InputError(_not_a_section(name, key))
        checked[key] = _check_section(name, key, options)
    return checked if section is None else checked.get(section, {})


def _parse(path: Path):
    if path.stat().st_size > MAX_BYTES:
        raise InputError(
            f"{path} is {path.stat().st_size} bytes, too large for a run config (at most "
            f"{MAX_BYTES}); give the config file, not data."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a text file; give a YAML or JSON run config.") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=_one_each)
        except _GivenTwice as exc:
            raise InputError(f"{path}: {exc} given twice in one object; keep one.") from None
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg}); correct it there."
            ) from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(
            f"{path} is not valid YAML ({where}{problem}); correct it there (a valid "
            "config: napari-pix2pix train --print-config)."
        ) from None


def _one_each(pairs: list) -> dict:
    """A JSON object whose keys are each given once (json keeps the last silently)."""
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise _GivenTwice(", ".join(map(repr, twice)))
    return dict(pairs)


class _GivenTwice(ValueError):
    """Keys of one JSON object given more than once."""


def _not_a_section(name: str, key) -> str:
    owners = [s for s in SECTIONS if any(o.keyword == key for o in section_options(s))]
    if owners:
        return (
            f"{name}: {key!r} is an option, and options go under a section: indent it "
            f"under {' or '.join(f'{s}:' for s in owners)} (train and predict each have "
            "their own batch_size, device and amp, so a file says which it sets)."
        )
    return (
        f"{name}: {key!r} is not a section of a run config.{did_you_mean(str(key), SECTIONS)} "
        "The sections are train: and predict:."
    )


def _check_section(name: str, section: str, options) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        kind = type(options).__name__
        raise InputError(
            f"{name}: the {section} section must hold 'option: value' lines, not a {kind}."
        )
    declared = {o.keyword: o for o in section_options(section)}
    checked = {}
    for key, value in options.items():
        option = declared.get(key)
        if option is None:
            hint = did_you_mean(str(key), declared)
            raise InputError(
                f"{name}: the {section} section has no option {key!r}.{hint} "
                f"Correct or remove it; the options of {section} are listed in "
                "docs/options.md (and docs/run_config.schema.json)."
            )
        try:
            checked[key] = option.check(value)
        except InputError as exc:
            default = "" if left_to_library(option) else f" ({option.default_text()})"
            raise InputError(
                f"{name}, {section} section: {exc} Correct it in {name} (allowed: "
                f"{option.allowed_text()}), or remove the line for the default{default}."
            ) from None
    return checked


# ------------------------------------------------------------------ writing
def dump_run_config(sections: dict, json_format: bool = False, comments: bool = True) -> str:
    """A run config holding ``sections`` ({section: {keyword: value}}), loadable by
    ``read_run_config``. In YAML each option of a section is written in declaration
    order, with its help above it (``comments``); one not given is written commented
    out, with the default the library would take."""
    if json_format:
        return json.dumps({s: plain_value(v) for s, v in sections.items()}, indent=2) + "\n"
    lines = []
    for section, values in sections.items():
        lines.append(f"{section}:")
        for option in section_options(section):
            if comments:
                lines += textwrap.wrap(
                    help_text(option),
                    96,
                    initial_indent="  # ",
                    subsequent_indent="  #   ",
                    break_on_hyphens=False,
                )
            if option.keyword in values:
                lines.append("  " + _yaml_line(option.keyword, values[option.keyword]))
            else:
                example = _yaml_line(option.keyword, option.default)
                lines.append(f"  # {example}  (not set: {_not_set(option)})")
    return "\n".join(lines) + "\n"


def _not_set(option: Option) -> str:
    """What the library takes for an option a file leaves out."""
    if option.spec.shown_default:
        return option.spec.shown_default
    if option.name == "steps":
        return f"{option.default_text()}, or as many as time_budget allows"
    if option.name in CHOSEN:
        return "the preset chooses it; the value shown is the paper's"
    return option.default_text()


def help_text(option: Option) -> str:
    text = option.spec.help
    if option.spec.unit:
        text += f"; in {option.spec.unit}"
        if option.spec.human_unit:
            text += f" ({option.flag} and the GUI count {option.spec.human_unit[0]})"
    if option.optional and option.spec.none:
        text += f"; null: {option.spec.none}"
    return text


def _yaml_line(key: str, value) -> str:
    """``key: value`` on one line (a list in brackets), quoted where YAML needs it."""
    dumped = yaml.safe_dump(plain_value(value), default_flow_style=True, width=10**6)
    return f"{key}: {dumped.removesuffix('...' + chr(10)).strip()}"


def plain_value(value):
    """A value as YAML and JSON write it: tuples as lists, paths as text."""
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [plain_value(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def save_run_config(path, section: str, values: dict) -> Path:
    """Write ``values`` as the ``section`` of the run config at ``path`` (JSON for a
    .json name), keeping the other sections of the config there. A file there that is
    not a run config is never replaced."""
    path = Path(path)
    sections = {section: values}
    if path.exists():
        try:
            kept = read_run_config(path)
        except InputError as exc:
            raise OutputError(
                f"{path} was not replaced: it is not a run config napari-pix2pix can read "
                f"({exc}). Choose another name."
            ) from None
        sections = {**kept, section: values}
        sections = {s: sections[s] for s in SECTIONS if s in sections}
    text = dump_run_config(sections, json_format=path.suffix.lower() == ".json")
    return atomic_write(path, text.encode("utf-8"), replace=True)


def write_resolved_config(folder, values: dict) -> Path:
    """The options a training run goes with, every one explicit (the recipe's choices
    included), as ``run_config.yaml`` in its run folder. Replaced only where this
    wrote it (a resumed run's); a file of that name the user put there stays."""
    path = Path(folder) / CONFIG_NAME
    if path.exists() and not _is_resolved_config(path):
        raise OutputError(
            f"{path} exists and was not written by napari-pix2pix; it was left alone."
        )
    values = {
        k: v.absolute() if isinstance(v, Path) else v for k, v in values.items()
    }  # readable from anywhere, as the run folder is
    header = (
        f"{RESOLVED_HEADER} ({__version__}): every option this run trained with, the "
        "recipe's choices included.\n# Train the same way: napari-pix2pix train SOURCE "
        "TARGET -o MODEL --config THIS_FILE --checkpoint-dir NEW_FOLDER\n"
    )
    text = header + dump_run_config({"train": values}, comments=False)
    return atomic_write(path, text.encode("utf-8"), replace=True)


def _is_resolved_config(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().startswith(RESOLVED_HEADER)
    except (OSError, UnicodeDecodeError):
        return False
