"""Translation quality on real microscopy data, and the pix2pix paper's ablations.

Data: ../shared/data/isl_phase_to_dapi (13-plane phase-contrast z-stack -> DAPI, 1024 x
1024 uint16, one field of view; read from there, never copied).

Protocol (fixed):
- The right quarter of the field (columns 768-1023) is held out. Training sees only the
  source and target of columns 0-767 (its own validation split, the default 10 %, is the
  right 10 % of those), so no training crop touches the held-out part; the held-out
  source is predicted on its own.
- Input: the 13 planes as 13 channels ("CYX"), or the middle plane (z 6) alone.
- Every variant trains with the same number of steps, batch and patch (equal compute).
  The number of steps comes from a budget in minutes: a calibration run times the
  default recipe on this machine first.
- Scores on the held-out part, in the target's units: MAE, PSNR and SSIM (over the
  target's 0.5-99.5 percentile range), Pearson r, and the spectral distance (mean
  |log10| difference of the radially averaged power spectra; blur shows as missing
  high-frequency power). Baselines: the constant training mean, and "identity" (the
  middle phase plane, linearly rescaled to the target's range by least squares on the
  training part).
- The confidence map (spread over the 8 flips/rotations) is scored by its Pearson
  correlation with the absolute error over held-out pixels.

Run (minutes are wall-clock on this machine; results are cached per variant in --out,
so a second call only runs what is missing and reprints the tables):

    python benchmarks/quality.py --budget 20 --variants main       # L1 vs L1+cGAN, 13 planes
    python benchmarks/quality.py --budget 20 --variants recipes --out quality_output/recipes
        # what train(..., time_budget=20 min) gives with preset="auto", L1+cGAN and L1 only
    python benchmarks/quality.py --budget 4 --variants ablations --out quality_output/ablations
    python benchmarks/quality.py --figure docs/images/quality_crops.png \
        --table docs/quality_table.md
    python benchmarks/quality.py --variants ablations --out quality_output/ablations \
        --figure docs/images/quality_ablations.png --table docs/quality_ablation_table.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

import napari_pix2pix as p2p
from napari_pix2pix.engine.metrics import image_metrics, pearson_r, spectral_distance
from napari_pix2pix.engine.normalization import Normalization

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "isl_phase_to_dapi"
SPLIT = 768  # columns >= SPLIT are held out
MIDDLE_PLANE = 6
RECIPE = dict(
    patch_size=128, depth=7, base_channels=32, batch_size=4, seed=0, device="cpu", val_fraction=0.1
)

# name -> (description, train options); "planes" 13 = all planes as channels, 1 = middle one
VARIANTS = {
    "l1+cgan": ("L1 + cGAN (default recipe)", {}),
    "l1": ("L1 only", {"gan_mode": "none"}),
    "cgan": ("cGAN only", {"lambda_l1": 0.0}),
    "lambda10": ("L1 + cGAN, lambda 10", {"lambda_l1": 10.0}),
    "lambda1000": ("L1 + cGAN, lambda 1000", {"lambda_l1": 1000.0}),
    "d16": ("PatchGAN 16x16 (1 layer)", {"disc_layers": 1}),
    "d286": ("PatchGAN 286x286 (5 layers)", {"disc_layers": 5}),
    "l1+cgan-1plane": ("L1 + cGAN, middle plane only", {"planes": 1}),
    "l1-1plane": ("L1 only, middle plane only", {"gan_mode": "none", "planes": 1}),
    "l1+cgan-d5": ("L1 + cGAN, U-Net depth 5", {"depth": 5}),
    "l1-d5": ("L1 only, U-Net depth 5", {"gan_mode": "none", "depth": 5}),
    "no-warmup": ("L1 + cGAN, no L1 warm-up", {"gan_warmup": 0.0}),
    "no-fgcrops": ("L1 + cGAN, uniform crops", {"foreground_crops": 0.0}),
    "paper": ("L1 + cGAN, paper recipe (neither)", {"gan_warmup": 0.0, "foreground_crops": 0.0}),
    # what a user gets from train(..., time_budget=...) with preset="auto": no fixed
    # recipe or steps, the library sizes the network and ends on time
    "auto": ("L1 + cGAN, preset auto", {"budgeted": True}),
    "auto-l1": ("L1 only, preset auto", {"budgeted": True, "gan_mode": "none"}),
    "auto-w32": ("L1 + cGAN, preset auto, width 32", {"budgeted": True, "base_channels": 32}),
    "auto-l1-w32": (
        "L1 only, preset auto, width 32",
        {"budgeted": True, "gan_mode": "none", "base_channels": 32},
    ),
}
GROUPS = {
    "main": ["l1+cgan", "l1"],
    "recipes": ["auto", "auto-l1"],
    "ablations": [
        "l1+cgan",
        "l1",
        "cgan",
        "lambda10",
        "lambda1000",
        "d16",
        "d286",
        "no-warmup",
        "no-fgcrops",
        "paper",
        "l1+cgan-d5",
        "l1-d5",
        "l1+cgan-1plane",
        "l1-1plane",
    ],
}


def load_data() -> tuple[np.ndarray, np.ndarray]:
    phase = tifffile.imread(DATA / "phase_contrast_zstack.tif")
    dapi = tifffile.imread(DATA / "dapi.tif")
    return phase, dapi


def source_for(phase: np.ndarray, planes: int) -> tuple[np.ndarray, str]:
    return (phase, "CYX") if planes == 13 else (phase[MIDDLE_PLANE], "YX")


def calibrate(phase, dapi, steps: int = 15) -> float:
    """Seconds per training step of the default recipe (after a warm-up)."""
    times = []
    for _ in p2p.train_iter(
        phase[:, :, :SPLIT],
        dapi[:, :SPLIT],
        axes="CYX",
        target_axes="YX",
        steps=steps + 3,
        val_every=10**6,
        **RECIPE,
    ):
        times.append(time.perf_counter())
    return float(np.median(np.diff(times[3 : steps + 3])))


def scores(pred: np.ndarray, target: np.ndarray, norm: Normalization) -> dict:
    """The metrics of a 2D prediction; PSNR and SSIM over ``norm``'s target range."""
    out = image_metrics(pred[None, None], target[None, None].astype(np.float32), norm)
    out["spectral"] = spectral_distance(pred, target)
    return out


