"""The run report's page and numbers file (io/report_page.py), rendered from a
hand-built report: self-contained, readable without Python, replacing only our own."""

import base64
import io
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from napari_pix2pix.engine.validation_examples import Example
from napari_pix2pix.errors import OutputError
from napari_pix2pix.io.report_page import REPORT_JSON, REPORT_NAME, svg_chart, write_report


def score(mean, low, high):
    return {"mean": mean, "low": low, "high": high, "units": 16}


def a_report():
    scores = {
        "model": {
            "mae": score(0.08, 0.07, 0.09),
            "psnr": score(31.5, 31.4, 31.6),
            "ssim": score(0.9, 0.88, 0.92),
            "pearson_r": score(0.95, 0.94, 0.96),
        },
        "constant mean": {
            "mae": score(0.78, 0.7, 0.8),
            "psnr": score(12.3, 12.0, 12.5),
            "ssim": score(0.02, 0.01, 0.03),
            "pearson_r": score(0.0, 0.0, 0.0),
        },
        "rescaled source": {
            "mae": score(0.24, 0.23, 0.25),
            "psnr": score(22.0, 21.9, 22.1),
            "ssim": score(float("nan"), None, None),
            "pearson_r": score(0.5, 0.4, 0.6),
        },
    }
    held = dict(unit="tile", units=16, images=1, tile_side=32, confidence=0.95, resamples=1000)
    losses = {"step": [1, 2, 3, 4], "g_l1": [0.4, 0.3, 0.2, 0.1], "g_gan": [0.7, 0.7, 0.6, 0.8]}
    return {
        "run_folder": "/runs/a & <b>",
        "time": "2026-12-07T21:00:00+0000",
        "card": ["1 -> 1 channel(s), YX -> YX, 2D", "Trained: 4 steps"],
        "kept_step": 3,
        "held_out": {**held, "scores": scores},
        "curves": {
            "losses": losses,
            "validation": [{"step": 2, "mae": 0.1, "psnr": 25.0}, {"step": 4, "mae": 0.09}],
        },
    }


def examples():
    ramp = np.linspace(0, 1, 40 * 30, dtype=np.float32).reshape(40, 30)
    kept = Example(3, ramp * 5, ramp + 0.1, ramp)
    return [("kept model (step 3)", kept), ("last validation (step 4)", kept)]


def test_the_page_is_self_contained_with_its_scores_curves_and_examples(tmp_path):
    path = write_report(tmp_path, a_report(), examples())
    assert path == tmp_path / REPORT_NAME
    page = path.read_text(encoding="utf-8")
    assert "<script" not in page and 'src="http' not in page  # no network, no JS
    assert "/runs/a &amp; &lt;b&gt;" in page  # text is escaped
    # the scores against both baselines, intervals in brackets, the best in bold
    assert "0.08 [0.07, 0.09]" in page and "0.78 [0.7, 0.8]" in page
    assert "<td class=best>31.5 [31.4, 31.6]</td>" in page
    assert "16 tiles of about 32 px" in page and "Trained: 4 steps" in page
    urls = re.findall(r'src="data:([^;]+);base64,([^"]+)"', page)
    charts = [base64.b64decode(d) for kind, d in urls if kind == "image/svg+xml"]
    pngs = [Image.open(io.BytesIO(base64.b64decode(d))) for kind, d in urls if kind == "image/png"]
    assert len(charts) == 2 + 4  # two loss terms, four validation metrics
    for chart in charts:
        ET.fromstring(chart)  # well-formed SVG
    assert b"L1 (generator)" in charts[0] and b"stroke-dasharray" in charts[0]  # kept step
    assert len(pngs) == 2 * 4  # source | prediction | target | difference, twice
    assert {p.size for p in pngs} == {(30, 40)}
    assert 'width="180" height="240"' in page  # small crops shown enlarged (x6)
    assert pngs[3].mode == "RGB" and pngs[0].mode == "L"
    difference = np.asarray(pngs[3])
    assert difference[..., 0].mean() > difference[..., 2].mean()  # above the target: red


def test_the_numbers_file_holds_the_scores_as_json_without_nan(tmp_path):
    write_report(tmp_path, a_report(), [])
    document = json.loads((tmp_path / REPORT_JSON).read_text(encoding="utf-8"))
    assert document["written_by"] == "napari-pix2pix run report"
    ssim = document["held_out"]["scores"]["rescaled source"]["ssim"]
    assert ssim == {"mean": None, "low": None, "high": None, "units": 16}
    assert document["curves"]["losses"]["g_l1"] == [0.4, 0.3, 0.2, 0.1]
    page = (tmp_path / REPORT_NAME).read_text(encoding="utf-8")
    assert "no validation examples" in page


def test_a_report_replaces_only_a_report(tmp_path):
    write_report(tmp_path, a_report(), [])
    again = {**a_report(), "card": ["a second run segment"]}
    write_report(tmp_path, again, [])  # a resumed run's report replaces the first
    assert "a second run segment" in (tmp_path / REPORT_NAME).read_text(encoding="utf-8")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / REPORT_JSON).write_text('{"my": "numbers"}')
    (mine / REPORT_NAME).write_text("<html>my own page</html>")
    with pytest.raises(OutputError, match="left alone"):
        write_report(mine, a_report(), [])
    assert (mine / REPORT_JSON).read_text() == '{"my": "numbers"}'
    assert (mine / REPORT_NAME).read_text() == "<html>my own page</html>"
    assert len(list(mine.glob("report-*.json"))) == 1  # ours went beside it


def test_a_chart_without_values_says_so_and_a_flat_one_still_draws():
    assert "no values" in svg_chart("SSIM", [1, 2], [float("nan"), None])
    flat = svg_chart("r", [1, 2, 3], [0.5, 0.5, 0.5])
    ET.fromstring(flat)
    assert "<polyline" in flat
