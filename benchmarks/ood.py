"""Calibration of the out-of-distribution score (engine/input_profile.py) on real shifts
of the four validation tasks (benchmarks/tasks.py: synthetic, dapi, mr2d, mr3d).

For each task the profile is made from the training part as training makes it (the
source normalization fitted on the training part with the default percentiles, then
``build_profile`` over the training samples, with the patch size of defaults.py's small
networks). With ``--train STEPS`` it is taken from a model trained that many steps by
``p2p.train`` instead (cached under /tmp/issue26_models/), which is the same computation
run by training itself.

Negatives, which must not warn: held-out tiles of the training distribution (crops of the
held-out strip for the single fields, the held-out slices for mr2d, sub-volumes of the
held-out volume for mr3d). Positives: the same tiles shifted:
- ``noise``: Gaussian noise, sd 10 % of the source's normalization range;
- ``x0.5`` / ``x2``: intensity scaled (image units);
- ``blur``: Gaussian blur, sigma 2 px;
- ``px x0.5`` / ``px x2``: another pixel size (resampled: zoom 2 and 0.5, linear);
- ``planes +-2`` / ``+-4`` (dapi): other focal planes (the 13-plane stack shifted in z);
- ``modality``: another kind of image: the DAPI field as the dapi model's source (all
  13 channels), the phase middle plane for the synthetic and MR models, the tissue map
  as the MR models' source.

Per task and shift: the AUC (positives against the task's negatives), the detection rate
at the default threshold and the false alarms (negatives above it).

    python benchmarks/ood.py                     # all four tasks, ~1 min
    python benchmarks/ood.py --tasks dapi,mr2d --markdown
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_pix2pix.engine.input_profile import THRESHOLD, build_profile, check_input
from napari_pix2pix.engine.normalization import Normalization

sys.path.insert(0, str(Path(__file__).parent))
import tasks as task_data

PATCH = {2: 64, 3: 32}  # defaults.py's small networks
CACHE = Path("/tmp/issue26_models")


def spatial_axes_of(task) -> tuple[int, ...]:
    """Axes of a (C, *spatial) sample that are spatial."""
    return tuple(range(1, 1 + task.spatial_dims))


def samples_of(array: np.ndarray, task) -> list[np.ndarray]:
    """(C, *spatial) samples of a task's source array (axes as the task says)."""
    if task.axes == "CYX":
        return [array]
    if task.axes == "YX":
        return [array[None]]
    if task.spatial_dims == 2:  # ZYX stack of slices
        return [s[None] for s in array]
    return [array[None]]


