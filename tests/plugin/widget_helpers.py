"""Helpers for driving the widgets in tests."""

from tiny_options import TINY

TINY_FIELDS = {**TINY, "checkpoint_every": None}


def set_fields(widget, steps, **extra):
    fields = {**TINY_FIELDS, "gan_mode": "vanilla", **extra, "steps": steps}
    for key, value in fields.items():
        widget.form[key].value = value
