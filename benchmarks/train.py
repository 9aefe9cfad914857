"""Training speed: steps/s and images/s of full pix2pix steps (D and G updates) at the
default architecture for patch sizes 256 and 128, fp32 against bf16 autocast, in one
process. (depth 8 needs 256-px patches; the 128-px row uses depth 7, the deepest fit.)
Then the share of a real run's step time spent waiting for data: ``train_iter`` on a
simulated 1024x1024 pair with the auto recipe and the default augmentations; batches are
made ahead by crop threads (engine/prefetch.py: one on the CPU, more on a GPU), so the
wait is the time the training thread spends in ``Prefetcher.batch``, beside the time
making them; one row per number of crop threads.

    python benchmarks/train.py [--steps 3] [--precisions fp32,bf16] [--wait-steps 60]
        [--workers 1,2]
"""

from __future__ import annotations

import argparse
import time

import torch

import napari_pix2pix as p2p
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.engine.networks import build_generator
from napari_pix2pix.engine.prefetch import Prefetcher
from napari_pix2pix.engine.sample_data import make_pair
from napari_pix2pix.engine.sampling import PairedPatchSampler
from napari_pix2pix.engine.trainer import Trainer


def data_wait_share(steps: int, device: str, workers: int) -> tuple[float, float, float, dict]:
    """(seconds per step, seconds per step the training thread waited for a batch,
    seconds per step spent making batches in the background, the recipe) of a run of
    ``steps`` steps with ``workers`` crop threads, the first ten left out (warm-up)."""
    import napari_pix2pix.workflows.training as training

    waited: list[float] = []
    made: list[float] = []

    def timed(function, into):
        def wrapper(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return function(self, *args, **kwargs)
            finally:
                into.append(time.perf_counter() - start)

        return wrapper

    originals = Prefetcher.batch, PairedPatchSampler.batch_at, training.crop_workers
    Prefetcher.batch = timed(originals[0], waited)
    PairedPatchSampler.batch_at = timed(originals[1], made)
    training.crop_workers = lambda device_type: workers
    try:
        source, target = make_pair((1024, 1024), seed=0)
        stamps = []
        for event in p2p.train_iter(
            source, target, steps=steps, device=device, val_fraction=0.0, seed=0
        ):
            if isinstance(event, p2p.StepEvent):
                stamps.append(time.perf_counter())
                recipe = event.model.history.recipe or {}
    finally:
        Prefetcher.batch, PairedPatchSampler.batch_at, training.crop_workers = originals
    n = len(stamps) - 11
    per_step = (stamps[-1] - stamps[10]) / n
    return per_step, sum(waited[11:-1]) / n, sum(made[11 : 11 + n]) / n, recipe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--wait-steps", type=int, default=60, help="steps of the data-wait run")
    parser.add_argument("--device", default="cpu", help="device of the data-wait run")
    parser.add_argument("--workers", default="1,2", help="crop threads of the data-wait runs")
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
    if args.wait_steps > 11:
        rows = []
        for workers in map(int, args.workers.split(",")):
            per_step, waiting, making, recipe = data_wait_share(
                args.wait_steps, args.device, workers
            )
            rows.append(
                f"| {workers} | {per_step:.3f} | {making:.3f} | {waiting:.3f} | "
                f"{waiting / per_step:.0%} |"
            )
        print(f"\ndata wait: {args.wait_steps} steps on {args.device}, recipe {recipe}")
        print(
            "| crop threads | s/step | s/step making batches (in the threads) | s/step the "
            "step waited for a batch | share of the step waiting for data |"
        )
        print("|---|---|---|---|---|")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
