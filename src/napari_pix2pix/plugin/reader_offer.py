"""Dropped TIFFs should just open, with their pixel size. napari asks which reader to
use whenever two plugins claim a file (its builtins and ours both claim ``*.tif``),
preselects the builtins, and those drop the physical scale. napari settles the choice
by the user's preference (``settings.plugins.extension2reader``), which a plugin must
not set behind the user's back; this line offers to set it, once, and says so. It
claims the formats of io/formats.py whose reader is installed."""

from __future__ import annotations

from magicgui.widgets import Container, Label, PushButton

from ..io.formats import napari_patterns
from . import PLUGIN
from .scrolling import wrap


def patterns() -> tuple[str, ...]:
    """What the offer claims: the patterns of the formats our reader can open here."""
    return napari_patterns(installed=True)


def reader_preferred() -> bool:
    from napari.settings import get_settings

    chosen = get_settings().plugins.extension2reader
    return all(chosen.get(p) == PLUGIN for p in patterns())


def prefer_our_reader() -> None:
    """Make napari open dropped TIFF, NIfTI, zarr, ... files with napari-pix2pix, no
    dialog (Preferences > Plugins lists it and takes it back)."""
    from napari.settings import get_settings

    plugins = get_settings().plugins
    plugins.extension2reader = {**plugins.extension2reader, **dict.fromkeys(patterns(), PLUGIN)}


class ReaderOffer(Container):
    """'Dropped TIFFs lose their pixel size … [Open them with napari-pix2pix] [Not now]':
    hidden once accepted, declined (remembered in ``settings``) or already set."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.text = Label(
            value="napari asks which reader opens a dropped TIFF, and its builtin one "
            "loses the pixel size. Open TIFF, NIfTI and zarr files with napari-pix2pix "
            "(no question, pixel size kept; Preferences > Plugins undoes it)?"
        )
        wrap(self.text.native)
        self.accept = PushButton(text="Open them with napari-pix2pix")
        self.decline = PushButton(text="Not now")
        buttons = Container(widgets=[self.accept, self.decline], layout="horizontal", labels=False)
        buttons.margins = (0, 0, 0, 0)
        super().__init__(widgets=[self.text, buttons], labels=False)
        self.margins = (0, 0, 0, 0)
        self.accept.changed.connect(self._accept)
        self.decline.changed.connect(self._decline)
        self.native.setHidden(reader_preferred() or settings.get("reader_offer_declined", False))

    @property
    def offered(self) -> bool:
        return not self.native.isHidden()

    def _accept(self, *_) -> None:
        prefer_our_reader()
        self.native.setHidden(True)

    def _decline(self, *_) -> None:
        self.settings.save({"reader_offer_declined": True})
        self.native.setHidden(True)
