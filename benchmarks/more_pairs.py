"""Held-out quality as the number of training pairs grows (shared phase -> DAPI field).

The training columns of the field (0-767, as in quality.py; the right quarter stays
held out) are cut into 8 tiles of 256 x 384 px. One tile is the validation pair of
every run; the training pairs are the first k of the other 7, taken across the field.
Every run trains the same number of steps (equal compute) with the same network (the
recipe preset auto chose for a 20-minute CPU budget: 128 px crops, depth 5, width 16),
so only the data differs, and is scored on the held-out quarter like quality.py's
variants. Fixed steps, not time, so runs can share the machine and still compare.

    python benchmarks/more_pairs.py --pairs 1,3 --threads 1 &   # two at once, a core each
    python benchmarks/more_pairs.py --pairs 7 --threads 1
    python benchmarks/more_pairs.py --table docs/quality_pairs_table.md   # cached results
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import napari_pix2pix as p2p
from napari_pix2pix.engine.normalization import Normalization

sys.path.insert(0, str(Path(__file__).parent))
from quality import DATA, SPLIT, load_data, scores

ROWS, COLS = 256, 384
VALIDATION = (3, 1)  # (row, column) of the validation tile
ORDER = [(0, 0), (2, 1), (1, 1), (3, 0), (0, 1), (2, 0), (1, 0)]  # spread over the field


def tile(image: np.ndarray, row: int, col: int) -> np.ndarray:
    return image[..., row * ROWS : (row + 1) * ROWS, col * COLS : (col + 1) * COLS]


def run(k: int, steps: int, phase, dapi, out: Path) -> dict:
    done = out / f"pairs{k}.json"
    if done.is_file():
        return json.loads(done.read_text())
    chosen = ORDER[:k]
    start = time.perf_counter()
    model = p2p.train(
        [tile(phase, *t) for t in chosen],
        [tile(dapi, *t) for t in chosen],
        axes="CYX",
        target_axes="YX",
        val_source=tile(phase, *VALIDATION),
        val_target=tile(dapi, *VALIDATION),
        steps=steps,
        patch_size=128,
        depth=5,
        base_channels=16,
        disc_channels=16,
        seed=0,
        device="cpu",
    )
    seconds = time.perf_counter() - start
    pred = p2p.predict(model, phase[..., SPLIT:], axes="CYX", device="cpu")
    target = dapi[:, SPLIT:]
    result = {
        "pairs": k,
        "pixels": k * ROWS * COLS,
        "steps": model.history.steps_done,
        "best_step": model.history.best.step if model.history.best else None,
        "seconds": seconds,
        **scores(pred, target, Normalization.of(model.config, "target")),
    }
    done.write_text(json.dumps(result, indent=1))
    return result


def table(rows: list[dict]) -> str:
    lines = [
        "| training pairs | training pixels | steps (best) | minutes | MAE | SSIM "
        "| Pearson r | spectral dist. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r["pairs"]):
        lines.append(
            f"| {r['pairs']} | {r['pixels'] / 1e6:.2f} M | {r['steps']} ({r['best_step']}) | "
            f"{r['seconds'] / 60:.1f} | {r['mae']:.0f} | {r['ssim']:.3f} | "
            f"{r['pearson_r']:.3f} | {r['spectral']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", default="1,2,4,7", help="numbers of training pairs")
    parser.add_argument("--steps", type=int, default=1500, help="training steps per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("quality_output/pairs"))
    parser.add_argument("--table", type=Path, help="only print (and write) the cached table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table:
        if not DATA.is_dir():
            sys.exit(f"the shared data folder {DATA} is missing")
        phase, dapi = load_data()
        for k in (int(n) for n in args.pairs.split(",")):
            if not 1 <= k <= len(ORDER):
                sys.exit(f"--pairs: 1 to {len(ORDER)} training pairs")
            print(f"training on {k} pair(s)", file=sys.stderr, flush=True)
            run(k, args.steps, phase, dapi, args.out)
    rows = [json.loads(f.read_text()) for f in sorted(args.out.glob("pairs*.json"))]
    text = table(rows)
    print(text)
    if args.table:
        args.table.write_text(text + "\n")


if __name__ == "__main__":
    main()