def run_variant(
    name: str, steps: int | None, phase, dapi, out: Path, minutes: float, seed: int = 0
) -> dict:
    """Train and score one variant: ``steps`` with the fixed RECIPE, or a budgeted one
    (time_budget=``minutes``, preset auto) as a user would call train()."""
    description, options = VARIANTS[name]
    options = dict(options)
    budgeted = options.pop("budgeted", False)
    group = f"{minutes:g}-minute budget, preset auto" if budgeted else f"{steps} steps per variant"
    done = out / f"{name}.json"
    if done.is_file() and json.loads(done.read_text()).get("group") == group:
        return json.loads(done.read_text())
    if budgeted:
        train_options = dict(time_budget=minutes * 60, seed=seed, device="cpu", **options)
    else:
        train_options = dict(steps=steps, **{**RECIPE, **options})
    planes = train_options.pop("planes", 13)
    source, axes = source_for(phase, planes)
    train_src, test_src = source[..., :SPLIT], source[..., SPLIT:]
    warnings = []
    start, cpu = time.perf_counter(), time.process_time()
    model = None
    for event in p2p.train_iter(
        train_src,
        dapi[:, :SPLIT],
        axes=axes,
        target_axes="YX",
        **train_options,
    ):
        model = event.model
        if isinstance(event, p2p.WarningEvent):
            warnings.append(event.message)
        if isinstance(event, p2p.StepEvent) and event.step % 200 == 0:
            print(
                f"  {name}: step {event.step}/{event.total}, L1 {event.losses['g_l1']:.3f}",
                file=sys.stderr,
                flush=True,
            )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    model.save(out / f"{name}.safetensors")
    pred, spread = p2p.predict(model, test_src, axes=axes, device="cpu", uncertainty=True)
    np.save(out / f"{name}_pred.npy", pred)
    target = dapi[:, SPLIT:]
    result = {
        "name": name,
        "description": description,
        "group": group,
        "steps": model.history.steps_done,
        "recipe": model.history.recipe,
        "best": model.history.to_dict().get("best"),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "warnings": warnings,
        **scores(pred, target, Normalization.of(model.config, "target")),
        "std_ratio": float(pred.std() / target.std()),
        "spread_error_r": pearson_r(spread, np.abs(pred - target)),
        "val_history": model.history.to_dict()["validation"],
    }
    done.write_text(json.dumps(result, indent=1))
    return result


