"""The throughput clock: how training steps become first_step_s, warmup_s and the steady windows' samples/s.

The run's first step is timed alone (tracing, compilation), the rest of the warm-up together; after it, windows of
WINDOW_STEPS steady steps. A window closes as the next step begins (or at `finish()`): the clock synchronises the
device, then reads the time, then reads the window's losses, so loss reads never fall inside a timed window. The
train-step samples/s a cell reports is the median of its windows.

The timer is injectable (`timer=`, default `time.perf_counter`), so tests drive the clock with a fake one and no
framework (tests/test_clock.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Callable

from frameworks.contract import Adapter

WARMUP_STEPS = 10  # first steps of the run: tracing, compilation, autotuning; reported, never in steady state
WINDOW_STEPS = 10  # steady-state steps timed together between two synchronisations

Timer = Callable[[], float]  # seconds, monotonic; only differences are used


def warmup_steps(steps_per_epoch: int) -> int:
    """Warm-up length: WARMUP_STEPS, but leave at least half of a short first epoch for steady state."""
    return max(1, min(WARMUP_STEPS, steps_per_epoch // 2))


@dataclass
class TrainTiming:
    """What the clock fills in over a run (every epoch's clock adds to the same one)."""
    first_step_s: float = 0.0
    warmup_steps: int = 0  # set by whoever runs the clock (warmup_steps()); steps up to it are warm-up
    warmup_s: float = 0.0  # the first step included
    window_samples_per_s: list[float] = field(default_factory=list)
    steady_samples: int = 0
    steady_s: float = 0.0

    @property
    def samples_per_s(self) -> float | None:
        """The median of the steady windows so far (the parent derives the cell's figure from the windows)."""
        return median(self.window_samples_per_s) if self.window_samples_per_s else None


class Stopwatch:
    """`with Stopwatch() as watch: ...`, then `watch.seconds`: how long the block took, by `timer`."""

    def __init__(self, timer: Timer = time.perf_counter):
        self.timer = timer
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self.start = self.timer()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.seconds = self.timer() - self.start


class StepClock:
    """The harness's clock over one epoch, told as each training step begins, whoever runs the loop.

    Usually `Adapter.train_epoch` calls `step_begins()` before each `train_step`; a framework whose users train
    with its own loop (Keras's fit) calls it from that loop's batch-begin hook instead. When the first step, the
    warm-up, or WINDOW_STEPS steady steps are done, the clock synchronises the device, reads the time and closes
    a window as the next step begins; losses handed over with `add_loss` are read only then, outside the timed
    windows. `finish()` closes the last window. It implements `frameworks.contract.Clock`.
    """

    def __init__(self, adapter: Adapter, result: TrainTiming, batch_size: int, steps_before: int,
                 timer: Timer = time.perf_counter):
        self.adapter, self.result, self.batch_size, self.timer = adapter, result, batch_size, timer
        self.step = steps_before  # steps of the run begun so far
        self.window_start: float | None = None
        self.window_steps = 0
        self.pending: list[Any] = []
        self.losses: list[float] = []
        self.train_s = 0.0  # this epoch's timed seconds
        adapter.synchronize()

    def step_begins(self) -> None:
        steps_done, warmup = self.step, self.result.warmup_steps
        if self.window_start is not None and (steps_done in (1, warmup) or
                                              steps_done > warmup and self.window_steps == WINDOW_STEPS):
            self.finish()
        if self.window_start is None:
            self.window_start = self.timer()
        self.step += 1
        self.window_steps += 1

    def add_loss(self, loss: Any) -> None:
        """The loss `train_step` returned, perhaps not ready yet: it is read when the window closes."""
        self.pending.append(loss)

    def finish(self) -> None:
        """Synchronise and close the open window (nothing to do when none is open)."""
        if self.window_start is None:
            return
        self.adapter.synchronize()
        elapsed = self.timer() - self.window_start
        result = self.result
        if self.step == 1:
            result.first_step_s = elapsed
        if self.step <= result.warmup_steps:
            result.warmup_s += elapsed
        else:
            result.window_samples_per_s.append(self.window_steps * self.batch_size / elapsed)
            result.steady_samples += self.window_steps * self.batch_size
            result.steady_s += elapsed
        self.train_s += elapsed
        self.losses += [self.adapter.loss_value(loss) for loss in self.pending]
        self.pending, self.window_start, self.window_steps = [], None, 0