def held_out_tiles(task) -> list[np.ndarray]:
    """The negatives: (C, *spatial) pieces of the held-out part."""
    test = samples_of(task.test_source, task)
    if task.name == "mr2d":
        return test
    (volume,) = test
    if task.spatial_dims == 3:
        z, y, x = volume.shape[1:]
        return [
            volume[:, :, a : a + 112, b : b + 112]
            for a in range(0, y - 111, 40)
            for b in range(0, x - 111, 40)
        ]
    side = volume.shape[2]  # the strip's width: square crops down it
    return [volume[:, a : a + side] for a in range(0, volume.shape[1] - side + 1, side // 2)]


def shifts(task, norm: Normalization) -> dict:
    """name -> function from a (C, *spatial) negative to its shifted version."""
    axes = spatial_axes_of(task)
    rng = np.random.default_rng(1)
    span = np.array(norm.high) - np.array(norm.low)

    def zoom(factor):
        return lambda s: ndimage.zoom(
            s.astype(np.float32),
            (1,) + (factor,) * len(axes),
            order=1,
            grid_mode=True,
            mode="nearest",
        )

    out = {
        "noise": lambda s: (
            s
            + rng.normal(size=s.shape).astype(np.float32)
            * (0.1 * span).reshape((-1,) + (1,) * len(axes))
        ),
        "x0.5": lambda s: s.astype(np.float32) * 0.5,
        "x2": lambda s: s.astype(np.float32) * 2.0,
        "blur": lambda s: ndimage.gaussian_filter(s.astype(np.float32), (0,) + (2.0,) * len(axes)),
        "px x0.5": zoom(2.0),
        "px x2": zoom(0.5),
    }
    return out


def other_inputs(task, negatives: list[np.ndarray]) -> dict:
    """Real other images in the negatives' shapes: other focal planes (dapi), another
    modality (every task)."""
    import tifffile

    out: dict = {}
    phase = tifffile.imread(task_data.SHARED / "phase_contrast_zstack.tif")
    if task.name == "dapi":
        stack = task.test_source
        for shift in (-4, -2, 2, 4):
            planes = np.clip(np.arange(13) + shift, 0, 12)
            moved = held_out_tiles(
                task_data.Task("dapi", "", None, None, stack[planes], None, "CYX", 2)
            )
            out[f"planes {shift:+d}"] = moved
        dapi = tifffile.imread(task_data.SHARED / "dapi.tif")[:, 768:]
        out["modality"] = held_out_tiles(
            task_data.Task("dapi", "", None, None, np.repeat(dapi[None], 13, 0), None, "CYX", 2)
        )
        return out
    if task.name == "synthetic":
        plane = phase[6][:, :192]  # another image: phase contrast, in counts too
        out["modality"] = [plane[None, a : a + 192] for a in range(0, 1024 - 192 + 1, 96)][
            : len(negatives)
        ]
        return out
    # the MR models: the tissue map (0-510) in the T1's place, and phase contrast
    # resized to the slice
    tissue = task.test_target
    if task.spatial_dims == 2:
        out["modality: tissue map"] = [s[None] for s in tissue]
    else:
        out["modality: tissue map"] = held_out_tiles(
            task_data.Task("mr3d", "", None, None, tissue, None, "ZYX", 3)
        )
    shape = negatives[0].shape[1:]
    resized = ndimage.zoom(phase[6].astype(np.float32), [s / 1024 for s in shape[-2:]], order=1)[
        None
    ]
    if task.spatial_dims == 2:
        out["modality: phase"] = [resized] * 1
    else:
        out["modality: phase"] = [np.repeat(resized[:, None], shape[0], 1)]
    return out


def auc(negatives: list[float], positives: list[float]) -> float:
    """P(positive > negative), ties counting half."""
    n, p = np.asarray(negatives)[:, None], np.asarray(positives)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (n.size * p.size))


def profile_for(task, train_steps: int) -> tuple[dict, Normalization]:
    dims = task.spatial_dims
    if train_steps:
        import napari_pix2pix as p2p

        CACHE.mkdir(exist_ok=True)
        path = CACHE / f"{task.name}-{train_steps}.safetensors"
        model = p2p.load_model(path) if path.exists() else None
        if model is None or model.input_profile is None:  # none: cached before profiles
            model = task.train(
                spatial_dims=dims,
                patch_size=PATCH[dims],
                depth=4 if dims == 2 else 3,
                base_channels=8,
                disc_channels=8,
                batch_size=2,
                steps=train_steps,
            )
            model.save(path, overwrite=True)
        return model.input_profile, Normalization.of(model.config, "source")
    train = samples_of(task.train_source, task)
    norm = Normalization.fit(train, (0.5, 99.5), "source")
    return build_profile(train, norm, (PATCH[dims],) * dims), norm


def calibrate(name: str, train_steps: int) -> list[dict]:
    task = task_data.load(name)
    began = time.perf_counter()
    profile, norm = profile_for(task, train_steps)
    negatives = held_out_tiles(task)

    def scores(samples):
        return check_input(samples, norm, profile).scores

    neg = scores(negatives)
    rows = [dict(task=name, shift="none (held out)", n=len(neg), scores=neg)]
    positives = {k: [f(s) for s in negatives] for k, f in shifts(task, norm).items()}
    positives.update(other_inputs(task, negatives))
    for shift, samples in positives.items():
        rows.append(dict(task=name, shift=shift, n=len(samples), scores=scores(samples)))
    for row in rows:
        s = np.asarray(row["scores"])
        row["auc"] = auc(neg, s) if row["shift"] != "none (held out)" else float("nan")
        row["above"] = int((s > THRESHOLD).sum())
        row["median"] = float(np.median(s))
        row["max"] = float(np.max(s))
        row["above 2"] = int((s > 2.0).sum())
    print(f"# {name}: {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        f"| task | input | n | median score (max) | AUC | above {THRESHOLD:g} | above 2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a = "" if np.isnan(r["auc"]) else f"{r['auc']:.2f}"
        held_out = r["shift"].startswith("none")
        rate = f"{r['above']}/{r['n']}" + (" false alarms" if held_out else " detected")
        lines.append(
            f"| {r['task']} | {r['shift']} | {r['n']} | {r['median']:.2f} ({r['max']:.2f}) "
            f"| {a} | {rate} | {r['above 2']}/{r['n']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(task_data.TASKS))
    parser.add_argument("--train", type=int, default=0, metavar="STEPS")
    parser.add_argument("--markdown", action="store_true", help="(the table is markdown)")
    args = parser.parse_args()
    rows = []
    for name in args.tasks.split(","):
        rows += calibrate(name, args.train)
    print(table(rows))


if __name__ == "__main__":
    main()
