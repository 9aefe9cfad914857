"""Regenerate docs/images/run_report.png: a run's report.html (workflows/run_report.py)
after the demo's recipe (`make demo`: 400 steps on the built-in 768 x 768 simulated
pair), with a run folder. The page is drawn by Qt's rich text (QTextBrowser), which
shows its SVG curves and PNG examples as a browser does; run it with a display, e.g.
`xvfb-run -a -s "-screen 0 1600x1200x24" python docs/make_report_screenshot.py`
(`... make_report_screenshot.py RUN_FOLDER`: the report of a run already made)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from qtpy.QtWidgets import QApplication, QTextBrowser

from napari_pix2pix.demo import DEMO_OPTIONS
from napari_pix2pix.engine.sample_data import make_pair
from napari_pix2pix.io.report_page import REPORT_NAME
from napari_pix2pix.workflows.training import train

OUT = Path(__file__).parent / "images" / "run_report.png"
WIDTH = 1320  # px: the four charts of a row side by side, as in a laptop's browser


def demo_run() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="napari-pix2pix-report-")) / "run"
    source, target = make_pair((768, 768), seed=0)[:2]
    options = dict(steps=400, val_every=100, device="cpu", seed=0, **DEMO_OPTIONS)
    train(source, target, axes="YX", checkpoint_dir=folder, **options)
    return folder


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else demo_run()
    app = QApplication.instance() or QApplication([])
    page = QTextBrowser()
    page.resize(WIDTH, 800)
    page.setHtml((folder / REPORT_NAME).read_text(encoding="utf-8"))
    page.show()
    app.processEvents()
    page.resize(WIDTH, int(page.document().size().height()) + 8)  # the whole page
    app.processEvents()
    page.grab().save(str(OUT))
    print(f"wrote {OUT} from {folder / REPORT_NAME}")


if __name__ == "__main__":
    main()
