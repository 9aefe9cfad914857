"""How training and prediction feel in napari: the Train widget's seconds per step
against the same training from Python in the same process, the Qt event loop's gaps
(p99 and largest) while training and predicting, and the viewer's idle CPU with both
widgets open.

Run under a display (the viewer needs OpenGL), alone on the machine:

    xvfb-run -a -s "-screen 0 1600x1200x24" python benchmarks/gui.py [--steps 120] [--repeats 3]

API and GUI runs alternate (``--repeats`` pairs), and each GUI run is compared with the
API run just before it; the median of those ratios is the GUI's cost, so a load that
comes and goes spreads the pairs rather than biasing them. The GUI thread's own CPU time
(a share of the run) and the process's CPU beyond the API run's (which counts Mesa's
rendering threads too) say where a cost comes from.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import napari_pix2pix as p2p
from napari_pix2pix.engine.sample_data import make_pair

RECIPE = dict(
    patch_size=64,
    depth=4,
    base_channels=16,
    disc_channels=16,
    batch_size=4,
    device="cpu",
    val_fraction=0.1,
    seed=0,
)
TICK_MS = 10


def api_seconds_per_step(pair, steps: int, val_every: int | None) -> tuple[float, float]:
    """Median seconds between steps of the core loop (first step left out), and the
    whole run's seconds from its first step to its end."""
    stamps = []
    for event in p2p.train_iter(*pair, axes="YX", steps=steps, val_every=val_every, **RECIPE):
        if isinstance(event, p2p.StepEvent):
            stamps.append(time.perf_counter())
    return float(np.median(np.diff(stamps[1:]))), time.perf_counter() - stamps[0]


class Ticks:
    """A QTimer every TICK_MS: the gaps between its ticks are how long the GUI froze."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.stamps: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.stamps.append(time.perf_counter()))

    def __enter__(self):
        self.stamps.clear()
        self.timer.start()
        return self

    def __exit__(self, *_) -> None:
        self.timer.stop()

    def gaps_ms(self) -> tuple[float, float]:
        gaps = np.diff(self.stamps) * 1000
        return float(np.percentile(gaps, 99)), float(gaps.max())


def wait(app, condition, timeout: float = 3600) -> None:
    """Poll for a condition (set-up only: polling competes with the worker)."""
    end = time.perf_counter() + timeout
    while not condition():
        app.processEvents()
        time.sleep(0.02)
        if time.perf_counter() > end:
            raise TimeoutError("the widget did not finish")


def run_until_finished(worker) -> None:
    """Qt's own event loop until ``worker`` finishes, as napari runs it: no polling of
    ours competes with the worker thread for the interpreter."""
    from qtpy.QtCore import QEventLoop

    loop = QEventLoop()
    worker.finished.connect(loop.quit)
    loop.exec()


def gui_run(app, viewer, train, ticks: Ticks) -> dict:
    """One run from the Train widget (its preview and live-view layers made anew, as in
    a session's first run): median s/step, the whole run's seconds, the GUI thread's
    CPU seconds and the process's."""
    for name in ("pix2pix preview", "pix2pix live view"):
        if name in viewer.layers:
            viewer.layers.remove(name)
    stamps: list[float] = []
    with ticks:
        cpu, process = time.thread_time(), time.process_time()
        train.controls["Start"].click()
        train.worker.yielded.connect(
            lambda e: stamps.append(time.perf_counter()) if isinstance(e, p2p.StepEvent) else None
        )
        run_until_finished(train.worker)
        run = time.perf_counter() - stamps[0]
        cpu, process = time.thread_time() - cpu, time.process_time() - process
    wait(app, lambda: train.worker is None)
    return dict(step=float(np.median(np.diff(stamps[1:]))), run=run, cpu=cpu, process=process)


def main() -> None:
    import napari
    from qtpy.QtCore import QEventLoop, QTimer
    from qtpy.QtWidgets import QApplication

    from napari_pix2pix.plugin.predict_widget import PredictWidget
    from napari_pix2pix.plugin.train_widget import TrainWidget

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument(
        "--repeats", type=int, default=3, help="API and GUI runs, interleaved, each this often"
    )
    parser.add_argument("--idle", type=float, default=15.0, help="seconds of idle viewer")
    parser.add_argument(
        "--val-every",
        type=int,
        default=None,
        help="steps between validations (default: a tenth of the steps, as a run does)",
    )
    args = parser.parse_args()
    pair = make_pair((256, 256), seed=0, nucleus_radius=5.0)

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    viewer.add_image(pair[0], name="source")
    viewer.add_image(pair[1], name="target")
    train = TrainWidget(viewer)
    viewer.window.add_dock_widget(train, name="Train")
    predict = PredictWidget(viewer)
    viewer.window.add_dock_widget(predict, name="Predict")
    for key, value in {**RECIPE, "steps": args.steps, "val_every": args.val_every}.items():
        train.form[key].value = value
    wait(app, lambda: train.planner.plan is not None, 120)

    rows, training_ticks, gaps = [], Ticks(), []
    for _ in range(args.repeats):  # interleaved: a load that comes and goes hits both
        process = time.process_time()
        step, run = api_seconds_per_step(pair, args.steps, args.val_every)
        api = dict(step=step, run=run, process=time.process_time() - process)
        rows.append((api, gui_run(app, viewer, train, training_ticks)))
        gaps.append(training_ticks.gaps_ms())

    stack = np.stack([pair[0]] * 8)
    viewer.add_image(stack, name="stack")
    predict.load(train.saved)
    predict.select_layer("stack")
    with Ticks() as predict_ticks:
        predict.controls["Predict"].click()
        run_until_finished(predict.worker)

    # the Train widget plans the next run (a few timed steps) once training ends: let it
    # finish, so that what follows is the viewer at rest
    wait(app, lambda: train.planner.plan is not None, 120)
    loop = QEventLoop()  # Qt's own idle loop, as napari runs it (no polling of ours)
    QTimer.singleShot(int(args.idle * 1000), loop.quit)
    cpu = time.process_time()
    loop.exec()
    idle_cpu = time.process_time() - cpu

    print(f"\n{args.steps} steps, validation every {args.val_every or 'tenth'}, {RECIPE}\n")
    print(
        "| pair | API s/step | GUI s/step | API run, s | GUI run, s | GUI / API run | "
        "GUI thread CPU, s (share of the run) | process CPU, GUI - API, s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for i, (api, gui) in enumerate(rows, 1):
        ratios.append(gui["run"] / api["run"])
        print(
            f"| {i} | {api['step']:.3f} | {gui['step']:.3f} | {api['run']:.1f} | "
            f"{gui['run']:.1f} | {ratios[-1]:.3f} | {gui['cpu']:.2f} "
            f"({gui['cpu'] / gui['run']:.1%}) | {gui['process'] - api['process']:+.1f} |"
        )
    print("\n| measure | value |")
    print("|---|---|")
    print(
        f"| added by the GUI to the whole run, median of the pairs | {np.median(ratios) - 1:+.1%} |"
    )
    p99 = max(g[0] for g in gaps)
    worst = max(g[1] for g in gaps)
    print(
        f"| event-loop gap while training, p99 / max over the runs (ms; timer {TICK_MS} ms) | "
        f"{p99:.0f} / {worst:.0f} |"
    )
    p99, worst = predict_ticks.gaps_ms()
    print(f"| event-loop gap while predicting, p99 / max (ms) | {p99:.0f} / {worst:.0f} |")
    print(f"| idle viewer, both widgets open: CPU s per {args.idle:.0f} s | {idle_cpu:.2f} |")
    viewer.close()


if __name__ == "__main__":
    main()
