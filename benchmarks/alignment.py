"""How well the alignment checks tell aligned pairs from shifted ones, on real aligned
pairs of several modalities, 2D and 3D: ``alignment.pair_shift`` before training (part
1, the default) and ``prediction_shift`` during it (part 2, ``--part prediction``).

Modalities (the tasks of benchmarks/tasks.py):

- ``dapi``: the shared field, middle phase-contrast plane (z 6) -> DAPI, random
  256 x 256 px crops, and 512 and 960 px ones (read from ../shared/data, never copied).
  The field is 1024 px wide, so the larger crops overlap: fewer independent trials than
  they seem, but 960 px is about what the Train widget sees of this pair.
- ``mr axial`` / ``mr coronal`` / ``mr sagittal``: the MNI ICBM152 2009a T1 -> tissue
  map (grey matter + 2 x white matter), random 2D slices of each orientation, cropped to
  a 128 x 128 px window at least half inside the brain.
- ``mr 3d``: the same volumes, random 64^3 sub-volumes at least half inside the brain.

Each trial is one random window, kept at every shift: the target aligned (shift 0) and
displaced by 2, 4, 6 and 8 px in a random direction (an integer vector whose length
rounds to that many px). The displacement is made by cutting the target's window at an
offset from the source's, so nothing wraps around. Per modality and shift: how often
``PairShift.warns``, how often the shift found is longer than TOLERATED_SHIFT whatever
the contrast, the median error of the shift found (length of the difference from the
true one) and the ranges of ``contrast`` and ``significance``. False alarms: warnings
at shift 0; detections: warnings at 4 px or more.

    export NILEARN_DATA=/tmp/nl/nilearn/datasets/data   # see benchmarks/tasks.py
    python benchmarks/alignment.py --trials 48 --seed 0 --table alignment_table.md
    python benchmarks/alignment.py --trials 300 --seed 1 --only "dapi 2D 256"  # one row

About three minutes on one core (the table in docs/quality.md, "Alignment check").

Part 2, ``--part prediction``: the training-time check (``alignment.prediction_shift``,
``misalignment_warning``), which compares a validation prediction with its target. One
small model per task is trained on the task's training part (benchmarks/tasks.py; the
network of benchmarks/defaults.py, seed 0, on the CPU) and cached in ``--out`` with its
held-out prediction, so re-runs only measure:

- ``dapi``: 13 phase planes as channels -> DAPI; held-out part 1024 x 256 px, random
  128 and 240 px crops;
- ``mr2d``: axial T1 -> tissue slices; held-out slices 120-139, 128 px crops at least
  half inside the brain;
- ``mr3d``: the same in 3D; held-out slices 120-183, 48^3 and 48 x 64 x 64 crops at
  least half inside the brain;
- ``dapi ideal``: no network; the held-out DAPI itself as the prediction (what a
  perfect network would give): the check's own limit on this target;
- ``dapi displaced``: the dapi model trained on pairs whose target is displaced by a
  constant DISPLACED px (an offset cut of the whole training part): how much of a
  shift the network learns, and the residual the check sees.

Trials as in part 1: one random window of (prediction, target) per trial, kept at every
shift, the target's window cut 0, 1, 2, 4 and 6 px further in a random direction. Each
crop goes to ``prediction_shift`` as a (1, *spatial) pair; per task, crop and shift: how
often ``misalignment_warning`` warns, the median error of the shift found and its median
uncertainty, and the range of |shift| and |shift| / uncertainty (what the constants
PREDICTION_TOLERANCE and PREDICTION_SIGNIFICANCE gate).

    python benchmarks/alignment.py --part prediction --only dapi --out quality_output/alignment &
    python benchmarks/alignment.py --part prediction --only mr --out quality_output/alignment
    python benchmarks/alignment.py --part prediction --trials 200 --out quality_output/alignment \
        --table alignment_prediction.md    # from the cached models: 7 minutes

Training the four networks takes 3-6 minutes each on one busy core.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from napari_pix2pix.engine.alignment import (
    MIN_CONTRAST,
    MIN_SIGNIFICANCE,
    PREDICTION_SIGNIFICANCE,
    PREDICTION_TOLERANCE,
    TOLERATED_SHIFT,
    misalignment_warning,
    pair_shift,
    prediction_shift,
)

sys.path.insert(0, str(Path(__file__).parent))
import tasks as task_data

SHIFTS = (0, 2, 4, 6, 8)  # px
MARGIN = max(SHIFTS) + 1  # px kept free around every source window
DAPI_SIDES, MR_SIDE, MR3D_SIDE = (256, 512, 960), 128, 64
BRAIN = 0.5  # tissue-map value inside the brain
IN_BRAIN = 0.5  # fraction of a window that must be brain


def directions(length: int, dims: int) -> list[tuple[int, ...]]:
    """The integer vectors whose length rounds to ``length`` px."""
    span = range(-length - 1, length + 2)
    return [
        v for v in itertools.product(span, repeat=dims) if round(float(np.linalg.norm(v))) == length
    ]


def window_pairs(source, target, side, dims, rng, accept=lambda corner: True, margin=MARGIN):
    """A random window's ``cut``: ``cut(offset)`` gives the (source, target) arrays with
    the target's window moved by ``offset``. ``dims`` trailing axes are windowed (``side``
    px each, or one side per axis); a leading axis (2D slices of a volume) is indexed at
    random. ``accept(start)`` may refuse a window."""
    sides = (side,) * dims if np.isscalar(side) else tuple(side)
    for _ in range(100_000):
        lead = ()
        if source.ndim > dims:
            lead = (int(rng.integers(0, source.shape[0])),)
        shape = source.shape[-dims:]
        corner = tuple(int(rng.integers(margin, n - w - margin + 1)) for n, w in zip(shape, sides))
        if not accept(lead + corner):
            continue

        def cut(offset, lead=lead, corner=corner):
            src = tuple(slice(c, c + w) for c, w in zip(corner, sides))
            tgt = tuple(slice(c + o, c + o + w) for c, o, w in zip(corner, offset, sides))
            return np.asarray(source[lead + src]), np.asarray(target[lead + tgt])

        return cut
    raise RuntimeError(f"no window of {sides} px is accepted")


def dapi_field() -> tuple[np.ndarray, np.ndarray]:
    """The middle phase plane and the DAPI image of the shared field."""
    import tifffile

    folder = task_data.SHARED
    phase = tifffile.imread(folder / "phase_contrast_zstack.tif", key=6)
    return phase, tifffile.imread(folder / "dapi.tif")


def dapi_cuts(field, side: int, trials: int, rng):
    return [window_pairs(*field, side, 2, rng) for _ in range(trials)]


def mr_cuts(t1, tissue, axis: int | None, trials: int, rng):
    """2D slices across ``axis`` (0 axial, 1 coronal, 2 sagittal of ZYX), or 3D
    sub-volumes (None), at least IN_BRAIN inside the brain."""
    if axis is None:
        source, target, side, dims = t1, tissue, MR3D_SIDE, 3
    else:
        source, target = (np.moveaxis(v, axis, 0) for v in (t1, tissue))
        side, dims = MR_SIDE, 2
    accept = in_brain(target, side, dims)
    return [window_pairs(source, target, side, dims, rng, accept) for _ in range(trials)]


def in_brain(tissue: np.ndarray, side, dims: int):
    """Accepts windows (``side`` px, or one side per axis) of ``tissue`` at least
    IN_BRAIN inside the brain."""
    sides = (side,) * dims if np.isscalar(side) else tuple(side)
    brain = tissue > BRAIN

    def accept(start):
        lead = start[: tissue.ndim - dims]
        window = tuple(slice(c, c + w) for c, w in zip(start[len(lead) :], sides))
        return brain[tuple(lead) + window].mean() >= IN_BRAIN

    return accept


def measure(name: str, cuts, dims: int, rng) -> list[dict]:
    rows = []
    vectors = {s: directions(s, dims) for s in SHIFTS}
    for shift in SHIFTS:
        found = []
        for cut in cuts:
            offset = vectors[shift][rng.integers(len(vectors[shift]))]
            source, target = cut(offset)
            result = pair_shift(source, target)
            # the target's window starts `offset` further: its content moved by -offset
            true = -np.array(offset, float)
            error = float(np.linalg.norm(np.array(result.shift) - true))
            found.append(
                (
                    result.warns,
                    result.length > TOLERATED_SHIFT,
                    error,
                    result.contrast,
                    result.significance,
                )
            )
        warns, long, errors, contrasts, significances = (np.array(v) for v in zip(*found))
        rows.append(
            {
                "modality": name,
                "shift": shift,
                "trials": len(found),
                "warns": int(warns.sum()),
                "long": int(long.sum()),
                "error": float(np.median(errors)),
                "contrast": (float(contrasts.min()), float(contrasts.max())),
                "significance": (float(significances.min()), float(significances.max())),
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        f"| modality | shift (px) | trials | warns | found > {TOLERATED_SHIFT:g} px | "
        "median error (px) | contrast min-max | significance min-max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        low, high = r["contrast"]
        t_low, t_high = r["significance"]
        lines.append(
            f"| {r['modality']} | {r['shift']} | {r['trials']} | "
            f"{r['warns']} ({100 * r['warns'] / r['trials']:.0f} %) | "
            f"{r['long']} ({100 * r['long'] / r['trials']:.0f} %) | {r['error']:.1f} | "
            f"{low:.2f}-{high:.2f} | {t_low:.1f}-{t_high:.1f} |"
        )
    return "\n".join(lines)


def rates(rows: list[dict]) -> str:
    """False alarms (warnings at shift 0) and detections (at 4 px, at >= 4 px) per
    modality and over all."""
    lines = []
    names = list(dict.fromkeys(r["modality"] for r in rows)) + ["all"]
    for name in names:
        mine = [r for r in rows if name in ("all", r["modality"])]

        def rate(keep, mine=mine):
            chosen = [r for r in mine if keep(r["shift"])]
            warns, trials = sum(r["warns"] for r in chosen), sum(r["trials"] for r in chosen)
            return f"{warns}/{trials} ({100 * warns / trials:.0f} %)"

        lines.append(
            f"- {name}: false alarms {rate(lambda s: s == 0)}, 4 px detected "
            f"{rate(lambda s: s == 4)}, >= 4 px detected {rate(lambda s: s >= 4)}"
        )
    return "\n".join(lines)


# Part 2: the training-time check, on a trained model's held-out predictions

PREDICTION_SHIFTS = (0, 1, 2, 4, 6)  # px
PREDICTION_MARGIN = max(PREDICTION_SHIFTS) + 1
DISPLACED = (0, 4)  # px: the constant shift of the "dapi displaced" model's pairs
NETWORK = {  # as benchmarks/defaults.py: small enough for one busy core
    2: dict(patch_size=64, depth=4, base_channels=16, disc_channels=16, batch_size=4),
    3: dict(patch_size=32, depth=3, base_channels=8, disc_channels=8, batch_size=2),
}
# name: (task of benchmarks/tasks.py, steps, crop sides); 0 steps: no network, the
# held-out target is its own prediction (what a perfect network would give)
MODELS = {
    "dapi": ("dapi", 800, ((128, 128), (240, 240))),
    "dapi ideal": ("dapi", 0, ((128, 128), (240, 240))),
    "mr2d": ("mr2d", 800, ((128, 128),)),
    "mr3d": ("mr3d", 500, ((48, 48, 48), (48, 64, 64))),
    "dapi displaced": ("dapi", 800, ((128, 128), (240, 240))),
}


def displaced(task):
    """The task with its training target displaced by DISPLACED px: cut that much
    further than the source (the source loses the same margin at the other end)."""
    dy, dx = DISPLACED
    ys, xs = task.train_target.shape
    task.train_source = task.train_source[..., : ys - dy, : xs - dx]
    task.train_target = task.train_target[dy:, dx:]
    return task


def held_out(name: str, out: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(prediction, target) of the held-out part, and the run's own last
    ``validation_shift`` (its validation split of the training part); trained, saved
    and predicted once per ``out`` folder."""
    import napari_pix2pix as p2p

    key, steps, _ = MODELS[name]
    task = task_data.load(key)
    if name == "dapi displaced":
        task = displaced(task)
    target = np.asarray(task.test_target, np.float32)
    if not steps:
        return target, target, {"minutes": 0.0, "validation_shift": None}
    stem = out / name.replace(" ", "-")
    model_path, pred_path = stem.with_suffix(".safetensors"), stem.with_suffix(".npy")
    if model_path.exists():
        model = p2p.load_model(model_path)
    else:
        began = time.perf_counter()
        model = task.train(steps=steps, **NETWORK[task.spatial_dims])
        model.history.extra["benchmark_minutes"] = (time.perf_counter() - began) / 60
        model.save(model_path, overwrite=True)
    if not pred_path.exists():
        pred = p2p.predict(model, task.test_source, axes=task.axes, device="cpu")
        pred = np.asarray(pred, np.float32).reshape(task.test_target.shape)
        np.save(pred_path, pred)
    run = {
        "minutes": model.history.extra.get("benchmark_minutes"),
        "validation_shift": model.history.validation_shift,
    }
    return np.load(pred_path), target, run


