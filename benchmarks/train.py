"""Training speed: steps/s and images/s of full pix2pix steps (D and G updates) at the
default architecture for patch sizes 256 and 128, fp32 against bf16 autocast, in one
process. (depth 8 needs 256-px patches; the 128-px row uses depth 7, the deepest fit.)

    python benchmarks/train.py [--steps 3] [--precisions fp32,bf16]
"""

from __future__ import annotations

import argparse
import time

import torch

from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine.networks import build_generator
from napari_pix2pix.engine.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    dev = torch.device("cpu")
    results = []
    for patch, depth in ((256, 8), (128, 7)):
        cfg = Pix2PixConfig(patch_size=patch, depth=depth, batch_size=args.batch)
        for precision in args.precisions.split(","):
            dtype = None if precision == "fp32" else torch.bfloat16
            torch.manual_seed(0)
            # both networks, both Adam optimizers and the scaler; ``_update`` is the bare
            # update (D, then G) at a fixed learning rate and full adversarial weight
            trainer = Trainer(cfg, build_generator(cfg), dev, dtype)
            x = torch.rand(args.batch, 1, patch, patch) * 2 - 1
            y = torch.rand(args.batch, 1, patch, patch) * 2 - 1
            trainer._update(x, y, cfg.lr, 1.0)  # warm-up
            start = time.perf_counter()
            for _ in range(args.steps):
                trainer._update(x, y, cfg.lr, 1.0)
            per_step = (time.perf_counter() - start) / args.steps
            results.append((patch, depth, precision, 1 / per_step, args.batch / per_step))
            print(f"  patch {patch} depth {depth} {precision}: {per_step:.2f} s/step", flush=True)
    fp32 = {(r[0]): r[3] for r in results if r[2] == "fp32"}
    print(
        f"\n{torch.get_num_threads()} threads, torch {torch.__version__}, batch {args.batch}, "
        f"ngf 64, 70x70 PatchGAN"
    )
    print("| patch | depth | precision | steps/s | images/s | speed vs fp32 same patch |")
    print("|---|---|---|---|---|---|")
    for patch, depth, precision, sps, ips in results:
        ratio = sps / fp32[patch] if patch in fp32 else float("nan")
        print(f"| {patch} | {depth} | {precision} | {sps:.3f} | {ips:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
