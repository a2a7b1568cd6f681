"""The training loop every framework runs through: batch order, warm-up, timed windows, evaluation.

The harness owns batching: each epoch's permutation comes from (seed, epoch) alone, so every framework and every
process sees the same batches; the epoch is gathered in that order once, before the clock, and every adapter
trains on contiguous slices of it; the last partial training batch is dropped; evaluation covers the whole test set.
Clocks are read only after `adapter.synchronize()`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from statistics import median
from typing import Any, Callable, Iterator

import numpy as np

from frameworks.contract import Adapter

WARMUP_STEPS = 10  # first steps of the run: tracing, compilation, autotuning; reported, never in steady state
WINDOW_STEPS = 10  # steady-state steps timed together between two synchronisations
EVAL_BATCH_SIZE = 1000
INFERENCE_BATCH_SIZES = (1, 32, 256, EVAL_BATCH_SIZE)  # throughput per batch size, each after one warm batch
INFERENCE_SAMPLES = 2048  # samples predicted per batch size (at most the test set; batch 1 uses LATENCY_CALLS)
LATENCY_CALLS = 200  # single-sample predictions timed one by one, after LATENCY_WARMUP_CALLS untimed ones
LATENCY_WARMUP_CALLS = 10
PEAK_MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}
PEAK_MATMUL_CALLS = 5  # timed products after two warm ones; the fastest gives the peak


def epoch_order(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of training samples for one epoch: a function of (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


def train_batches(num_samples: int, batch_size: int, seed: int, epoch: int) -> Iterator[np.ndarray]:
    """Index arrays of the epoch's full batches; the last partial batch is dropped."""
    order = epoch_order(num_samples, seed, epoch)
    for start in range(0, num_samples - batch_size + 1, batch_size):
        yield order[start:start + batch_size]


