"""The Train widget's plot shows real values: losses on a labelled log axis, SSIM and
Pearson r on a fixed 0-1 axis (not each stretched to its own range), the previous run."""

import math

import numpy as np


def test_axes_are_fixed_and_labelled_and_the_previous_run_stays(qtbot):
    from napari_pix2pix.plugin.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(420, 200)
    for step in range(1, 51):
        plot.add_losses(step, {"g_l1": 0.5 / step, "g_gan": 0.7, "d_real": 0.6, "d_fake": 0.6})
    plot.add_metrics(25, {"mae": 900.0, "psnr": 21.0, "ssim": 0.4, "pearson_r": 0.107})
    plot.add_metrics(50, {"mae": 800.0, "psnr": 22.0, "ssim": 0.5, "pearson_r": 0.2})
    plot.mark_best(50)
    # r 0.107-0.2 is drawn low on a 0-1 axis, not stretched to the top of the plot
    assert plot.metric_range() == (0.0, 1.0)
    lo, hi = plot.loss_range()
    assert lo == 0.01 and hi == 1.0  # 0.01 <= every loss <= 1, on powers of ten
    image = plot.grab().toImage()  # paints without error
    assert image.width() == 420
    plot.clear()  # a new run
    assert plot.point_count() == 0 and plot.previous.steps[-1] == 50
    plot.add_metrics(10, {"mae": 1.0, "psnr": 1.0, "ssim": 0.1, "pearson_r": -0.3})
    assert plot.metric_range() == (-0.3, 1.0)
    plot.grab()
    assert math.isclose(np.mean(plot.previous.metrics["pearson_r"]), 0.1535)
