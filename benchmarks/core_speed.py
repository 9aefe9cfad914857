"""Core speed on this machine: training steps/s at the default configuration and
predict() tiles/s, each beside a baseline measured in the same process (the raw
generator's forward+backward for training, its bare forward for prediction).

    python benchmarks/core_speed.py [--steps 3] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import napari_pix2pix as p2p
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.model import Pix2PixModel
from napari_pix2pix.networks import build_discriminator, build_generator
from napari_pix2pix.training import _train_step


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device("cpu")
    rows = []
    for name, options in [("default (depth 8, ngf 64, patch 256)", {}),
                          ("demo (depth 7, ngf 32, patch 128)",
                           dict(depth=7, base_channels=32, patch_size=128, disc_channels=32))]:
        cfg = Pix2PixConfig(**options, source_low=[0.0], source_high=[1.0], target_low=[0.0],
                            target_high=[1.0])
        g, d = build_generator(cfg), build_discriminator(cfg)
        opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        x = torch.rand(cfg.batch_size, 1, *cfg.patch_size) * 2 - 1
        y = torch.rand(cfg.batch_size, 1, *cfg.patch_size) * 2 - 1

        def g_only():
            opt_g.zero_grad()
            torch.nn.functional.l1_loss(g(x), y).backward()
            opt_g.step()

        t_step = timed(lambda: _train_step(g, d, opt_g, opt_d, scaler, x, y, cfg, dev, None, 2e-4),
                       args.steps)
        t_gonly = timed(g_only, args.steps)
        # prediction: a 1024x1024 uint16 image, tiles of the patch size, overlap 0.25
        model = Pix2PixModel(cfg, g)
        image = np.random.default_rng(0).integers(0, 65535, (1024, 1024)).astype(np.uint16)
        counts = []
        t_pred = timed(lambda: p2p.predict(model, image, overlap=0.25, batch_size=4, device="cpu",
                                           progress=lambda d_, t: counts.append(t)), 1)
        n_tiles = counts[-1]
        g.eval()
        batch = torch.rand(4, 1, *cfg.patch_size)
        with torch.inference_mode():
            t_fwd = timed(lambda: g(batch), 2) / 4
        rows.append((name, 1 / t_step, t_gonly / t_step, n_tiles / t_pred, (1 / t_fwd),
                     (n_tiles / t_pred) * t_fwd))
    print(f"threads {args.threads}, torch {torch.__version__}")
    print(f"| configuration | train steps/s (batch 4) | G-only step / full step | "
          f"predict tiles/s | raw forward tiles/s | predict / raw |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.3f} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} |")


if __name__ == "__main__":
    main()
