"""The training loop every framework runs through: batch order, epochs, evaluation; inference, latency, matmul peak.

The harness owns batching: each epoch's permutation comes from (seed, epoch) alone, so every framework and every
process sees the same batches; the epoch is gathered in that order once, before the clock, and every adapter
trains on contiguous slices of it; the last partial training batch is dropped; evaluation covers the whole test set.
The training steps are timed by `frameworks.clock.StepClock` (first step, warm-up, steady windows). Clocks are read
only after `adapter.synchronize()`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from frameworks.clock import StepClock, Stopwatch, Timer, TrainTiming, warmup_steps
from frameworks.contract import Adapter

EVAL_BATCH_SIZE = 1000  # evaluation's batch; inference throughput is measured on its warm batches
LATENCY_CALLS = 200  # single-sample predictions timed one by one, after LATENCY_WARMUP_CALLS untimed ones
LATENCY_WARMUP_CALLS = 10
PEAK_MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}
PEAK_MATMUL_CALLS = 3  # timed products after two warm ones; the fastest gives the peak


def epoch_order(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of training samples for one epoch: a function of (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


def train_batches(num_samples: int, batch_size: int, seed: int, epoch: int) -> Iterator[np.ndarray]:
    """Index arrays of the epoch's full batches; the last partial batch is dropped."""
    order = epoch_order(num_samples, seed, epoch)
    for start in range(0, num_samples - batch_size + 1, batch_size):
        yield order[start:start + batch_size]


@dataclass
class LoopResult(TrainTiming):
    """The clock's figures (TrainTiming: first step, warm-up, steady windows) and the rest of the run's."""
    epochs: list[dict] = field(default_factory=list)
    train_s: float = 0.0
    eval_s: float = 0.0
    test_accuracy: float | None = None
    test_loss: float | None = None
    inference_samples_per_s: float | None = None


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float  # mean cross-entropy
    seconds: float
    warm_samples_per_s: float | None  # over its full batches after the first (a first call may compile); None: none


def evaluate(adapter: Adapter, images: np.ndarray, labels: np.ndarray,
             timer: Timer = time.perf_counter) -> Evaluation:
    """Accuracy and loss over the whole test set, computed from the adapter's logits, and how fast it went."""
    correct, loss_sum, warm_samples, warm_s = 0, 0.0, 0, 0.0
    adapter.synchronize()
    with Stopwatch(timer) as whole:
        for begin in range(0, len(images), EVAL_BATCH_SIZE):
            with Stopwatch(timer) as batch:
                logits = adapter.predict(images[begin:begin + EVAL_BATCH_SIZE])  # NumPy: the work is finished
            if begin > 0 and len(logits) == EVAL_BATCH_SIZE:
                warm_samples, warm_s = warm_samples + len(logits), warm_s + batch.seconds
            logits = logits.astype(np.float64)
            target = labels[begin:begin + EVAL_BATCH_SIZE]
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss_sum -= log_probs[np.arange(len(target)), target].sum()
            correct += int((logits.argmax(axis=1) == target).sum())
    return Evaluation(correct / len(images), loss_sum / len(images), whole.seconds,
                      warm_samples / warm_s if warm_samples else None)


def run_training(adapter: Adapter, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                 epochs: int, batch_size: int, seed: int, measure_accuracy: bool,
                 emit: Callable[..., None], timer: Timer = time.perf_counter) -> LoopResult:
    """Train for `epochs`, evaluating after each; `emit(event, **fields)` reports progress to the parent. `timer`
    is every clock's here (a fake one in tests)."""
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
        clock = StepClock(adapter, result, batch_size, steps_before=epoch * steps_per_epoch, timer=timer)
        epoch_loss = adapter.train_epoch(epoch_x, epoch_y, batch_size, clock)
        del epoch_x, epoch_y
        clock.finish()
        result.train_s += clock.train_s
        emit("phase", name="eval")  # the parent's meters (energy) tell training from evaluation
        evaluation = evaluate(adapter, *test, timer=timer)
        emit("phase", name="train")
        result.eval_s += evaluation.seconds
        record = {"epoch": epoch + 1,
                  "train_loss": float(np.mean(clock.losses)) if clock.losses else epoch_loss,
                  "train_time_s": clock.train_s, "cumulative_train_time_s": result.train_s,
                  "eval_time_s": evaluation.seconds,
                  "test_accuracy": evaluation.accuracy if measure_accuracy else None,
                  "test_loss": evaluation.loss if measure_accuracy else None}
        result.epochs.append(record)
        emit("epoch", epochs=epochs, samples_per_s=result.samples_per_s, **record)
        if record["train_loss"] is None or not np.isfinite(record["train_loss"]):
            raise FloatingPointError(f"training loss became {record['train_loss']} in epoch {epoch + 1}")
    last = result.epochs[-1]
    result.test_accuracy, result.test_loss = last["test_accuracy"], last["test_loss"]
    # Inference throughput: the last evaluation's warm batches; a test set of one batch (and a ragged last batch,
    # a new shape) gives none, and then a second pass, warm, is timed whole.
    result.inference_samples_per_s = evaluation.warm_samples_per_s
    if result.inference_samples_per_s is None:
        emit("phase", name="eval")
        result.inference_samples_per_s = len(test[0]) / evaluate(adapter, *test, timer=timer).seconds
    return result


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
