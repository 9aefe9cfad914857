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


def test_axis_values_have_three_significant_digits_and_fit_the_axis(qtbot):
    from napari_pix2pix.plugin.loss_plot import LossPlot, number_text

    assert [number_text(v) for v in (-0.0282144, 0.5, 2034.5, 123456.7, 0.000123, 1e-5)] == [
        "-0.0282",
        "0.5",
        "2030",
        "1.23e5",
        "1.23e-4",
        "1e-5",
    ]
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(380, 240)
    for step, l1 in ((1, 2.0e5), (2, 3.0e-3)):  # large and small losses: 0.001-1e6
        plot.add_losses(step, {"g_l1": l1, "g_gan": 0.7, "d_real": 0.6, "d_fake": 0.6})
    plot.add_metrics(2, {"mae": 900.0, "psnr": 21.0, "ssim": 0.4, "pearson_r": -0.0282144})
    plot.grab()
    metrics = plot.fontMetrics()
    ticks, width = plot.axis_values["validation"]
    assert ticks == ["1", "-0.0282"]  # read '2144' when cut
    assert all(metrics.horizontalAdvance(t) <= width for t in ticks)
    ticks, width = plot.axis_values["losses"]
    assert ticks == ["1e6", "0.001"]
    assert all(metrics.horizontalAdvance(t) <= width for t in ticks)


def test_legend_says_what_each_curve_is_with_its_formula_and_unit(qtbot):
    from qtpy.QtCore import QEvent, QPoint
    from qtpy.QtGui import QHelpEvent
    from qtpy.QtWidgets import QApplication, QToolTip

    from napari_pix2pix.plugin.loss_plot import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(440, 240)
    plot.show()
    plot.add_losses(1, {"g_l1": 0.25, "g_gan": 0.7, "d_real": 0.6, "d_fake": 0.65})
    plot.add_metrics(1, {"mae": 2034.5, "psnr": 21.04, "ssim": 0.4, "pearson_r": 0.107})
    plot.grab()
    texts = {e.key: e.text for e in plot.legend}
    assert texts == {
        "g_l1": "L1 (generator) 0.25",
        "g_gan": "adversarial (generator) 0.7",
        "d_real": "discriminator, real 0.6",
        "d_fake": "discriminator, fake 0.65",
        "ssim": "SSIM 0.4",
        "pearson_r": "Pearson r 0.107",
        "mae": "MAE 2030 target units",
        "psnr": "PSNR 21 dB",
    }
    boxes = [e.rect for e in plot.legend]  # each entry whole, none over another
    assert all(plot.rect().contains(b.toRect()) for b in boxes)
    assert not any(a.intersects(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    tips = {e.key: e.tip for e in plot.legend}
    assert "mean |G(x) − y| on the normalized target" in tips["g_l1"]
    assert "D(x, G(x)) as real" in tips["g_gan"] and "D(x, y) as real" in tips["d_real"]
    assert "D(x, G(x)) as fake" in tips["d_fake"] and "dB" in tips["psnr"]
    # hovering an entry shows its formula (Qt's tooltip event, as the mouse sends it)
    entry = next(e for e in plot.legend if e.key == "d_fake")
    at = entry.rect.center().toPoint()
    QApplication.sendEvent(plot, QHelpEvent(QEvent.Type.ToolTip, at, plot.mapToGlobal(at)))
    assert QToolTip.isVisible() and QToolTip.text() == tips["d_fake"]
    assert plot.tip_at(QPoint(2, 2)) == ""  # the title: no hover text
    # a target whose intensity unit is known: MAE in it
    plot.target_unit = "photons"
    plot.grab()
    mae = next(e for e in plot.legend if e.key == "mae")
    assert mae.text == "MAE 2030 photons" and "photons" in mae.tip
