"""Run under torchrun by test_distributed.py: two CPU ranks train two steps with gloo."""

import hashlib
import json
import os
import sys

import torch
from tiny_options import FAST

import napari_pix2pix as p2p
from napari_pix2pix.engine import sampling
from napari_pix2pix.engine.sample_data import make_pair

torch.set_num_threads(1)
out = sys.argv[1]
rank = int(os.environ["RANK"])
crops = []
original = sampling.PairedPatchSampler.batch_at


def recording_batch(self, index, batch_size):
    src, tgt = original(self, index, batch_size)
    crops.append(hashlib.sha1(src.numpy().tobytes()).hexdigest())
    return src, tgt


sampling.PairedPatchSampler.batch_at = recording_batch
source, target = make_pair((96, 96), seed=1, nucleus_radius=5.0)
model = p2p.train(
    source,
    target,
    seed=0,
    **FAST,
)
weights = {
    k: hashlib.sha1(v.numpy().tobytes()).hexdigest()
    for k, v in model.generator.state_dict().items()
}
with open(os.path.join(out, f"rank{rank}.json"), "w") as fh:
    json.dump({"world": torch.distributed.get_world_size(), "crops": crops, "weights": weights}, fh)