def measure_predictions(name: str, cuts, offsets: dict, side, rng) -> list[dict]:
    """One row per entry of ``offsets`` (label: a function of rng giving the offset of
    the target's window), on every window of ``cuts``."""
    rows = []
    for label, offset_of in offsets.items():
        found = []
        for cut in cuts:
            offset = offset_of(rng)
            pred, target = cut(offset)
            shift, unc = prediction_shift(pred[None], target[None])
            warns = misalignment_warning(shift, unc) != ""
            error = float(np.linalg.norm(np.array(shift) + np.array(offset, float)))
            found.append((warns, error, unc, float(np.linalg.norm(shift)), shift))
        warns, errors, uncs, lengths, shifts = zip(*found)
        uncs, lengths = np.array(uncs), np.array(lengths)
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma = lengths / uncs
        rows.append(
            {
                "modality": name,
                "side": "x".join(str(n) for n in side),
                "shift": label,
                "trials": len(found),
                "warns": int(sum(warns)),
                "error": float(np.median(errors)),
                "uncertainty": float(np.median(uncs)),
                "length": (float(lengths.min()), float(lengths.max())),
                "sigma": (float(np.nanmin(sigma)), float(np.nanmax(sigma))),
                "found": [float(v) for v in np.median(np.array(shifts), axis=0)],
            }
        )
    return rows


