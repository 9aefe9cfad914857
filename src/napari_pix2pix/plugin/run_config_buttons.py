"""'Save config…' and 'Load config…' beside an options form's 'Restore defaults': the
form's options as one section of a run config (io/run_config.py, the file that
``napari-pix2pix train --config`` reads), and back. A run set up in the GUI can then
go on in a script or on a cluster, and a colleague's config fills the form."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from magicgui.widgets import PushButton
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QFileDialog, QWidget

from ..errors import Pix2PixError
from ..io.run_config import read_run_config, save_run_config
from .options_form import OptionsForm

FILTER = "Run config (*.yaml *.yml *.json)"


class RunConfigButtons:
    """The two buttons, added to ``form``'s button row. ``extra``: options the widget
    keeps outside the form, {keyword: (get, set)} (the Train widget's 'Start from
    model…'); ``say``: the widget's status line."""

    def __init__(
        self,
        owner: QWidget,
        form: OptionsForm,
        section: str,
        extra: dict[str, tuple[Callable, Callable]] | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.owner, self.form, self.section = owner, form, section
        self.extra, self.say = extra or {}, say
        self.save_button = PushButton(
            text="Save config…",
            tooltip=f"save these options as a run config (YAML or JSON): napari-pix2pix "
            f"{section} --config FILE runs with them; the file's other sections are kept",
        )
        self.load_button = PushButton(
            text="Load config…",
            tooltip="set the options from a run config (saved here, by --print-config or "
            "a run folder's run_config.yaml); options it leaves out take their defaults",
        )
        self.save_button.changed.connect(self._save_dialog)
        self.load_button.changed.connect(self._load_dialog)
        form.buttons.extend([self.save_button, self.load_button])

    def values(self) -> dict:
        """The options the form (and the extras) give, as the file holds them."""
        values = self.form.values()
        for key, (get, _) in self.extra.items():
            if get() is not None:
                values[key] = get()
        return values

    def save(self, path) -> Path:
        return save_run_config(path, self.section, self.values())

    def load(self, path) -> list[str]:
        """Set the form from the file's section, the options it leaves out at their
        defaults; returns the options the file sets that this widget does not show
        (axes go with the layers, resume with the Resume button)."""
        values = read_run_config(path, self.section)  # all checked before any is set
        self.form.restore_defaults()
        self.form.set_values(values)
        for key, (_, put) in self.extra.items():
            put(values.get(key))
        return [k for k in values if k not in self.form.fields and k not in self.extra]

    def _save_dialog(self, *_) -> None:
        path, _ = QFileDialog.getSaveFileName(self.owner, "Save run config", "run.yaml", FILTER)
        if not path:
            return
        try:
            saved = self.save(path)
        except (OSError, Pix2PixError) as exc:
            show_error(f"Could not save the run config: {exc}")
            self.say(f"Could not save the run config: {exc}")
            return
        show_info(f"Options saved to {saved}")
        self.say(f"Options saved to {saved}; napari-pix2pix {self.section} --config reads it.")

    def _load_dialog(self, *_) -> None:
        path, _ = QFileDialog.getOpenFileName(self.owner, "Load run config", "", FILTER)
        if not path:
            return
        try:
            unused = self.load(path)
        except (OSError, Pix2PixError) as exc:
            show_error(f"Could not load the run config: {exc}")
            self.say(f"Could not load the run config: {exc}")
            return
        note = f" Not set here: {', '.join(unused)}." if unused else ""
        self.say(f"Options loaded from {path}.{note}")
