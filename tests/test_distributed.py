"""Beyond one process with existing engines: torchrun/DDP training and dask.distributed
prediction."""

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import dask.array as da
import numpy as np
import pytest

import napari_pix2pix as p2p
from napari_pix2pix.engine.prefetch import AHEAD, MAX_WORKERS


def torchrun(worker: str, folder: Path, timeout: float) -> tuple[dict, dict]:
    """Run tests/``worker`` on two CPU ranks; what each rank wrote to rank{N}.json."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        + [str(Path(__file__).parent / worker), str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tuple(json.loads((folder / f"rank{r}.json").read_text()) for r in (0, 1))


def test_torchrun_ddp_two_cpu_ranks(tmp_path):
    r0, r1 = torchrun("ddp_worker.py", tmp_path, timeout=300)
    assert r0["world"] == r1["world"] == 2
    # two steps: two batches, and the few the prefetcher made ahead; each rank its own
    assert 2 <= len(r0["crops"]) <= 2 + AHEAD + MAX_WORKERS
    assert set(r0["crops"]).isdisjoint(r1["crops"])
    assert r0["weights"] == r1["weights"]  # identical after the steps


def test_torchrun_ranks_agree_on_when_to_stop(tmp_path):
    """Time budget, patience and both under torchrun (2 CPU ranks, gloo): only rank 0
    validates and keeps the clock, yet every rank takes the same steps and stops
    together (a drift in the ranks' collectives failed with 'collective mismatch' or
    'Connection closed by peer', and would hang on NCCL)."""
    r0, r1 = torchrun("ddp_stop_worker.py", tmp_path, timeout=240)
    for name in ("budget", "patience", "both"):
        assert r0[name]["steps"] == r1[name]["steps"] > 1, name
        assert r0[name]["weights"] == r1[name]["weights"], name
        assert r0[name]["width"] == r1[name]["width"], name  # one network, timed on rank 0
        # rank 0 alone wrote the run folder: one model, one checkpoint
        assert sorted(p.name for p in (tmp_path / name).glob("*.safetensors")) == [
            "best.safetensors",
            "checkpoint.safetensors",
        ], name
    assert r0["patience"]["stopped"] and r0["patience"]["steps"] < 400
    assert r0["cli"] == r1["cli"] == 0  # one model file, saved by rank 0 alone
    assert p2p.load_model(tmp_path / "cli.safetensors").history.steps_done == 3
    assert r0["budget"]["steps"] < 100000


def test_predict_lazy_on_a_dask_cluster_equals_single_process(trained):
    distributed = pytest.importorskip("dask.distributed")
    source = np.stack([np.roll(trained_source(), 11 * i, axis=1) for i in range(4)])
    expected = p2p.predict(trained, source, axes="ZYX", device="cpu")
    lazy = da.from_array(source, chunks=(1, 64, 64))
    # the nanny sets OMP/MKL_NUM_THREADS=1 (and more) in this process's environment for
    # its workers; restore it so later tests' subprocesses are not affected
    with (
        mock.patch.dict(os.environ),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = p2p.predict_lazy(trained, lazy, axes="ZYX", device="cpu")
        assert isinstance(result, da.Array) and result.shape == source.shape
        computed = client.compute(result).result()
        workers = client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2
    np.testing.assert_array_equal(computed, expected)


def trained_source():
    from napari_pix2pix.engine.sample_data import make_pair

    return make_pair((128, 128), seed=2, nucleus_radius=5.0)[0]
