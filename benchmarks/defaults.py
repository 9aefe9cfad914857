"""The defaults on four real tasks, not one field of view (benchmarks/tasks.py):
augmentations that change the source alone (intensity, gamma: the previous defaults)
against none, and the kept model (keep="best": the sharpest validation within a
tolerance of the most accurate) against the most accurate one and against L1 alone.

Variants (same network, crops, steps and seed on each task; fixed steps, not time, so
runs can share the machine and still compare):
- ``previous``: L1 + cGAN with augment_intensity=0.8, augment_gamma=0.5;
- ``defaults``: L1 + cGAN with the current defaults (intensity and gamma off);
- ``l1``: L1 alone (gan_mode="none"), the current defaults;
- ``rigid`` and ``rigid-l1``: the same two without zoom and elastic deformation.
Each cGAN run is trained with keep="accurate" and a run folder, so one run gives both
models: the returned one (most accurate validation) and the folder's best.safetensors
(the kept one). Scores on the held-out part in the target's units: MAE, Pearson r,
spectral distance (mean over up to 8 planes; blur shows here) and the bias of the mean
in target standard deviations.

    python benchmarks/defaults.py --tasks synthetic,mr2d --threads 1 &
    python benchmarks/defaults.py --tasks dapi,mr3d --threads 1
    python benchmarks/defaults.py --table          # the cached results as markdown
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import napari_pix2pix as p2p
from napari_pix2pix.engine.metrics import pearson_r, spectral_distance_nd

sys.path.insert(0, str(Path(__file__).parent))
import tasks as task_data

VARIANTS = {
    "previous": dict(augment_intensity=0.8, augment_gamma=0.5),
    "defaults": {},
    "l1": dict(gan_mode="none"),
    # the geometric augmentations that resample the target too (its interpolation
    # smooths the texture the cGAN is to learn)
    "rigid": dict(augment_zoom=0.0, augment_elastic=0.0),
    "rigid-l1": dict(augment_zoom=0.0, augment_elastic=0.0, gan_mode="none"),
}
# a network small enough for twelve runs on two shared CPU cores (the auto recipe's
# would be 128 px, depth 5, width 32), fixed so that every variant is equal
NETWORK = {
    2: dict(patch_size=64, depth=4, base_channels=16, disc_channels=16, batch_size=4),
    3: dict(patch_size=32, depth=3, base_channels=8, disc_channels=8, batch_size=2),
}
# --network auto: what preset auto chose for the shared field under a 20-minute budget
# (docs/quality.md), for the 2D tasks; slower, closer to what a user trains
AUTO_NETWORK = dict(patch_size=128, depth=5, base_channels=16, batch_size=4)
STEPS = {"synthetic": 800, "dapi": 800, "mr2d": 800, "mr3d": 500}


def scores(pred: np.ndarray, target: np.ndarray) -> dict:
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    stack, truth = pred[None], target[None]  # (C, [Z,] Y, X)
    # a 2D model's slices are scored like a 3D model's volume: up to 8 varied planes
    spectral = spectral_distance_nd(stack, truth)
    return {
        "mae": float(np.abs(pred - target).mean()),
        "pearson_r": pearson_r(pred, target),
        "spectral": float(spectral),
        "bias": float((pred.mean() - target.mean()) / target.std()),
        "std_ratio": float(pred.std() / target.std()),
    }


def run(task: task_data.Task, variant: str, steps: int, seed: int, network: str) -> dict:
    sized = AUTO_NETWORK if network == "auto" and task.spatial_dims == 2 else None
    options = dict(
        sized or NETWORK[task.spatial_dims],
        **VARIANTS[variant],
        spatial_dims=task.spatial_dims,
        steps=steps,
        seed=seed,
        device="cpu",
    )
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        model = p2p.train(
            task.train_source,
            task.train_target,
            axes=task.axes,
            target_axes=task.target_axes,
            keep="accurate",
            checkpoint_dir=Path(folder) / "run",
            **options,
        )
        kept = p2p.load_model(Path(folder) / "run" / "best.safetensors")
    minutes = (time.perf_counter() - began) / 60
    out = {"task": task.name, "variant": variant, "steps": steps, "minutes": minutes}
    models = {"accurate": model} if variant.endswith("l1") else {"accurate": model, "kept": kept}
    for which, m in models.items():
        pred = p2p.predict(m, task.test_source, axes=task.axes, device="cpu")
        out[which] = scores(pred, task.test_target)
        record = m.history.most_accurate if which == "accurate" else m.history.best
        out[which]["step"] = record.step
    return out


def table(results: list[dict]) -> str:
    lines = [
        "| task | variant | model kept | steps (kept at) | MAE | Pearson r | spectral dist. "
        "| mean bias (target std) | pred/target std |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for which in ("accurate", "kept"):
            if which not in r:
                continue
            s = r[which]
            name = {"accurate": "most accurate", "kept": "kept (keep='best')"}[which]
            lines.append(
                f"| {r['task']} | {r['variant']} | {name} | {r['steps']} ({s['step']}) | "
                f"{s['mae']:.4g} | {s['pearson_r']:.3f} | {s['spectral']:.3f} | "
                f"{s['bias']:+.2f} | {s['std_ratio']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(task_data.TASKS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=float, default=1.0, help="scale of the step counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("quality_output/defaults"))
    parser.add_argument(
        "--network", choices=("small", "auto"), default="small", help="see AUTO_NETWORK"
    )
    parser.add_argument("--table", action="store_true", help="print the cached results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table:
        for name in args.tasks.split(","):
            task = task_data.load(name)
            for variant in args.variants.split(","):
                path = args.out / f"{name}-{variant}-seed{args.seed}.json"
                if path.exists():
                    continue
                result = run(task, variant, int(STEPS[name] * args.steps), args.seed, args.network)
                path.write_text(json.dumps(result, indent=1))
                print(table([result]), flush=True)
    order = {t: i for i, t in enumerate(task_data.TASKS)}
    results = [json.loads(p.read_text()) for p in sorted(args.out.glob("*.json"))]
    results.sort(key=lambda r: (order.get(r["task"], 9), list(VARIANTS).index(r["variant"])))
    print(table(results))


if __name__ == "__main__":
    main()
