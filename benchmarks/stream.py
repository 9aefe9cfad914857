"""Out-of-core prediction: a uint16 TIFF stack of --gb gigabytes (default 3), generated on
the fly into a temporary folder, predicted path to path with a small model. Prints the
throughput and the peak resident memory (resource.getrusage) as a share of the stack.

    python benchmarks/stream.py [--gb 3.0] [--tile 512] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

import napari_pix2pix as p2p
from napari_pix2pix.config import Pix2PixConfig
from napari_pix2pix.io.model_file import Pix2PixModel


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=1024, help="slice side")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--keep", help="folder for the files (default: a temp folder, removed)")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="p2p-stream-"))
    folder.mkdir(parents=True, exist_ok=True)
    slices = int(np.ceil(args.gb * 1e9 / (args.size**2 * 2)))
    source = folder / "stack.tif"
    print(f"writing {slices} x {args.size}x{args.size} uint16 slices to {source} ...", flush=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 30000, (args.size, args.size)).astype(np.uint16)

    def pages():
        for i in range(slices):
            yield np.roll(base, i, axis=1)

    tifffile.imwrite(
        source,
        data=pages(),
        shape=(slices, args.size, args.size),
        dtype="uint16",
        bigtiff=True,
        metadata={"axes": "ZYX"},
    )
    stack_mb = source.stat().st_size / 2**20
    cfg = Pix2PixConfig(
        depth=4,
        base_channels=8,
        patch_size=args.tile,
        source_low=[0.0],
        source_high=[30000.0],
        target_low=[0.0],
        target_high=[1000.0],
    )
    model = Pix2PixModel(cfg)
    imported = rss_mb()  # the import baseline: python, torch, numpy, the model
    p2p.predict(model, base[None, :64, :64], axes="ZYX", device="cpu")  # warm-up
    before = rss_mb()
    # a 4-slice stack first: ru_maxrss only grows, so the full run's peak shows what its
    # length adds to a short run's (nothing, if memory does not follow the stack)
    small = folder / "small.tif"
    tifffile.imwrite(small, np.stack([base] * 4), metadata={"axes": "ZYX"})
    opts = dict(axes="ZYX", tile_size=args.tile, batch_size=args.batch, device="cpu")
    p2p.predict(model, small, out=folder / "small_prediction.ome.tif", **opts)
    peak_small = rss_mb()
    start = time.perf_counter()
    out = folder / "prediction.ome.tif"
    p2p.predict(model, source, out=out, **opts)
    seconds = time.perf_counter() - start
    peak = rss_mb()
    out_mb = out.stat().st_size / 2**20
    print()
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(
        "| input stack | output | time | throughput | RSS after imports | peak RSS, "
        "4-slice run | peak RSS, whole stack | whole stack - 4 slices | peak RSS / stack |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {slices} x {args.size}^2 uint16, {stack_mb / 1024:.2f} GiB | float32 OME-TIFF, "
        f"{out_mb / 1024:.2f} GiB | {seconds:.0f} s | "
        f"{slices * args.size**2 / seconds / 1e6:.1f} Mpx/s "
        f"({stack_mb / seconds:.0f} MiB/s in) | {imported:.0f} MiB | {peak_small:.0f} MiB | "
        f"{peak:.0f} MiB | {peak - peak_small:+.0f} MiB | {peak / stack_mb:.3f} |"
    )
    print(f"(RSS after the warm-up prediction: {before:.0f} MiB)")
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
