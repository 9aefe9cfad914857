"""Training batches made ahead, in a background thread, so that a step does not wait
while crops are read, augmented and normalised (14 % of a CPU step with the auto recipe,
benchmarks/train.py; on a GPU the whole of it). One producer keeps the sampler's order,
so a seeded run draws the same batches as without it."""

from __future__ import annotations

import queue
import threading

AHEAD = 2  # batches made ahead at most (each a batch of crops in memory)


class Prefetcher:
    """Hands out ``sampler.batch(batch_size)`` in order, made ahead. ``state()`` is the
    sampler's state after the last batch handed out (not after the ones made ahead),
    so a checkpoint resumes exactly as without prefetching. ``pin``: page-locked
    tensors, for asynchronous copies to a GPU."""

    def __init__(self, sampler, batch_size: int, pin: bool = False) -> None:
        self.sampler, self.batch_size, self.pin = sampler, batch_size, pin
        self._state = sampler.state()
        self._queue: queue.Queue = queue.Queue(maxsize=AHEAD)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def batch(self, batch_size: int):
        if batch_size != self.batch_size:
            raise ValueError(f"this prefetcher makes batches of {self.batch_size}")
        if self._thread is None:
            self._thread = threading.Thread(target=self._produce, daemon=True)
            self._thread.start()
        batch, state, error = self._queue.get()
        if error is not None:
            raise error
        self._state = state
        return batch

    def state(self) -> dict:
        return self._state

    def set_state(self, state: dict) -> None:
        """Before the first batch only (a resumed run's sampler)."""
        if self._thread is not None:
            raise RuntimeError("the prefetcher has started; set the state before")
        self.sampler.set_state(state)
        self._state = state

    def close(self) -> None:
        """Stop making batches (the run ended) and wait for the thread."""
        self._stop.set()
        while not self._queue.empty():
            self._queue.get_nowait()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _produce(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self.sampler.batch(self.batch_size)
                if self.pin:
                    batch = tuple(t.pin_memory() for t in batch)
                item = (batch, self.sampler.state(), None)
            except Exception as exc:  # handed to the training thread, which raises it
                item = (None, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item[2] is not None:
                return