def baselines(phase, dapi) -> list[dict]:
    target = dapi[:, SPLIT:].astype(np.float64)
    low, high = np.percentile(dapi[:, :SPLIT], [0.5, 99.5])
    norm = Normalization((float(low),), (float(high),))
    constant = np.full(target.shape, dapi[:, :SPLIT].mean())
    plane = phase[MIDDLE_PLANE].astype(np.float64)
    a, b = np.polyfit(plane[:, :SPLIT].ravel(), dapi[:, :SPLIT].ravel().astype(np.float64), 1)
    identity = a * plane[:, SPLIT:] + b
    rows = []
    for name, pred in (("constant", constant), ("identity", identity)):
        rows.append(
            {
                "name": name,
                "description": f"baseline: {name}",
                "steps": 0,
                **scores(pred.astype(np.float32), target, norm),
                "std_ratio": float(pred.std() / target.std()),
                "spread_error_r": float("nan"),
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    head = (
        "| variant | steps | minutes | MAE | PSNR dB | SSIM | Pearson r | spectral dist. "
        "| pred/target std | spread-error r |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        minutes = f"{r['seconds'] / 60:.1f}" if r.get("seconds") else "-"
        lines.append(
            f"| {r['description']} | {r['steps']} | {minutes} | {r['mae']:.0f} | "
            f"{r['psnr']:.2f} | {r['ssim']:.3f} | {r['pearson_r']:.3f} | "
            f"{r['spectral']:.3f} | {r['std_ratio']:.2f} | "
            f"{r['spread_error_r']:.2f} |"
        )
    return "\n".join(lines)


def figure(out: Path, names: list[str], path: Path, phase, dapi) -> None:
    """The same held-out crop for the input, the target and every variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 200  # the held-out crop with the most nuclei signal (on a 25-px grid)
    held = dapi[:, SPLIT:].astype(np.float64)
    y0, x0 = max(
        (
            (y, x)
            for y in range(0, held.shape[0] - n + 1, 25)
            for x in range(0, held.shape[1] - n + 1, 25)
        ),
        key=lambda yx: held[yx[0] : yx[0] + n, yx[1] : yx[1] + n].mean(),
    )
    target = dapi[:, SPLIT:][y0 : y0 + n, x0 : x0 + n]
    lo, hi = np.percentile(dapi[:, :SPLIT], [0.5, 99.5])
    panels = [
        ("phase (z 6)", phase[MIDDLE_PLANE][:, SPLIT:][y0 : y0 + n, x0 : x0 + n], None),
        ("DAPI (target)", target, (lo, hi)),
    ]
    for name in names:
        file = out / f"{name}_pred.npy"
        if file.is_file():
            panels.append((VARIANTS[name][0], np.load(file)[y0 : y0 + n, x0 : x0 + n], (lo, hi)))
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, (title, img, limits) in zip(np.ravel(axes), panels):
        vmin, vmax = limits if limits else np.percentile(img, [0.5, 99.5])
        ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"figure written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--budget",
        type=float,
        default=20.0,
        help="minutes of training per variant on this machine (sets the steps)",
    )
    parser.add_argument("--steps", type=int, help="steps per variant (instead of --budget)")
    parser.add_argument(
        "--variants",
        default="main",
        help="main, ablations, or comma-separated names: " + ", ".join(VARIANTS),
    )
    parser.add_argument("--out", type=Path, default=Path("quality_output"))
    parser.add_argument("--figure", type=Path, help="write the crop figure here")
    parser.add_argument("--table", type=Path, help="write the tables (markdown) here")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seed of the budgeted runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not DATA.is_dir():
        sys.exit(f"the shared data folder {DATA} is missing")
    phase, dapi = load_data()
    names = GROUPS.get(args.variants) or args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    steps = args.steps
    fixed = [n for n in names if not VARIANTS[n][1].get("budgeted")]
    if steps is None and fixed and not (args.figure or args.table):
        per_step = calibrate(phase, dapi)
        steps = max(10, int(args.budget * 60 / per_step))
        print(
            f"calibration: {per_step:.3f} s/step -> {steps} steps for {args.budget} minutes",
            file=sys.stderr,
        )
    if not (args.figure or args.table):
        for name in names:
            print(f"training {name}", file=sys.stderr, flush=True)
            run_variant(name, steps, phase, dapi, args.out, args.budget, args.seed)
    results = {}
    for file in sorted(args.out.glob("*.json")):
        r = json.loads(file.read_text())
        results.setdefault(r.get("group") or f"{r['steps']} steps per variant", []).append(r)
    base = baselines(phase, dapi)
    text = []
    for group, rows in sorted(results.items()):
        rows.sort(key=lambda r: list(VARIANTS).index(r["name"]))
        text.append(f"### {group}\n\n{table(rows + base)}\n")
        for r in rows:
            if r.get("recipe"):
                text.append(f"- {r['description']}: recipe {r['recipe']}; best {r.get('best')}")
        for r in rows:
            for w in r["warnings"]:
                text.append(f"- {r['description']}: warning: {w}")
    print("\n".join(text))
    if args.table:
        args.table.write_text("\n".join(text) + "\n")
    if args.figure:
        figure(args.out, names, args.figure, phase, dapi)


if __name__ == "__main__":
    main()
