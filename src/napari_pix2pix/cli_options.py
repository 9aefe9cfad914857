"""The command line's options, made from the declarations of train's and predict's
options (config.py, run_options.py): a flag, type, check and help per option, so the
CLI cannot drift from the API; and the run config file (--config, --print-config) that
holds the same options."""

from __future__ import annotations

import argparse

from .errors import InputError
from .io.run_config import defaults, dump_run_config, read_run_config
from .options import Option, options_of


def add_options(parser: argparse.ArgumentParser, cls, title: str) -> list[Option]:
    """One argument per declared option of ``cls`` that belongs on the command line.
    Options not given are left out, so the library's defaults apply."""
    group = parser.add_argument_group(title)
    added = []
    for o in options_of(cls):
        if o.spec.group == "internal" or "cli" not in o.spec.surfaces:
            continue
        kwargs: dict = {
            "dest": o.keyword,
            "default": argparse.SUPPRESS,
            "help": f"{o.spec.help} (default: {o.default_text()})",
        }
        if o.spec.human_unit:
            kwargs["help"] = f"in {o.spec.human_unit[0]}: " + kwargs["help"]
        kwargs["help"] = kwargs["help"].replace("%", "%%")  # argparse formats help with %
        item = {"int": int, "size": int, "float": float, "pair": float}.get(o.kind, str)
        if o.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _parse(o, item)
            kwargs["metavar"] = (o.spec.human_unit or (o.keyword,))[0].upper()
            if o.kind == "size":
                kwargs["nargs"] = "+"
            elif o.kind == "pair":
                kwargs["nargs"] = 2
            if o.spec.choices and not o.spec.open_choices:
                kwargs["choices"] = o.spec.choices
                del kwargs["metavar"]
        group.add_argument(o.flag, **kwargs)
        added.append(o)
    return added


def _parse(option: Option, convert):
    """The argparse type of an option's values: counts (integer options) are checked
    here, like argparse checks its own types; other values are checked by the library,
    which says what is wrong in its own words."""

    def parse(text: str):
        if option.optional and text.lower() == "none":
            return None
        value = convert(text)
        if convert is int and option.kind == "int":
            try:
                option.check(value)
            except InputError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from exc
        elif option.spec.human_unit:  # said in the unit typed, not the library's
            name, size = option.spec.human_unit
            try:
                option.check(option.from_human(value))
            except InputError:
                low, high = (
                    "any" if v is None else f"{v / size:g}"
                    for v in (option.spec.low, option.spec.high)
                )
                raise argparse.ArgumentTypeError(
                    f"{option.flag} is in {name}: give a number from {low} to {high}, got {text}"
                ) from None
        return value

    parse.__name__ = convert.__name__
    return parse


def given_options(args: argparse.Namespace, options: list[Option]) -> dict:
    """The options given on the command line, by keyword."""
    given = {}
    for o in options:
        if hasattr(args, o.keyword):
            value = getattr(args, o.keyword)
            value = value[0] if o.kind == "size" and len(value) == 1 else value
            given[o.keyword] = o.from_human(value)
    return given


def add_config_arguments(parser: argparse.ArgumentParser, section: str) -> None:
    """``--config FILE`` (the command's section of a run config; flags override it)
    and, for train, ``--print-config``."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"a run config (YAML or JSON) whose {section}: section gives options; flags "
        "override it (values in the library's units: time_budget in seconds)",
    )
    if section == "train":
        parser.add_argument(
            "--print-config",
            action="store_true",
            help="print the run config these arguments make (the defaults, --config's file "
            "and the flags; a train: and a predict: section) as YAML, loadable by --config, "
            "and exit",
        )


def config_options(args: argparse.Namespace, section: str) -> dict:
    """The options of ``section`` in the --config file (none without one)."""
    path = getattr(args, "config", None)
    return read_run_config(path, section) if path is not None else {}


def print_config(args: argparse.Namespace, options: dict) -> str:
    """What --print-config prints: train's options as given (``options``: the file's,
    then the flags) over the defaults, and predict's as the file gives them over theirs."""
    predict = config_options(args, "predict")
    return dump_run_config(
        {"train": {**defaults("train"), **options}, "predict": {**defaults("predict"), **predict}}
    )
