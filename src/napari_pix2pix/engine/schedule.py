"""When a run validates and ends, and how far along it is: the learning-rate decay and
the GAN warm-up follow the run's progress (a fraction), so that a run limited by time
gets the same shape of schedule as one limited by steps."""

from __future__ import annotations

import math
import time

from . import distributed

VALIDATIONS = 10  # validations per run when val_every is not given


def lr_factor(progress: float) -> float:
    """Constant learning rate for the first half of the run, then linear decay to 0."""
    return 1.0 if progress < 0.5 else max(0.0, 1.0 - (progress - 0.5) / 0.5)


def adversarial_weight(progress: float, warmup: float) -> float:
    """0 during the L1 warm-up (the first ``warmup`` of the run), then a linear ramp to
    1 over as long again."""
    if warmup <= 0:
        return 1.0
    return float(min(1.0, max(0.0, (progress - warmup) / warmup)))


class Budget:
    """A run of at most ``steps`` steps and, with ``seconds``, at most that much time,
    validation included. Progress is whichever limit is nearer; the run ends before a
    step that would not finish (with its closing validation) in time. ``spent``: the
    seconds of earlier sessions of a resumed run.

    Under torchrun every decision (time is up, a validation is due, the schedule's
    progress, a stop asked for) must be the same on every rank, or the ranks' collectives
    drift apart and they wait for each other forever. So the clock is read once per
    step, by ``tick`` on every rank, which shares rank 0's elapsed time, step time,
    validation time (only rank 0 validates) and stop request in one broadcast; every
    decision until the next tick uses those numbers and no other collective."""

    def __init__(
        self, steps: int, seconds: float | None, val_every: int | None, spent: float = 0.0
    ) -> None:
        self.steps, self.seconds, self.spent = steps, seconds, spent
        self.val_every = val_every or (None if seconds else max(1, steps // VALIDATIONS))
        self.started = time.perf_counter()
        self.recent: list[float] = []  # the last steps' durations
        self.val_seconds = math.inf  # the fastest validation so far (the first warms up)
        self.next_val_time = (seconds or 0) / VALIDATIONS
        self._last = self.started
        # the numbers decisions use: rank 0's as of the last tick under torchrun
        self.shared = distributed.world_size() > 1
        self._agreed = (spent, 0.0, math.inf)

    def elapsed(self) -> float:
        """Seconds of the run so far, on this rank's clock."""
        return self.spent + time.perf_counter() - self.started

    def tick(self, stop: bool = False) -> bool:
        """Read the clock for this step (every rank, once per step) and whether any
        rank's ``stop`` (rank 0's: patience is spent) ends the run now."""
        if not self.shared:
            return stop
        val = -1.0 if math.isinf(self.val_seconds) else self.val_seconds
        now, step, val, stop_flag = distributed.agree_all(
            [self.elapsed(), self.step_seconds, val, float(stop)]
        )
        self._agreed = (now, step, math.inf if val < 0 else val)
        return stop_flag > 0

    def _clock(self) -> tuple[float, float, float]:
        """(elapsed, step seconds, validation seconds) that decisions use."""
        if self.shared:
            return self._agreed
        return self.elapsed(), self.step_seconds, self.val_seconds

    def progress(self, step: int) -> float:
        """Fraction of the run done before ``step``."""
        done = (step - 1) / self.steps
        if self.seconds:
            done = max(done, self._clock()[0] / self.seconds)
        return min(1.0, done)

    def expected_total(self, step: int) -> int:
        """The number of steps the run will probably take (for progress bars and ETAs)."""
        if not self.seconds:
            return self.steps
        fraction = self._clock()[0] / self.seconds
        return max(step, min(self.steps, math.ceil(step / max(fraction, 1e-9))))

    @property
    def step_seconds(self) -> float:
        """A step's typical duration: the median of the last ones (the first steps and
        a busy machine's hiccups do not count for more than they are)."""
        return sorted(self.recent)[len(self.recent) // 2] if self.recent else 0.0

    def stepped(self) -> None:
        now = time.perf_counter()
        self.recent = [*self.recent[-19:], now - self._last]
        self._last = now

    def validated(self, seconds: float) -> None:
        self.val_seconds = min(self.val_seconds, seconds)
        self._last = time.perf_counter()

    def time_is_up(self) -> bool:
        """Whether the next step (and the closing validation) would overrun the budget."""
        if not self.seconds:
            return False
        elapsed, step_seconds, val_seconds = self._clock()
        closing = 0.0 if math.isinf(val_seconds) else val_seconds
        return elapsed + step_seconds + closing >= self.seconds

    def validation_due(self, step: int) -> bool:
        if self.val_every is not None:
            return step % self.val_every == 0
        elapsed = self._clock()[0]
        if elapsed >= self.next_val_time:
            while self.next_val_time <= elapsed:
                self.next_val_time += self.seconds / VALIDATIONS
            return True
        return False
