"""What the run report (workflows/run_report.py) adds to the end of a run: the demo's
recipe (`make demo`) on the demo's 768 x 768 simulated pair, or on the shared
phase-contrast -> DAPI field (13 planes as channels, 1024 x 1024), with a run folder.
The report's own seconds are measured inside it (``report_seconds`` in report.json);
the units scored and the files' sizes are printed with them.

    python benchmarks/run_report.py [--task demo|dapi] [--steps 400]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from napari_pix2pix.demo import DEMO_OPTIONS
from napari_pix2pix.engine.sample_data import make_pair
from napari_pix2pix.io.report_page import REPORT_JSON, REPORT_NAME
from napari_pix2pix.workflows.training import train

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "isl_phase_to_dapi"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("demo", "dapi"), default="demo")
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    if args.task == "demo":
        source, target = make_pair((768, 768), seed=0)[:2]
        axes = "YX"
    else:
        import tifffile

        source = tifffile.imread(SHARED / "phase_contrast_zstack.tif")
        target = tifffile.imread(SHARED / "dapi.tif")
        axes = "CYX"
    folder = Path(tempfile.mkdtemp(prefix="napari-pix2pix-report-")) / "run"
    began = time.perf_counter()
    train(
        source,
        target,
        axes=axes,
        target_axes="YX",
        steps=args.steps,
        val_every=max(1, args.steps // 4),
        device="cpu",
        seed=0,
        checkpoint_dir=folder,
        **DEMO_OPTIONS,
    )
    run = time.perf_counter() - began
    doc = json.loads((folder / REPORT_JSON).read_text(encoding="utf-8"))
    held = doc["held_out"]
    print(
        f"{args.task}: {args.steps} steps in {run:.0f} s; report {doc['report_seconds']:.2f} s "
        f"({held['units']} {held['unit']}s, side {held['tile_side']}); report.html "
        f"{(folder / REPORT_NAME).stat().st_size / 1e3:.0f} kB, report.json "
        f"{(folder / REPORT_JSON).stat().st_size / 1e3:.0f} kB; {folder}"
    )


if __name__ == "__main__":
    main()
