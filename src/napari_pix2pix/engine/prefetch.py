"""Training batches made ahead, by several threads, so that a step does not wait while
crops are read, augmented and normalised (14 % of a CPU step with the auto recipe,
benchmarks/train.py; on a GPU the whole of it). Batch k's crops depend on (seed, k)
alone (sampling.py), so the threads hand out the same batches, in the same order, as
the sampler alone.

Threads, not DataLoader worker processes: forking a napari (Qt) process is unsafe,
spawning pickles every in-memory stack to every worker, and reading the crops (numpy,
tifffile, zarr, torch) mostly releases the GIL."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

AHEAD = 2  # batches made ahead beyond one per thread (each a batch of crops in memory)
MAX_WORKERS = 4


def crop_workers(device_type: str) -> int:
    """Threads making crops: one on the CPU, whose cores the step itself uses; on a GPU
    the cores this process's share of the machine has, up to MAX_WORKERS (torchrun runs
    LOCAL_WORLD_SIZE processes per machine)."""
    if device_type == "cpu":
        return 1
    share = (os.cpu_count() or 2) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(MAX_WORKERS, share - 1))


class Prefetcher:
    """Hands out ``sampler.batch_at(k, batch_size)`` for k = next, next + 1, ..., made
    ahead by ``workers`` threads. ``state()`` is the sampler's state after the last batch
    handed out (not after the ones made ahead), so a checkpoint resumes exactly as
    without prefetching. ``pin``: page-locked tensors, for asynchronous copies to a GPU."""

    def __init__(self, sampler, batch_size: int, pin: bool = False, workers: int = 1) -> None:
        self.sampler, self.batch_size, self.pin = sampler, batch_size, pin
        self.workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future] = deque()
        self._asked = self._handed = sampler.state()["batch"]

    def batch(self, batch_size: int):
        if batch_size != self.batch_size:
            raise ValueError(f"this prefetcher makes batches of {self.batch_size}")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="pix2pix-crops")
        while len(self._pending) < self.workers + AHEAD:
            self._pending.append(self._pool.submit(self._make, self._asked))
            self._asked += 1
        made = self._pending.popleft().result()  # a thread's error is raised here
        self._handed += 1
        return made

    def state(self) -> dict:
        return {**self.sampler.state(), "batch": self._handed}

    def set_state(self, state: dict) -> None:
        """Before the first batch only (a resumed run's sampler)."""
        if self._pool is not None:
            raise RuntimeError("the prefetcher has started; set the state before")
        self.sampler.set_state(state)
        self._asked = self._handed = self.sampler.state()["batch"]

    def close(self) -> None:
        """Stop making batches (the run ended) and wait for the threads."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _make(self, index: int):
        batch = self.sampler.batch_at(index, self.batch_size)
        return tuple(t.pin_memory() for t in batch) if self.pin else batch
