"""What the widgets remember between napari sessions: one store (Qt's settings), one
section per widget, values kept as JSON so that numbers stay numbers."""

from __future__ import annotations

import json

from qtpy.QtCore import QSettings


class WidgetSettings:
    """The remembered values of one widget (``section``: "train", "predict")."""

    def __init__(self, section: str) -> None:
        self.section = section

    @staticmethod
    def _store() -> QSettings:
        return QSettings("napari-pix2pix", "napari-pix2pix")

    def load(self) -> dict:
        store = self._store()
        store.beginGroup(self.section)
        values = {}
        for key in store.childKeys():
            try:
                values[key] = json.loads(store.value(key))
            except (TypeError, ValueError):
                continue  # written by an older version, or by hand
        store.endGroup()
        return values

    def save(self, values: dict) -> None:
        store = self._store()
        for key, value in values.items():
            store.setValue(f"{self.section}/{key}", json.dumps(value, default=str))
        store.sync()

    def get(self, key: str, default=None):
        return self.load().get(key, default)