def prediction_rows(name: str, out: Path, trials: int, rng) -> tuple[list[dict], dict]:
    key, _, sides = MODELS[name]
    pred, target, run = held_out(name, out)
    dims = 3 if key == "mr3d" else 2
    if name == "dapi displaced":
        # the target as trained (DISPLACED), and where the source is (nothing to learn)
        offsets = {
            f"{DISPLACED} as trained": lambda rng: DISPLACED,
            "(0, 0) target at the source's place": lambda rng: (0, 0),
        }
    else:
        vectors = {s: directions(s, dims) for s in PREDICTION_SHIFTS}
        offsets = {
            s: (lambda rng, v=vectors[s]: v[rng.integers(len(v))]) for s in PREDICTION_SHIFTS
        }
    rows = []
    for side in sides:
        accept = in_brain(target, side, dims) if key.startswith("mr") else (lambda start: True)
        cuts = [
            window_pairs(pred, target, side, dims, rng, accept, PREDICTION_MARGIN)
            for _ in range(trials)
        ]
        rows += measure_predictions(name, cuts, offsets, side, rng)
    return rows, run


def prediction_table(rows: list[dict]) -> str:
    lines = [
        "| task | crop (px) | shift (px) | trials | warns | median error (px) | "
        "median uncertainty (px) | length min-max (px) | length / unc. min-max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if isinstance(r["shift"], str):
            continue
        lines.append(
            f"| {r['modality']} | {r['side']} | {r['shift']} | {r['trials']} | "
            f"{r['warns']} ({100 * r['warns'] / r['trials']:.0f} %) | {r['error']:.2f} | "
            f"{r['uncertainty']:.2f} | {r['length'][0]:.2f}-{r['length'][1]:.2f} | "
            f"{r['sigma'][0]:.1f}-{r['sigma'][1]:.1f} |"
        )
    return "\n".join(lines)


def displaced_table(rows: list[dict]) -> str:
    lines = [
        "| task | crop (px) | target's window | trials | warns | median shift found "
        "(dy, dx) | median uncertainty (px) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not isinstance(r["shift"], str):
            continue
        found = ", ".join(f"{v:+.2f}" for v in r["found"])
        lines.append(
            f"| {r['modality']} | {r['side']} | {r['shift']} | {r['trials']} | "
            f"{r['warns']} ({100 * r['warns'] / r['trials']:.0f} %) | ({found}) | "
            f"{r['uncertainty']:.2f} |"
        )
    return "\n".join(lines)


def prediction_rates(rows: list[dict]) -> str:
    """False alarms (shift 0), detections at 4 px per task and crop, and the margins
    the constants have: the longest shift and highest |shift| / uncertainty found on
    aligned crops, the shortest and lowest on 4 px ones."""
    lines = []
    groups = dict.fromkeys((r["modality"], r["side"]) for r in rows if r["shift"] in (0, 4))
    for name, side in groups:
        mine = {r["shift"]: r for r in rows if (r["modality"], r["side"]) == (name, side)}
        zero, four = mine[0], mine[4]
        lines.append(
            f"- {name} {side}: false alarms {zero['warns']}/{zero['trials']}, 4 px detected "
            f"{four['warns']}/{four['trials']} ({100 * four['warns'] / four['trials']:.0f} %); "
            f"aligned |shift| <= {zero['length'][1]:.2f} px and <= "
            f"{zero['sigma'][1]:.1f} unc., 4 px |shift| >= {four['length'][0]:.2f} px and >= "
            f"{four['sigma'][0]:.1f} unc."
        )
    return "\n".join(lines)


def prediction_part(args) -> str:
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    rows, runs = [], {}
    for name in (m for m in MODELS if args.only in m):
        mine, runs[name] = prediction_rows(name, args.out, args.trials, rng)
        rows += mine
        print(f"{name}: done at {time.perf_counter() - start:.0f} s", file=sys.stderr)
    which = f"-{args.only.replace(' ', '-')}" if args.only else ""
    (args.out / f"prediction{which}-seed{args.seed}.json").write_text(json.dumps(rows, indent=1))
    trained = "\n".join(
        f"- {name}: trained in {r['minutes'] or float('nan'):.1f} min; the run's own last "
        f"validation_shift: {r['validation_shift']}"
        for name, r in runs.items()
        if MODELS[name][1]
    )
    return (
        f"PREDICTION_TOLERANCE {PREDICTION_TOLERANCE:g} px, PREDICTION_SIGNIFICANCE "
        f"{PREDICTION_SIGNIFICANCE:g}; seed {args.seed}, {args.trials} windows per task and "
        f"crop.\n\n{prediction_table(rows)}\n\n{prediction_rates(rows)}\n\n"
        f"{displaced_table(rows)}\n\n{trained}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=48, help="windows per modality")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", type=Path, help="also write the markdown table here")
    parser.add_argument("--only", default="", help="modalities whose name contains this")
    parser.add_argument("--part", choices=("pair", "prediction"), default="pair")
    parser.add_argument("--out", type=Path, default=Path("quality_output/alignment"), help="part 2")
    parser.add_argument("--threads", type=int, default=1, help="part 2: torch threads")
    args = parser.parse_args()
    if args.part == "prediction":
        text = prediction_part(args)
        print(text)
        if args.table:
            args.table.write_text(text)
        return
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    t1, tissue = task_data.mni_volumes()
    field = dapi_field()
    modalities = [
        *(
            (f"dapi 2D {side} px", lambda side=side: dapi_cuts(field, side, args.trials, rng), 2)
            for side in DAPI_SIDES
        ),
        ("mr axial 2D", lambda: mr_cuts(t1, tissue, 0, args.trials, rng), 2),
        ("mr coronal 2D", lambda: mr_cuts(t1, tissue, 1, args.trials, rng), 2),
        ("mr sagittal 2D", lambda: mr_cuts(t1, tissue, 2, args.trials, rng), 2),
        ("mr 3D", lambda: mr_cuts(t1, tissue, None, args.trials, rng), 3),
    ]
    rows = []
    for name, cuts, dims in (m for m in modalities if args.only in m[0]):
        rows += measure(name, cuts(), dims, rng)
        print(f"{name}: done at {time.perf_counter() - start:.0f} s", file=sys.stderr)
    text = (
        f"TOLERATED_SHIFT {TOLERATED_SHIFT:g} px, MIN_CONTRAST {MIN_CONTRAST:g}, "
        f"MIN_SIGNIFICANCE {MIN_SIGNIFICANCE:g}; "
        f"seed {args.seed}, {args.trials} windows per modality.\n\n"
        f"{table(rows)}\n\n{rates(rows)}\n"
    )
    print(text)
    if args.table:
        args.table.write_text(text)


if __name__ == "__main__":
    main()
