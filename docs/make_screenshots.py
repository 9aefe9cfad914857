"""Regenerate the docs' viewer screenshots: the README picture and the four steps of the
user guide (pair loaded, training, a predicted stack, the confidence layer, Evaluate). Uses the
built-in simulated sample, so it runs anywhere with a display, e.g.
`xvfb-run -a -s "-screen 0 1600x1200x24" python docs/make_screenshots.py`
(`... make_screenshots.py ood`: only the input warning's, ood_warning.png).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

# start from the widgets' defaults, whatever this user's saved napari-pix2pix settings are
# (both widgets remember their options in Qt's settings, which live under this folder)
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="napari-pix2pix-screenshots-")

import napari
from qtpy.QtWidgets import QApplication

from napari_pix2pix.engine.sample_data import make_pair, make_stack

OUT = Path(__file__).parent / "images"


def wait(condition, timeout: float = 900.0) -> None:
    app = QApplication.instance()
    end = time.time() + timeout
    while not condition():
        app.processEvents()
        time.sleep(0.01)
        if time.time() > end:
            sys.exit("timed out")


def settle(seconds: float = 0.5) -> None:
    """Layouts settle over a few rounds of events."""
    end = time.time() + seconds
    while time.time() < end:
        QApplication.instance().processEvents()
        time.sleep(0.02)


def shot(viewer, name: str) -> None:
    viewer.reset_view()
    settle()
    viewer.screenshot(str(OUT / name), canvas_only=False)
    print(f"wrote {OUT / name}")


def grid(viewer, enabled: bool) -> None:
    """Layers side by side, or on top of each other (napari 0.9 moved the grid to
    ``viewer.canvas``)."""
    owner = viewer.canvas if hasattr(viewer, "canvas") else viewer
    owner.grid.enabled = enabled


def show_only(viewer, *names: str) -> None:
    for layer in viewer.layers:
        layer.visible = layer.name in names


def main(steps: int = 300) -> None:
    OUT.mkdir(exist_ok=True)
    viewer = napari.Viewer(title="napari-pix2pix")
    viewer.window.resize(1500, 1000)
    viewer.open_sample("napari-pix2pix", "paired_sample")
    # both widgets docked as a user opens them from the Plugins menu: tabs of one dock
    train_dock, train = viewer.window.add_plugin_dock_widget("napari-pix2pix", "pix2pix: Train")
    viewer.window.add_plugin_dock_widget("napari-pix2pix", "pix2pix: Predict")
    settle(0.2)  # the second joins the first as a tab, in front
    train_dock.raise_()  # Train's tab clicked
    # the form's fields are made from the option declarations, one per keyword of train()
    # crops and depth are left to the recipe ("auto"); the width is set, to show both
    for keyword, value in (
        ("steps", steps),
        ("base_channels", 16),
        ("batch_size", 4),
        ("val_fraction", 0.2),
        ("checkpoint_dir", tempfile.mkdtemp(prefix="napari-pix2pix-screenshot-run-")),
    ):
        train.form[keyword].value = value
    grid(viewer, True)
    wait(lambda: train.planner.plan is not None)  # the recipe line, before Start
    shot(viewer, "guide_1_pair.png")

    train.controls["Start"].click()
    wait(lambda: train.worker is None)
    grid(viewer, False)
    show_only(viewer, "phase contrast (source)", "pix2pix live view")  # the model over the view
    shot(viewer, "guide_2_training.png")

    predict = train.use_in_predict()  # the model just trained, the source chosen, in front
    predict.controls["Predict"].click()
    wait(lambda: predict.worker is None)
    show_only(viewer, "phase contrast (source) [pix2pix]", "nuclei fluorescence (target)")
    grid(viewer, True)
    shot(viewer, "napari_train_predict.png")  # the README picture

    stack, _ = make_stack(n_slices=5, shape=(256, 256), seed=40)
    viewer.add_image(stack, name="unseen stack", scale=(2.0, 1.0, 1.0))
    predict.select_layer("unseen stack")
    predict.form["uncertainty"].value = True  # the Confidence map box
    predict.controls["Predict"].click()
    wait(lambda: predict.worker is None)
    show_only(viewer, "unseen stack", "unseen stack [pix2pix]")
    viewer.dims.set_current_step(0, 2)
    shot(viewer, "guide_3_predict_stack.png")
    show_only(viewer, "unseen stack [pix2pix]", "unseen stack [pix2pix expected error]")
    shot(viewer, "guide_4_confidence.png")

    phase, dapi = make_pair((256, 256), seed=41, nucleus_radius=6.0)
    viewer.add_image(phase, name="held-out phase")
    viewer.add_image(dapi, name="held-out DAPI")
    predict.form["uncertainty"].value = False
    predict.select_layer("held-out phase")
    predict.evaluation.target.value = "held-out DAPI"
    predict.evaluation.button.native.click()
    wait(lambda: predict.worker is None)
    show_only(
        viewer, "held-out DAPI", "held-out phase [pix2pix]", "held-out phase [pix2pix - target]"
    )
    grid(viewer, True)
    shot(viewer, "guide_5_evaluate.png")
    viewer.close()


def ood_warning(steps: int = 200) -> None:
    """The Predict widget's warning for an input unlike the training data: a model
    trained briefly on the sample's phase contrast, given an unseen field at twice the
    brightness (``python docs/make_screenshots.py ood`` makes only this one)."""
    import napari_pix2pix as p2p

    source, target = make_pair((256, 256), seed=0)
    model = p2p.train(
        source, target, steps=steps, patch_size=64, depth=4, base_channels=8, device="cpu"
    )
    path = Path(tempfile.mkdtemp(prefix="napari-pix2pix-screenshot-ood-")) / "m.safetensors"
    model.save(path)
    viewer = napari.Viewer(title="napari-pix2pix")
    viewer.window.resize(1500, 1000)
    unseen, _ = make_pair((256, 256), seed=42)
    viewer.add_image(unseen.astype("float32") * 2, name="unseen phase, 2x brighter")
    _, predict = viewer.window.add_plugin_dock_widget("napari-pix2pix", "pix2pix: Predict")
    predict.load(path)
    predict.select_layer("unseen phase, 2x brighter")
    predict.controls["Predict"].click()
    wait(lambda: predict.worker is None)
    show_only(viewer, "unseen phase, 2x brighter", "unseen phase, 2x brighter [pix2pix]")
    grid(viewer, True)
    shot(viewer, "ood_warning.png")
    viewer.close()


if __name__ == "__main__":
    ood_warning() if sys.argv[1:] == ["ood"] else main()
