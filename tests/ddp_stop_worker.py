"""Run under torchrun by test_distributed.py: two CPU ranks (gloo) train with a time
budget, with patience, and with both; every rank must take the same steps (each
decision agreed) and end together, rank 0 alone writing the run folder."""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from tiny_options import TINY

import napari_pix2pix as p2p
from napari_pix2pix.cli import main
from napari_pix2pix.engine.sample_data import make_pair

torch.set_num_threads(1)
out = Path(sys.argv[1])
rank = int(os.environ["RANK"])
source, target = make_pair((96, 96), seed=1, nucleus_radius=5.0)
runs = {
    "budget": dict(time_budget=2.0, val_every=3),
    "patience": dict(steps=400, val_every=1, patience=1, val_metric="ssim"),
    "both": dict(time_budget=30.0, val_every=1, patience=1, val_metric="ssim"),
}
report = {}
for name, options in runs.items():
    network = {**TINY, "batch_size": 2}
    if name == "budget":  # the auto recipe times the width: on rank 0, for all ranks
        del network["base_channels"]
    model = p2p.train(
        source,
        target,
        seed=0,
        val_fraction=0.25,
        checkpoint_dir=out / name,
        **network,
        **options,
    )
    weights = hashlib.sha1(
        b"".join(v.numpy().tobytes() for v in model.generator.state_dict().values())
    ).hexdigest()
    report[name] = {
        "steps": model.history.steps_done,
        "stopped": model.history.stopped,
        "weights": weights,
        "width": model.config.base_channels,
    }
# the command line under torchrun: every rank trains, rank 0 alone saves the model
p2p.write_image(out / f"s{rank}.tif", source, "YX")
p2p.write_image(out / f"t{rank}.tif", target, "YX")
cli = [str(out / f"s{rank}.tif"), str(out / f"t{rank}.tif"), "-o", str(out / "cli.safetensors")]
cli += "--steps 3 --patch-size 32 --depth 4 --base-channels 8 --batch-size 2".split()
cli += "--disc-layers 2 --disc-channels 8 --device cpu --seed 0 --val-fraction 0".split()
report["cli"] = main(["train", *cli])
(out / f"rank{rank}.json").write_text(json.dumps(report))
