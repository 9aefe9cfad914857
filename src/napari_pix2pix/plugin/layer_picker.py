"""Choosing Image layers: magicgui combo boxes that hold the layer objects themselves,
so a choice survives renames and moves, with each layer's axes in an editable field."""

from __future__ import annotations

from magicgui.widgets import ComboBox, Container, Label, LineEdit
from napari.layers import Image

from .layers import layer_axes
from .scrolling import wrap

AXES_TIP = "axes letters: T, Z, C, Y, X (e.g. YX, CYX, ZYX)"


class LayerPicker(Container):
    """An Image layer of ``viewer`` and its axes. ``exclude``: layer names never offered
    (the training preview)."""

    def __init__(self, viewer, label: str, exclude: tuple[str, ...] = ()) -> None:
        self.viewer, self.exclude = viewer, exclude
        self.layer = ComboBox(
            choices=self._choices, nullable=False, tooltip=f"the {label} Image layer"
        )
        self.axes = LineEdit(tooltip=AXES_TIP)
        super().__init__(
            widgets=[self.layer, self.axes], layout="horizontal", labels=False, label=label
        )
        self.margins = (0, 0, 0, 0)
        self.layer.native.setMinimumContentsLength(12)
        self.layer.changed.connect(self._fill_axes)
        self._fill_axes()

    def _choices(self, _widget=None) -> list[tuple[str, Image]]:
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Image) and layer.name not in self.exclude
        ]

    @property
    def value(self) -> Image | None:
        return self.layer.value

    @value.setter
    def value(self, layer) -> None:
        """A layer object, or the name of one."""
        if isinstance(layer, str):
            layer = next((obj for name, obj in self._choices() if name == layer), None)
        self.layer.value = layer

    def choices(self) -> list[Image]:
        return [obj for _, obj in self._choices()]

    def reset_choices(self, *_) -> None:
        """Follow the layer list (napari calls this on every change, renames included).
        magicgui keeps a choice by its text, which a rename changes: the chosen layer
        object is put back, and the axes are refilled only when the layer changed."""
        before = self.layer.value
        with self.layer.changed.blocked():
            self.layer.reset_choices()
            if before is not None and any(layer == before for layer in self.choices()):
                self.layer.value = before
        if self.layer.value != before:
            self._fill_axes()
            self.layer.changed.emit(self.layer.value)

    def _fill_axes(self, *_) -> None:
        layer = self.layer.value
        self.axes.value = layer_axes(layer) if layer is not None else ""

    def axes_text(self) -> str:
        return self.axes.value.strip().upper()


class Message(Label):
    """A line that says what is wrong (in red) or nothing."""

    def __init__(self) -> None:
        super().__init__(value="")
        wrap(self.native)
        self.native.setHidden(True)

    def say(self, text: str, color: str = "#e05050") -> None:
        self.value = text
        self.native.setStyleSheet(f"color: {color};" if text else "")
        self.native.setHidden(not text)

    def warn(self, text: str) -> None:
        """Something worth a look that does not stop the run, in napari's warning colour."""
        self.say(text, warning_colour())


def warning_colour() -> str:
    """The warning colour of napari's theme (the dark one where the theme is the
    system's or a plugin's that is not installed)."""
    from napari.settings import get_settings
    from napari.utils.theme import get_theme, is_theme_available

    name = get_settings().appearance.theme
    return get_theme(name if is_theme_available(name) else "dark").warning.as_hex()


class PairPicker(Container):
    """The source and target layers of a training pair, with a line saying why they
    cannot be trained on, when they cannot."""

    def __init__(self, viewer, exclude: tuple[str, ...] = ()) -> None:
        self.source = LayerPicker(viewer, "Source / axes", exclude)
        self.target = LayerPicker(viewer, "Target / axes", exclude)
        self.message = Message()
        super().__init__(widgets=[self.source, self.target, self.message])
        self.margins = (0, 0, 0, 0)

    def reset_choices(self, *_) -> None:
        """Follow the layer list; after a change of the list the target is never the
        source itself while there is another layer to choose."""
        self.source.reset_choices()
        self.target.reset_choices()
        if self.target.value is not None and self.target.value == self.source.value:
            others = [layer for layer in self.target.choices() if layer != self.source.value]
            if others:
                self.target.value = others[0]
