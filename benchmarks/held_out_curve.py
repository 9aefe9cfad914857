"""Held-out Pearson r along a run, for choosing defaults (augmentations, norm, width).

Each variant trains the preset-auto network that a 20-minute CPU budget gets on the
shared phase -> DAPI field (128 px crops, depth 5, width 16 for both networks, batch 4)
for a fixed number of steps, and scores its current weights on the held-out right
quarter (as quality.py; predicted with 256 px tiles) every ``--every`` steps. Fixed
steps, not time, so two variants can run at once, one core each, and still compare.

    python benchmarks/held_out_curve.py flips-strong --threads 1 &
    python benchmarks/held_out_curve.py no-flips-strong --threads 1
    python benchmarks/held_out_curve.py --table          # the cached curves
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import napari_pix2pix as p2p
from napari_pix2pix.engine.metrics import pearson_r

sys.path.insert(0, str(Path(__file__).parent))
from quality import SPLIT, load_data

NETWORK = dict(patch_size=128, depth=5, base_channels=16, disc_channels=16, batch_size=4)
NONE = dict(
    augment_flips=0.0,
    augment_intensity=0.0,
    augment_gamma=0.0,
    augment_zoom=0.0,
    augment_elastic=0.0,
)
MODERATE = dict(augment_intensity=0.5, augment_gamma=0.3, augment_zoom=0.5, augment_elastic=0.2)
STRONG = dict(augment_intensity=0.8, augment_gamma=0.5, augment_zoom=0.8, augment_elastic=0.5)
VARIANTS = {  # name -> (description, options over NETWORK)
    "flips": ("flips/rotations only (the previous default)", {**NONE, "augment_flips": 0.5}),
    "flips-moderate": ("flips + moderate", {**NONE, "augment_flips": 0.5, **MODERATE}),
    "flips-strong": ("flips + strong", {**NONE, "augment_flips": 0.5, **STRONG}),
    "flips-strong-l1": (
        "flips + strong, L1 only",
        {**NONE, "augment_flips": 0.5, **STRONG, "gan_mode": "none"},
    ),
    "flips-moderate-instance": (
        "flips + moderate, instance norm",
        {**NONE, "augment_flips": 0.5, **MODERATE, "norm": "instance"},
    ),
    "flips-strong-w32": (
        "flips + strong, width 32",
        {**NONE, "augment_flips": 0.5, **STRONG, "base_channels": 32, "disc_channels": 32},
    ),
    "no-flips": ("no augmentation", dict(NONE)),
    "no-flips-strong": ("no flips + strong (the new default)", {**NONE, **STRONG}),
}


def curve(name: str, steps: int, every: int, phase, dapi, out: Path) -> dict:
    done = out / f"{name}.json"
    if done.is_file():
        return json.loads(done.read_text())
    description, options = VARIANTS[name]
    held, points, began = dapi[:, SPLIT:], [], time.perf_counter()

    def score(model, step: int) -> None:
        pred = p2p.predict(model, phase[..., SPLIT:], axes="CYX", device="cpu", tile_size=256)
        model.generator.train()  # predict leaves the network in eval mode
        points.append({"step": step, "r": pearson_r(pred, held), "minutes": 0.0})
        points[-1]["minutes"] = (time.perf_counter() - began) / 60
        print(name, points[-1], file=sys.stderr, flush=True)

    for event in p2p.train_iter(
        phase[..., :SPLIT],
        dapi[:, :SPLIT],
        axes="CYX",
        target_axes="YX",
        steps=steps,
        seed=0,
        device="cpu",
        val_every=10**6,
        keep="last",
        **{**NETWORK, **options},
    ):
        if isinstance(event, p2p.StepEvent) and event.step % every == 0 and event.step < steps:
            score(event.model, event.step)
        elif isinstance(event, p2p.FinishedEvent):
            score(event.model, event.step)
    result = {"name": name, "description": description, "points": points}
    done.write_text(json.dumps(result, indent=1))
    return result


def table(results: list[dict]) -> str:
    steps = sorted({p["step"] for r in results for p in r["points"]})
    lines = [
        "| variant | " + " | ".join(f"r at {s}" for s in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for r in sorted(results, key=lambda r: list(VARIANTS).index(r["name"])):
        at = {p["step"]: p["r"] for p in r["points"]}
        cells = [f"{at[s]:.3f}" if s in at else "-" for s in steps]
        lines.append(f"| {r['description']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="*", help=", ".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=750)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("quality_output/curves"))
    parser.add_argument("--table", action="store_true", help="only print the cached table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    unknown = [n for n in args.variants if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if not args.table:
        phase, dapi = load_data()
        for name in args.variants:
            curve(name, args.steps, args.every, phase, dapi, args.out)
    results = [json.loads(f.read_text()) for f in sorted(args.out.glob("*.json"))]
    print(table(results))


if __name__ == "__main__":
    main()
