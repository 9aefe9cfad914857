"""A form of value widgets made from option declarations (options.py): basic options in
view, advanced ones in a collapsible section. The widgets' kinds, ranges, steps, labels
and tooltips all come from the declarations, so a new option appears here by itself."""

from __future__ import annotations

import math

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    LineEdit,
    PushButton,
    SpinBox,
    TupleEdit,
    Widget,
)
from qtpy.QtWidgets import QVBoxLayout, QWidget
from superqt import QCollapsible

from ..options import Option, options_of

MAX_INT = 2**31 - 1
MAX_FLOAT = 1e6


class OptionField:
    """One option's widget: its value in the option's own terms. None is a tick box
    that hides the number beside it (an empty text for a folder). ``auto``: the label
    of a tick box meaning "not given" (the recipe chooses), for an option that has no
    None of its own."""

    def __init__(self, option: Option, auto: str | None = None) -> None:
        self.option, self.auto = option, auto
        self.editor = _editor(option)
        optional = (option.optional and option.kind != "path") or auto is not None
        self.none_box = CheckBox(text=auto or option.spec.none or "none") if optional else None
        if self.none_box is not None:
            self.none_box.changed.connect(self._show_editor)
            if option.spec.step and option.kind in ("int", "size"):
                self.suggest(int(option.spec.step))  # what unticking starts from
            self.widget: Widget = Container(
                widgets=[self.none_box, self.editor],
                layout="horizontal",
                labels=False,
                label=option.label,
            )
            self.widget.margins = (0, 0, 0, 0)
        else:
            self.widget = self.editor
        self.widget.tooltip = option.spec.help
        if auto is not None:
            self.widget.tooltip += f" (ticked: {auto})"
            self.editor.value = option.to_human(_single(option.default))
        self.value = None if auto is not None else option.default

    @property
    def value(self):
        if self.none_box is not None and self.none_box.value:
            return None
        value = self.editor.value
        if self.option.kind == "path":
            return value.strip() or None
        return tuple(value) if self.option.kind == "pair" else self.option.from_human(value)

    @value.setter
    def value(self, value) -> None:
        if self.none_box is not None:
            self.none_box.value = value is None
            self._show_editor(value is None)
        if value is None:
            if self.option.kind == "path":
                self.editor.value = ""
            return
        value = self.option.to_human(_single(value) if self.option.kind == "size" else value)
        self.editor.value = str(value) if self.option.kind == "path" else value

    def is_default(self) -> bool:
        value, default = self.value, None if self.auto else self.option.default
        if self.option.kind == "size" and value is not None and default is not None:
            return _single(value) == _single(default)
        if isinstance(value, float) and isinstance(default, (int, float)):
            return math.isclose(value, default, rel_tol=1e-6, abs_tol=1e-12)
        return value == default

    def suggest(self, number) -> None:
        """The number shown when None is unticked (None stays ticked)."""
        self.editor.value = number

    def _show_editor(self, none: bool) -> None:
        self.editor.enabled = not none
        self.editor.native.setHidden(none)

    @property
    def changed(self):
        return self.widget.changed


def _single(value):
    """A size's one side (the form shows square crops and tiles)."""
    return value[0] if isinstance(value, (tuple, list)) else value


def _editor(option: Option) -> Widget:
    s, kind = option.spec, option.kind
    common = {"label": option.label, "tooltip": s.help}
    if s.choices:
        return ComboBox(choices=list(s.choices), **common)
    if kind == "bool":
        return CheckBox(text=option.label, tooltip=s.help)
    if kind in ("int", "size"):
        low = int(s.low) if s.low is not None else 1
        high = int(min(s.high, MAX_INT)) if s.high is not None else MAX_INT
        return SpinBox(min=low, max=high, step=int(s.step or 1), **common)
    if kind == "float":
        step = s.step or 0.1
        low = (s.low + step if s.low_open else s.low) if s.low is not None else -MAX_FLOAT
        high = s.high if s.high is not None and math.isfinite(s.high) else MAX_FLOAT
        low, high = option.to_human(low), option.to_human(high)
        return FloatSpinBox(min=low, max=high - step if s.high_open else high, step=step, **common)
    if kind == "pair":
        step = s.step or 0.01
        low = s.low if s.low is not None else -MAX_FLOAT
        high = s.high if s.high is not None else MAX_FLOAT
        return TupleEdit(
            value=option.default,
            options={"min": low, "max": high - step if s.high_open else high, "step": step},
            **common,
        )
    return LineEdit(**common)


class OptionsForm(QWidget):
    """Fields for the options of ``classes`` (except those in ``exclude`` and those
    that go with the inputs or are filled in by the library). Fields named in
    ``auto`` start ticked "auto" and are left out of ``values()`` while ticked, so
    that the recipe chooses them as it does for a script that does not give them."""

    def __init__(self, *classes, exclude=(), auto=()) -> None:
        super().__init__()
        self.fields: dict[str, OptionField] = {}
        groups: dict[str, list] = {"basic": [], "advanced": []}
        for cls in classes:
            for o in options_of(cls):
                if o.spec.group in groups and "gui" in o.spec.surfaces and o.keyword not in exclude:
                    label = "auto" if o.keyword in auto else None
                    field = self.fields[o.keyword] = OptionField(o, label)
                    groups[o.spec.group].append(field.widget)
        self.basic = Container(widgets=groups["basic"])
        self.advanced = Container(widgets=groups["advanced"])
        self.advanced_keys = [k for k, f in self.fields.items() if f.widget in groups["advanced"]]
        self.collapsible = QCollapsible("Advanced")
        self.collapsible.addWidget(self.advanced.native)
        self.restore = PushButton(
            text="Restore defaults", tooltip="every option back to its default"
        )
        self.restore.changed.connect(self.restore_defaults)
        # a row a widget may add its own buttons to (the Train widget's config files)
        self.buttons = Container(widgets=[self.restore], layout="horizontal", labels=False)
        self.buttons.margins = (0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.basic.native)
        layout.addWidget(self.collapsible)
        layout.addWidget(self.buttons.native)

    def __getitem__(self, keyword: str) -> OptionField:
        return self.fields[keyword]

    def values(self, remembered: bool = False) -> dict:
        """The fields' values as keyword arguments of train/predict (``remembered``:
        with None for the ticked "auto" ones, as the settings keep them)."""
        values = {k: f.value for k, f in self.fields.items()}
        if remembered:
            return values
        return {k: v for k, v in values.items() if v is not None or not self.fields[k].auto}

    def set_values(self, values: dict) -> None:
        """Set the fields named in ``values``; a value an option refuses is skipped."""
        for key, value in values.items():
            field = self.fields.get(key)
            if field is None:
                continue
            if value is None and field.auto:
                field.value = None
                continue
            try:
                field.value = field.option.check(value)
            except (ValueError, TypeError):
                continue
        if self.changed_advanced():  # remembered settings are never hidden when closed
            self.collapsible.expand(animate=False)

    def changed_advanced(self) -> list[str]:
        """The advanced options whose value is not their default."""
        return [k for k in self.advanced_keys if not self.fields[k].is_default()]

    def restore_defaults(self, *_) -> None:
        for field in self.fields.values():
            field.value = None if field.auto else field.option.default

    def connect(self, callback) -> None:
        """Call ``callback`` whenever any field changes."""
        for field in self.fields.values():
            field.changed.connect(lambda *_: callback())
