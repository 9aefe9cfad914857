"""How far off is it? The error map's calibration measured on held-out data of the four
validation tasks (benchmarks/tasks.py: synthetic, dapi, mr2d, mr3d).

For each task a small network (the one of benchmarks/defaults.py: 2D 64 px patches,
depth 4, width 16; 3D 32 px, depth 3, width 8; fixed steps, seed 0, CPU) is trained on
the task's training part by ``p2p.train`` with the defaults (10 % validation: the
right strip of a field, the last slices of a stack). The calibration is the one training
stores in the model (engine/error_calibration.py: spread over the 8 flips/rotations ->
expected absolute error, fitted on the central half of the rows (slices) of the run's
validation part); a model cached before training stored one is calibrated here by the
same function on the same validation part.

On the task's HELD-OUT part (never seen by training nor by the calibration) the plain
prediction, its spread and its expected error are computed (``p2p.predict(...,
uncertainty=True)``) and compared with the observed absolute error |prediction - target|:

- a reliability table: equal-count bins of the expected error, per bin the mean expected
  and the mean observed error (target units) and the pixels;
- overall: the calibration error (pixel-weighted mean |expected - observed| over the
  bins) relative to the mean observed error and to the target's std; the mean expected
  over the mean observed error (1 = unbiased overall); Pearson r of expected and
  observed per pixel; and the same calibration error for the raw spread read as if it
  were an error (what the map showed before).

Models are cached under /tmp/issue26_models/<task>_errmap.safetensors, results under
--out; a rerun only computes what is missing.

    export NILEARN_DATA=/tmp/nl/nilearn/datasets/data
    python benchmarks/error_map.py --tasks synthetic,dapi --threads 1 &
    python benchmarks/error_map.py --tasks mr2d,mr3d --threads 1
    python benchmarks/error_map.py --table     # the cached results as markdown
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import napari_pix2pix as p2p
from napari_pix2pix.engine.error_calibration import ErrorCalibration, calibrate, reliability
from napari_pix2pix.engine.inference import make_predictor
from napari_pix2pix.engine.metrics import pearson_r
from napari_pix2pix.run_options import PredictOptions
from napari_pix2pix.workflows.training_data import prepare_data

sys.path.insert(0, str(Path(__file__).parent))
import tasks as task_data
from defaults import NETWORK

MODELS = Path("/tmp/issue26_models")
STEPS = {"synthetic": 600, "dapi": 600, "mr2d": 600, "mr3d": 400}


def trained(task: task_data.Task, steps: int) -> tuple[p2p.Pix2PixModel, float]:
    """The task's model (cached) and the minutes its training took (0 when cached)."""
    path = MODELS / f"{task.name}_errmap_{steps}.safetensors"
    if path.exists():
        return p2p.load_model(path, device="cpu"), 0.0
    began = time.perf_counter()
    model = task.train(steps=steps, **NETWORK[task.spatial_dims])
    minutes = (time.perf_counter() - began) / 60
    MODELS.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model, minutes


def calibration_of(model, task: task_data.Task) -> tuple[ErrorCalibration, str]:
    """The model's own calibration, else the same fit on the run's validation part."""
    if model.error_calibration:
        return ErrorCalibration.from_dict(
            model.error_calibration, model.config.out_channels
        ), "stored by train"
    _, split, _ = prepare_data(
        task.train_source, task.train_target, task.axes, task.target_axes, model.config, None
    )
    predictor = make_predictor(model, PredictOptions(device="cpu"))
    return calibrate(predictor, split.val, split.val_context), "fitted here"


def run(task: task_data.Task, steps: int) -> dict:
    model, minutes = trained(task, steps)
    cal, origin = calibration_of(model, task)
    model.error_calibration = None  # the raw spread, mapped here
    began = time.perf_counter()
    with warnings.catch_warnings():  # the raw spread, asked for: not a surprise here
        warnings.filterwarnings("ignore", "this model has no error calibration")
        pred, spread, axes = p2p.predict(
            model,
            task.test_source,
            axes=task.axes,
            uncertainty=True,
            return_axes=True,
            device="cpu",
        )
    seconds = time.perf_counter() - began
    expected = cal.expected_error(spread, axes.index("C") if "C" in axes else None)
    observed = np.abs(pred - task.test_target.astype(np.float32))
    rows = reliability(expected, observed)
    raw = reliability(spread, observed)
    n = sum(r["n"] for r in rows)
    gap = sum(r["n"] * abs(r["expected"] - r["observed"]) for r in rows) / n
    raw_gap = sum(r["n"] * abs(r["expected"] - r["observed"]) for r in raw) / n
    mean_observed = float(observed.mean())
    return {
        "task": task.name,
        "about": task.about,
        "steps": steps,
        "train_minutes": minutes,
        "predict_seconds": seconds,
        "calibration": origin,
        "calibration_pixels": cal.pixels,
        "bins": len(cal.channels[0].spread),
        "rows": rows,
        "mean_observed": mean_observed,
        "target_std": float(task.test_target.std()),
        "gap": gap,
        "raw_gap": raw_gap,
        "mean_ratio": float(expected.mean()) / mean_observed,
        "pearson_r": pearson_r(expected, observed),
        "spread_r": pearson_r(spread, observed),
    }


def table(results: list[dict]) -> str:
    lines = [
        "| task | calibrated on (px) | mean observed error | calibration error (of mean "
        "error) | (of target std) | raw spread as error | expected / observed | r |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['task']} | {r['calibration_pixels']:,} | {r['mean_observed']:.4g} | "
            f"{r['gap']:.3g} ({r['gap'] / r['mean_observed']:.0%}) | "
            f"{r['gap'] / r['target_std']:.3f} | {r['raw_gap'] / r['mean_observed']:.0%} | "
            f"{r['mean_ratio']:.2f} | {r['pearson_r']:.2f} |"
        )
    lines += [
        "",
        "| task | bin | expected error (range) | mean expected | mean observed | pixels |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        for i, b in enumerate(r["rows"], 1):
            lines.append(
                f"| {r['task']} | {i} | {b['low']:.3g}-{b['high']:.3g} | {b['expected']:.3g} | "
                f"{b['observed']:.3g} | {b['n']:,} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(task_data.TASKS))
    parser.add_argument("--steps", type=float, default=1.0, help="scale of the step counts")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("quality_output/error_map"))
    parser.add_argument("--table", action="store_true", help="print the cached results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table:
        for name in args.tasks.split(","):
            steps = int(STEPS[name] * args.steps)
            path = args.out / f"{name}-{steps}.json"
            if path.exists():
                continue
            result = run(task_data.load(name), steps)
            path.write_text(json.dumps(result, indent=1))
            print(table([result]), flush=True)
    order = {t: i for i, t in enumerate(task_data.TASKS)}
    results = [json.loads(p.read_text()) for p in sorted(args.out.glob("*.json"))]
    results.sort(key=lambda r: (order.get(r["task"], 9), r["steps"]))
    print(table(results))


if __name__ == "__main__":
    main()
