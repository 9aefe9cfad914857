"""Regenerate the docs' viewer screenshot: the sample pair, both widgets docked, a short
training run and a prediction. Needs a display (e.g. `xvfb-run -a python docs/make_screenshots.py`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).parent / "images"


def wait(condition, timeout: float = 600.0) -> None:
    app = QApplication.instance()
    end = time.time() + timeout
    while not condition():
        app.processEvents()
        time.sleep(0.01)
        if time.time() > end:
            sys.exit("timed out")


def main(steps: int = 300) -> None:
    OUT.mkdir(exist_ok=True)
    viewer = napari.Viewer(title="napari-pix2pix")
    viewer.window.resize(1500, 1000)
    viewer.open_sample("napari-pix2pix", "paired_sample")
    _, train = viewer.window.add_plugin_dock_widget("napari-pix2pix", "Train")
    _, predict = viewer.window.add_plugin_dock_widget("napari-pix2pix", "Predict")
    for name, value in (("steps", steps), ("patch_size", 64), ("depth", 5), ("base_channels", 16),
                        ("batch_size", 4), ("disc_channels", 16), ("checkpoint_every", 0)):
        getattr(train, name).setValue(value)
    train.val_fraction.setValue(0.2)
    train.autosave.setText(str(OUT.parent / "_screenshot_run"))
    train.start_button.click()
    wait(lambda: train.worker is None)
    model_path = OUT.parent / "_screenshot_run" / "model.safetensors"
    predict.load(model_path)
    predict.select_layer("phase contrast (source)")
    predict.run_button.click()
    wait(lambda: predict.worker is None)
    viewer.layers["phase contrast (source)"].visible = False
    viewer.layers["pix2pix preview"].visible = False
    viewer.reset_view()
    QApplication.instance().processEvents()
    viewer.screenshot(str(OUT / "napari_train_predict.png"), canvas_only=False)
    print(f"wrote {OUT / 'napari_train_predict.png'}")
    viewer.close()


if __name__ == "__main__":
    main()
