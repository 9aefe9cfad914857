"""The Train widget's data: which (source, target) pairs train and which validate.

A form of its own, kept out of train_widget.py so that the widget stays a short map from
fields to ``train_iter``: a list of layer pairs (one row by default, rows added and
removed) or two folders whose files pair up by name; for validation, a fraction of the
training data (the form's option), a layer pair or two folders. It says, from shapes and
file names only (nothing is read), how many pairs and pixels will be used, or what is
wrong; ``train_iter`` does the real checks again when the run starts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton

from ..engine.alignment import PairShift, middle_plane, pair_shift
from ..engine.axes import check_axes
from ..engine.pairs import check_pair
from ..errors import Pix2PixError
from ..io.datasets import match_folders, open_lazy
from ..io.images import ImageData
from .layer_picker import Message, PairPicker
from .layers import layer_array, layer_image
from .thumbnails import pair_thumbnail, pixmap

FRACTION, LAYERS, FOLDERS = "fraction", "layers", "folders"
MODE_NAMES = {
    FRACTION: "the validation fraction (below)",
    LAYERS: "layer pairs",
    FOLDERS: "two folders (files paired by name)",
}
MAX_COUNTED_FILES = 200  # pixels of larger folders are not counted (each file is opened)


@dataclass
class Selection:
    """What a PairsChoice describes, as ``train_iter`` takes it: ``source``/``target``
    are arrays, lists of arrays or folder paths (None: no explicit pairs); ``axes`` None
    means "from the files". ``pixels`` is None when not counted; ``problem`` says why
    the selection cannot be used ('' when it can)."""

    source: object = None
    target: object = None
    axes: str | None = None
    target_axes: str | None = None
    pairs: int = 0
    pixels: int | None = None
    problem: str = ""


class FolderPair(Container):
    """A source folder and a target folder."""

    def __init__(self) -> None:
        tip = "files pair up by name (a.tif with a.tif or a.ome.tif)"
        self.source = FileEdit(mode="d", label="Source folder", tooltip=tip)
        self.target = FileEdit(mode="d", label="Target folder", tooltip=tip)
        super().__init__(widgets=[self.source, self.target])
        self.margins = (0, 0, 0, 0)

    def paths(self) -> tuple[str, str]:
        """The typed or chosen folders ('' when empty; FileEdit's value would be '.')."""
        return self.source.line_edit.value.strip(), self.target.line_edit.value.strip()


class PairRow(Container):
    """One layer pair of the list, with its thumbnail and Remove button."""

    def __init__(self, viewer, exclude: tuple[str, ...]) -> None:
        self.pair = PairPicker(viewer, exclude)
        self.thumbnail = Label(tooltip="the pair's middle planes: source | target")
        self.remove_button = PushButton(text="Remove pair", tooltip="remove this pair")
        super().__init__(widgets=[self.pair, self.thumbnail, self.remove_button], labels=False)
        self.margins = (0, 0, 0, 0)
        self.shown: tuple | None = None  # the key of the thumbnail shown

    def show_thumbnail(self, key: tuple | None, image) -> None:
        """Show ``image`` (uint8, or None for none) for the pair ``key``."""
        if key == self.shown:
            return
        self.shown = key
        if image is None:
            self.thumbnail.native.clear()
        else:
            self.thumbnail.native.setPixmap(pixmap(image))
        self.thumbnail.visible = image is not None


class PairsChoice(Container):
    """Pairs from layers or folders (and, when ``FRACTION`` is among ``modes``, none:
    the validation fraction applies). ``multiple``: rows can be added. Callbacks given
    to ``connect`` are called whenever the choice changes."""

    def __init__(
        self,
        viewer,
        label: str,
        modes: tuple[str, ...],
        multiple: bool,
        exclude: tuple[str, ...] = (),
    ) -> None:
        self.viewer, self.exclude = viewer, exclude
        self._callbacks: list = []
        self._counted: dict[tuple, int | None] = {}  # pixels of the folders' files
        # per layer pair (arrays and axes): its estimated misalignment and thumbnail
        self._looks: dict[tuple, tuple] = {}
        names = {**MODE_NAMES, **({} if multiple else {LAYERS: "a layer pair"})}
        self.mode = ComboBox(choices=[(names[m], m) for m in modes], value=modes[0], label=label)
        self.rows = Container(widgets=[], labels=False)
        self.rows.margins = (0, 0, 0, 0)
        self.add_button = PushButton(text="Add pair", tooltip="train on one more layer pair")
        self.folders = FolderPair()
        self.message = Message()
        super().__init__(
            widgets=[self.mode, self.rows, self.add_button, self.folders, self.message]
        )
        self.margins = (0, 0, 0, 0)
        self.multiple = multiple
        self.add_row()
        self.mode.changed.connect(self._show_mode)
        self.add_button.changed.connect(lambda *_: self.add_row())
        for edit in (self.folders.source, self.folders.target):
            edit.changed.connect(lambda *_: self.on_change())
        self._show_mode()

    def connect(self, callback) -> None:
        """Call ``callback`` whenever the choice changes."""
        self._callbacks.append(callback)

    def on_change(self) -> None:
        for callback in self._callbacks:
            callback()

    # ----------------------------------------------------------------- rows
    @property
    def pairs(self) -> list[PairPicker]:
        return [row.pair for row in self.rows]

    def add_row(self) -> PairPicker:
        """A new row, on the first two layers no other row uses (if there are two)."""
        used = [layer for p in self.pairs for layer in (p.source.value, p.target.value)]
        row = PairRow(self.viewer, self.exclude)
        pair = row.pair
        pair.reset_choices()
        free = [layer for layer in pair.source.choices() if all(layer != u for u in used)]
        if used and len(free) >= 2:
            pair.source.value, pair.target.value = free[:2]
        for picker in (pair.source, pair.target):
            picker.changed.connect(lambda *_: self.on_change())
            picker.axes.changed.connect(lambda *_: self.on_change())
        row.remove_button.changed.connect(lambda *_, r=row: self.remove_row(r))
        self.rows.append(row)
        self._show_remove_buttons()
        self.on_change()
        return pair

    def remove_row(self, row: PairRow | int) -> None:
        """Remove a row (or the row at that index); the last one stays."""
        if isinstance(row, int):
            row = self.rows[row]
        if len(self.rows) > 1:
            self.rows.remove(row)
            self._show_remove_buttons()
            self.on_change()

    def _show_remove_buttons(self) -> None:
        for row in self.rows:
            row.remove_button.visible = self.multiple and len(self.rows) > 1

    def _show_mode(self, *_) -> None:
        mode = self.mode.value
        self.rows.visible = mode == LAYERS
        self.add_button.visible = mode == LAYERS and self.multiple
        self.folders.visible = mode == FOLDERS
        self.on_change()

    def reset_choices(self, *_) -> None:
        for pair in self.pairs:
            pair.reset_choices()

    # ----------------------------------------------------------------- checks
    def selection(self, spatial_dims: int) -> Selection:
        """What is chosen, checked cheaply; problems are shown in the messages too."""
        mode = self.mode.value
        if mode == LAYERS:
            return self._layers(spatial_dims)  # messages per row, and one for them all
        for pair in self.pairs:
            pair.message.say("")
        found = self._folders() if mode == FOLDERS else Selection()
        self.message.say(found.problem)
        return found

    def _layers(self, dims: int) -> Selection:
        sources, targets, axes, problem, pixels = [], [], set(), "", 0
        for i, (row, pair) in enumerate(zip(self.rows, self.pairs)):
            message = _pair_problem(pair, dims)
            pair.message.say(message)
            if message:
                problem = problem or (f"pair {i + 1}: {message}" if len(self.rows) > 1 else message)
                row.show_thumbnail(None, None)
                continue
            src, tgt = pair.source.value, pair.target.value
            s_axes, t_axes = pair.source.axes_text(), pair.target.axes_text()
            sources.append(layer_array(src))
            targets.append(layer_array(tgt))
            axes.add((s_axes, t_axes))
            key = (id(sources[-1]), id(targets[-1]), s_axes, t_axes)
            alignment, thumbnail = self._look(key, sources[-1], s_axes, targets[-1], t_axes)
            row.show_thumbnail(key, thumbnail)
            pair.message.warn(
                _many_channels(sources[-1].shape, s_axes, targets[-1].shape, t_axes)
                or _misalignment(alignment)
            )
            pixels += _pixel_count(sources[-1].shape, s_axes)
        if not problem and len(axes) > 1:
            problem = "all layer pairs need the same axes (source -> target), not " + ", ".join(
                f"{s} -> {t}" for s, t in sorted(axes)
            )
            self.message.say(problem)
        else:
            self.message.say("")
        if problem:
            return Selection(problem=problem)
        (s_axes, t_axes) = axes.pop()
        layers = [(p.source.value, p.target.value) for p in self.pairs]
        sources = [layer_image(s, s_axes, a) for (s, _), a in zip(layers, sources)]
        targets = [layer_image(t, t_axes, a) for (_, t), a in zip(layers, targets)]
        single = len(sources) == 1
        return Selection(
            sources[0] if single else sources,
            targets[0] if single else targets,
            s_axes,
            t_axes,
            len(sources),
            pixels,
        )

    def _look(self, key: tuple, source, s_axes: str, target, t_axes: str) -> tuple:
        """(PairShift, thumbnail) of a layer pair, from its middle planes, read once per
        pair of arrays."""
        if key not in self._looks:
            try:
                planes = middle_plane(source, s_axes), middle_plane(target, t_axes)
                look = pair_shift(*planes), pair_thumbnail(*planes)
            except (ValueError, MemoryError):
                look = PairShift((0.0, 0.0), 0.0), None
            if len(self._looks) > 32:
                self._looks.clear()
            self._looks[key] = look
        return self._looks[key]

    def _folders(self) -> Selection:
        source, target = self.folders.paths()
        if not (source and target):
            return Selection(problem="Choose a source folder and a target folder.")
        try:
            matched = match_folders(Path(source).expanduser(), Path(target).expanduser())
        except (Pix2PixError, OSError) as exc:
            return Selection(problem=str(exc))
        key = (source, target, *matched)
        if key not in self._counted:
            self._counted = {key: _folder_pixels([s for s, _ in matched])}
        return Selection(source, target, None, None, len(matched), self._counted[key])


def _pair_problem(pair: PairPicker, dims: int) -> str:
    """Why a layer pair cannot be trained on ('' when it can): shapes and axes only."""
    src, tgt = pair.source.value, pair.target.value
    if src is None or tgt is None:
        return "Add or open two Image layers: a source and its aligned target."
    if src == tgt:
        return "Source and target are the same layer: choose the target image."
    try:
        s_shape, t_shape = layer_array(src).shape, layer_array(tgt).shape
        s_axes = check_axes(pair.source.axes_text(), len(s_shape), dims, "source")
        t_axes = check_axes(pair.target.axes_text(), len(t_shape), dims, "target")
        check_pair(s_shape, s_axes, t_shape, t_axes, dims)
    except Pix2PixError as exc:
        return str(exc)
    return ""


def _misalignment(found: PairShift) -> str:
    """A warning when a pair looks clearly shifted (``PairShift.warns``: by more than
    TOLERATED_SHIFT, and clearly better than no shift)."""
    if not found.warns:
        return ""
    dy, dx = found.shift
    return (
        f"Source and target look shifted by {dy:+.0f} px in Y and {dx:+.0f} px in X: "
        "pix2pix needs aligned pairs (misaligned ones give blurry results). Register "
        "them first, or check that these two images belong together."
    )


MANY_CHANNELS = 8  # more channels than this are more often planes given the axis C


def _many_channels(s_shape, s_axes: str, t_shape, t_axes: str) -> str:
    """A warning when an axis C is so long that it is more likely Z or T planes."""
    for shape, axes, side in ((s_shape, s_axes, "source"), (t_shape, t_axes, "target")):
        if "C" in axes and shape[axes.index("C")] > MANY_CHANNELS:
            n = shape[axes.index("C")]
            return (
                f"The {side} axes {axes} make a {n}-channel {side}: the model will "
                f"{'take' if side == 'source' else 'predict'} {n} channels at once. If "
                f"these are Z planes or time points, write Z or T instead of C."
            )
    return ""


def _pixel_count(shape, axes: str) -> int:
    """Pixels (voxels) of an image: every axis but C."""
    if len(axes) != len(shape):
        return math.prod(shape)
    return math.prod(n for a, n in zip(axes, shape) if a != "C")


def _folder_pixels(files: list[Path]) -> int | None:
    """The source files' pixels, from their headers; None for many or unreadable files."""
    if len(files) > MAX_COUNTED_FILES:
        return None
    total = 0
    try:
        for path in files:
            image = open_lazy(path, "source")
            total += _pixel_count(image.array.shape, image.axes)
    except (Pix2PixError, OSError, ValueError):
        return None
    return total


def shared(train: Selection, val: Selection) -> bool:
    """Whether a validation image is also a training image (the same layer data or
    the same folder)."""

    def items(images) -> list:
        return list(images) if isinstance(images, list) else [images]

    def data(image):
        return image.array if isinstance(image, ImageData) else image

    return any(
        data(v) is data(t) or (isinstance(v, str) and isinstance(t, str) and v == t)
        for side in ("source", "target")
        for v in items(getattr(val, side))
        for t in items(getattr(train, side))
    )


def describe(count: int, pixels: int | None) -> str:
    """'3 pairs, 1.2 Mpx'."""
    text = f"{count} pair{'s' if count != 1 else ''}"
    if pixels is None:
        return text
    if pixels >= 1e6:
        return f"{text}, {pixels / 1e6:.1f} Mpx"
    if pixels >= 1e3:
        return f"{text}, {pixels / 1e3:.0f} kpx"
    return f"{text}, {pixels} px"
