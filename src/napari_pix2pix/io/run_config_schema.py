"""The JSON Schema of run configs (run_config.py), made from the option declarations
(options.py: kind, bounds, choices, help, default), so editors can complete and check a
config as it is typed. docs/make_options.py ships it as docs/run_config.schema.json.
The schema says what each option alone allows; what options allow together (a patch
side that 2**depth divides) is checked when a run starts, as for train's keywords."""

from __future__ import annotations

import math

from ..options import MAX_ITEMS, Option
from .run_config import (
    SCHEMA_KEY,
    SECTIONS,
    help_text,
    left_to_library,
    plain_value,
    section_options,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
MAX_TEXT = 64  # longest text option (options.py's check)


def run_config_schema() -> dict:
    """The schema of a whole run config: a section per command, nothing else."""
    properties: dict = {SCHEMA_KEY: {"type": "string", "description": "this schema"}}
    for section in SECTIONS:
        properties[section] = {
            "type": ["object", "null"],
            "description": f"options of napari-pix2pix {section} (keywords of {section}())",
            "properties": {o.keyword: option_schema(o) for o in section_options(section)},
            "additionalProperties": False,
        }
    return {
        "$schema": DRAFT,
        "title": "napari-pix2pix run config",
        "description": "napari-pix2pix train/predict --config FILE; generated from the "
        "option declarations by docs/make_options.py",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


def option_schema(option: Option) -> dict:
    """What one option allows, with its help and default."""
    schema = _value_schema(option)
    if option.optional:
        schema = {"anyOf": [schema, {"type": "null"}]}
    schema["description"] = help_text(option)
    if not left_to_library(option):
        schema["default"] = plain_value(option.default)
    return schema


def _value_schema(option: Option) -> dict:
    s, kind = option.spec, option.kind
    if kind == "bool":
        return {"type": "boolean"}
    if kind == "path":
        return {"type": "string", "pattern": r"\S"}  # a blank path is refused
    if kind == "str":
        schema = {"type": "string", "maxLength": MAX_TEXT}
        if s.choices:
            key = "examples" if s.open_choices else "enum"
            schema[key] = list(s.choices)
        return schema
    number = _number_schema(option, "integer" if kind in ("int", "size") else "number")
    if kind in ("int", "float"):
        return number
    if kind == "size":  # one side for all, or one per spatial axis
        sides = {"type": "array", "items": number, "minItems": 1, "maxItems": MAX_ITEMS}
        return {"anyOf": [number, sides]}
    if kind == "pair":
        return {"type": "array", "items": number, "minItems": 2, "maxItems": 2}
    return {"type": "array", "items": number, "maxItems": MAX_ITEMS}  # floats


def _number_schema(option: Option, kind: str) -> dict:
    s = option.spec
    schema: dict = {"type": kind}
    if s.choices:
        schema["enum"] = list(s.choices)
    if s.low is not None:
        schema["exclusiveMinimum" if s.low_open else "minimum"] = _bound(s.low)
    if s.high is not None and math.isfinite(s.high):
        schema["exclusiveMaximum" if s.high_open else "maximum"] = _bound(s.high)
    return schema


def _bound(value: float):
    return int(value) if float(value).is_integer() else value