def warmup_steps(steps_per_epoch: int) -> int:
    """Warm-up length: WARMUP_STEPS, but leave at least half of a short first epoch for steady state."""
    return max(1, min(WARMUP_STEPS, steps_per_epoch // 2))


@dataclass
class LoopResult:
    epochs: list[dict] = field(default_factory=list)
    first_step_s: float = 0.0
    warmup_steps: int = 0
    warmup_s: float = 0.0
    window_samples_per_s: list[float] = field(default_factory=list)
    steady_samples: int = 0
    steady_s: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0
    test_accuracy: float | None = None
    test_loss: float | None = None
    inference_samples_per_s: float | None = None

    @property
    def train_samples_per_s(self) -> float | None:
        return median(self.window_samples_per_s) if self.window_samples_per_s else None


def evaluate(adapter: Adapter, images: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(accuracy, mean cross-entropy, seconds) over the whole test set, computed from the adapter's logits."""
    correct, loss_sum = 0, 0.0
    adapter.synchronize()
    start = time.perf_counter()
    for begin in range(0, len(images), EVAL_BATCH_SIZE):
        logits = adapter.predict(images[begin:begin + EVAL_BATCH_SIZE]).astype(np.float64)
        target = labels[begin:begin + EVAL_BATCH_SIZE]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss_sum -= log_probs[np.arange(len(target)), target].sum()
        correct += int((logits.argmax(axis=1) == target).sum())
    seconds = time.perf_counter() - start
    return correct / len(images), loss_sum / len(images), seconds


class StepClock:
    """The harness's clock over one epoch, told as each training step begins, whoever runs the loop.

    Usually `Adapter.train_epoch` calls `step_begins()` before each `train_step`; a framework whose users train
    with its own loop (Keras's fit) calls it from that loop's batch-begin hook instead. When the first step, the
    warm-up, or WINDOW_STEPS steady steps are done, the clock synchronises the device, reads the time and closes
    a window as the next step begins; losses handed over with `add_loss` are read only then, outside the timed
    windows. `finish()` closes the last window.
    """

    def __init__(self, adapter: Adapter, result: "LoopResult", batch_size: int, steps_before: int):
        self.adapter, self.result, self.batch_size = adapter, result, batch_size
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
            self.window_start = time.perf_counter()
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
        elapsed = time.perf_counter() - self.window_start
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


def run_training(adapter: Adapter, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                 epochs: int, batch_size: int, seed: int, measure_accuracy: bool,
                 emit: Callable[..., None]) -> LoopResult:
    """Train for `epochs`, evaluating after each; `emit(event, **fields)` reports progress to the parent."""
    train_x, train_y = train
    steps_per_epoch = len(train_x) // batch_size
    if steps_per_epoch < 2:
        raise ValueError(f"{len(train_x)} training samples make {steps_per_epoch} batch(es) of {batch_size}; "
                         f"at least 2 are needed (one to warm up, one to measure)")
    result = LoopResult(warmup_steps=warmup_steps(steps_per_epoch))
    for epoch in range(epochs):
        # One data path for every framework: the epoch's samples gathered once, in its order, before the clock;
        # each step then takes a contiguous slice (the last partial batch is dropped by the slicing).
        order = epoch_order(len(train_x), seed, epoch)[:steps_per_epoch * batch_size]
        epoch_x, epoch_y = train_x[order], train_y[order]
        clock = StepClock(adapter, result, batch_size, steps_before=epoch * steps_per_epoch)
        epoch_loss = adapter.train_epoch(epoch_x, epoch_y, batch_size, clock)
        del epoch_x, epoch_y
        clock.finish()
        result.train_s += clock.train_s
        accuracy, test_loss, eval_s = evaluate(adapter, *test)
        result.eval_s += eval_s
        record = {"epoch": epoch + 1,
                  "train_loss": float(np.mean(clock.losses)) if clock.losses else epoch_loss,
                  "train_time_s": clock.train_s, "cumulative_train_time_s": result.train_s, "eval_time_s": eval_s,
                  "test_accuracy": accuracy if measure_accuracy else None,
                  "test_loss": test_loss if measure_accuracy else None}
        result.epochs.append(record)
        emit("epoch", epochs=epochs, samples_per_s=result.train_samples_per_s, **record)
        if record["train_loss"] is None or not np.isfinite(record["train_loss"]):
            raise FloatingPointError(f"training loss became {record['train_loss']} in epoch {epoch + 1}")
    last = result.epochs[-1]
    result.test_accuracy, result.test_loss = last["test_accuracy"], last["test_loss"]
    _, _, warm_eval_s = evaluate(adapter, *test)  # a second, warm pass: the first may include compilation
    result.inference_samples_per_s = len(test[0]) / warm_eval_s
    return result


def measure_inference(adapter: Adapter, images: np.ndarray) -> dict[str, float]:
    """Inference samples/s per batch size (as strings, for JSON), over the same INFERENCE_SAMPLES test images.

    One untimed batch of each size first: a new input shape can trigger tracing or compilation. Batch sizes
    larger than the test set are left out. Batch 1 is `measure_latency`'s job.
    """
    samples = min(len(images), INFERENCE_SAMPLES)
    throughput = {}
    for batch_size in INFERENCE_BATCH_SIZES:
        if batch_size == 1 or batch_size > samples:
            continue
        adapter.predict(images[:batch_size])
        starts = range(0, samples - batch_size + 1, batch_size)
        start_time = time.perf_counter()
        for begin in starts:
            adapter.predict(images[begin:begin + batch_size])  # returns NumPy: the work is finished
        throughput[str(batch_size)] = len(starts) * batch_size / (time.perf_counter() - start_time)
    return throughput


def measure_latency(adapter: Adapter, images: np.ndarray, calls: int = LATENCY_CALLS) -> list[float]:
    """Milliseconds of each of `calls` single-sample predictions (test images in turn), after a warm-up."""
    for index in range(LATENCY_WARMUP_CALLS):
        adapter.predict(images[index % len(images)][None])
    latencies = []
    for index in range(calls):
        sample = images[index % len(images)][None]
        start_time = time.perf_counter()
        adapter.predict(sample)
        latencies.append((time.perf_counter() - start_time) * 1000)
    return latencies


def measure_matmul_flops(adapter: Adapter) -> float:
    """This framework's fastest float32 square product, in FLOP/s: recorded beside the device's peak (one figure for
    every framework, bench.machine.device_peak), which utilisation is measured against."""
    size = PEAK_MATMUL_SIZE[adapter.device]
    step = adapter.matmul_step(size)
    step(), step()
    fastest = float("inf")
    for _ in range(PEAK_MATMUL_CALLS):
        start_time = time.perf_counter()
        step()
        fastest = min(fastest, time.perf_counter() - start_time)
    return 2 * size ** 3 / fastest
