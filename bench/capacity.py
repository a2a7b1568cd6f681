"""`bench capacity`: the largest training batch each framework fits on the device, and the memory it needs per sample.

Each try is a fresh process of the framework's environment (frameworks.child.run_capacity) that builds the task's
model and takes CAPACITY_STEPS training steps at one batch size, watched by the cell sampler. The search doubles
the batch from `start` until a try does not fit (or `max_batch` fits), then bisects between the largest batch that
fitted and the smallest that did not until they are within RESOLUTION of each other, at most `max_tries` tries in
all: a bounded search whose answer is a bracket, never a guess.

A try that runs out of memory is data, not an error: the framework's own out-of-memory error (CUDA, XLA, cuDNN,
oneDNN), the kernel's out-of-memory killer (SIGKILL) or, on a CPU, the process tree growing past `--memory-cap`
(the sampler kills it: a CPU never says "out of memory" before the machine swaps) all record the batch as too big.
Any other failure ends the search with its reason. Memory per sample is the slope of the peak memory of the tries
that fitted against their batch size (least squares): what one more sample costs, apart from the model, the
framework and the runtime, which are the intercept.
"""
from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import psutil

from bench import stored
from bench.envs import Interpreter
from bench.registry import FRAMEWORKS
from bench.runner import ChildOutcome, run_child
from frameworks.protocol import CellConfig

CAPACITY_STEPS = 2  # the first step allocates most of it (workspaces, optimizer state); the second confirms it
RESOLUTION = 1 / 16  # bisect until the largest fitting batch is known within this fraction
MAX_TRIES = 14
FITS, OUT_OF_MEMORY, FAILED = "fits", "out of memory", "failed"
#: What each framework says when an allocation fails: PyTorch and Paddle (CUDA), TensorFlow and JAX/XLA
#: (RESOURCE_EXHAUSTED / ResourceExhaustedError), MXNet, cuDNN and oneDNN, NumPy's own MemoryError.
OUT_OF_MEMORY_WORDS = re.compile(r"out of memory|ResourceExhausted|RESOURCE_EXHAUSTED|OutOfMemory|MemoryError|"
                                 r"CUDNN_STATUS_ALLOC_FAILED|CUBLAS_STATUS_ALLOC_FAILED|could not allocate|"
                                 r"failed to allocate|std::bad_alloc", re.IGNORECASE)


@dataclass(frozen=True)
class Try:
    batch_size: int
    outcome: str  # FITS, OUT_OF_MEMORY or FAILED (timeout included)
    peak_bytes: int | None  # the device's memory the try's processes used at their peak (fits only)
    step_s: float | None  # the last step's seconds (fits only)
    reason: str | None  # why it did not fit, in the process's or the sampler's words


@dataclass
class Capacity:
    framework: str
    task: str
    device: str
    precision: str
    memory: str  # what peak_bytes measured
    cap_bytes: int | None  # the memory cap on a CPU (None on a GPU: the device's own size is the cap)
    max_batch: int
    tries: list[Try] = field(default_factory=list)

    @property
    def largest(self) -> int | None:
        """The largest batch that fitted."""
        return max((t.batch_size for t in self.tries if t.outcome == FITS), default=None)

    @property
    def smallest_too_big(self) -> int | None:
        return min((t.batch_size for t in self.tries if t.outcome == OUT_OF_MEMORY), default=None)

    @property
    def failure(self) -> str | None:
        """The reason of a try that failed for something other than memory: the search stopped there."""
        return next((f"batch {t.batch_size}: {t.reason}" for t in self.tries if t.outcome == FAILED), None)

    @property
    def bytes_per_sample(self) -> float | None:
        """The slope of peak memory against batch size over the tries that fitted (two batches at least)."""
        points = [(t.batch_size, t.peak_bytes) for t in self.tries if t.outcome == FITS and t.peak_bytes]
        if len({batch for batch, _ in points}) < 2:
            return None
        batches, peaks = (np.array(values, dtype=float) for values in zip(*points))
        return float(np.polyfit(batches, peaks, 1)[0])

    @property
    def verdict(self) -> str:
        if self.failure:
            return f"stopped: {self.failure}"
        if self.largest is None:
            return f"not even batch {self.smallest_too_big} fits"
        if self.smallest_too_big is None:
            return f"fits up to --max-batch {self.max_batch} (not reached the device's limit)"
        return f"{self.largest} fits, {self.smallest_too_big} does not"


def default_cap_bytes() -> int:
    """A CPU's memory cap when none is given: half the memory available now, so a try never pushes the machine
    into swap (where it would slow down instead of failing, and take the harness with it)."""
    return psutil.virtual_memory().available // 2


def next_batch(tries: list[Try], start: int, max_batch: int) -> int | None:
    """The next batch to try, or None when the answer is known: double from START until one does not fit (or
    MAX_BATCH fits), then bisect the bracket until it is within RESOLUTION."""
    fitted = [t.batch_size for t in tries if t.outcome == FITS]
    too_big = [t.batch_size for t in tries if t.outcome == OUT_OF_MEMORY]
    if any(t.outcome == FAILED for t in tries):
        return None
    if not tries:
        return min(start, max_batch)
    low, high = max(fitted, default=0), min(too_big, default=None)
    if high is None:
        return None if low >= max_batch else min(low * 2, max_batch)
    if low == 0:
        return None if high <= 1 else high // 2  # halve down to the first batch that fits
    if high - low <= max(1, int(low * RESOLUTION)):
        return None
    return (low + high) // 2


def classify(outcome: ChildOutcome, on_gpu: bool) -> Try:
    """What one try's process left, as a Try (its batch filled in by the caller)."""
    document = outcome.document
    if document.get("status") == "ok":
        peak = outcome.memory.gpu_nvml_bytes if on_gpu else outcome.memory.host_tree_bytes
        if on_gpu and peak is None:
            peak = document.get("peak_gpu_allocated_bytes")
        return Try(0, FITS, peak, (document.get("step_s") or [None])[-1], None)
    reason = document.get("reason") or "no reason recorded"
    if outcome.over_cap or outcome.signal == "SIGKILL" or OUT_OF_MEMORY_WORDS.search(reason + outcome.log_tail):
        return Try(0, OUT_OF_MEMORY, None, None, reason)
    return Try(0, FAILED, None, None, reason)


def find_capacity(framework: str, task: str, interpreter: Interpreter, *, device: str, precision: str, mode: str,
                  start: int, max_batch: int, cap_bytes: int | None, max_tries: int = MAX_TRIES, seed: int = 0,
                  timeout_s: float = 600.0, on_try: Callable[[Try], None] = lambda t: None) -> Capacity:
    """Search FRAMEWORK's largest training batch for TASK on DEVICE (see the module docstring)."""
    found = Capacity(framework, task, device, precision,
                     "GPU memory above the idle context (NVML)" if device == "cuda" else
                     "host memory of the process tree (PSS, else RSS)", cap_bytes, max_batch)
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as scratch:
        while len(found.tries) < max_tries:
            batch = next_batch(found.tries, start, max_batch)
            if batch is None:
                break
            name = f"{FRAMEWORKS[framework].slug}--{task}--b{batch}"
            config = CellConfig(
                run_id="capacity", cell_id=f"capacity--{name}", framework=framework,
                adapter=FRAMEWORKS[framework].adapter, task=task, dataset="synthetic", data_folder=None,
                device=device, mode=mode, repeat=0, seed=seed, epochs=1, batch_size=batch, train_samples=batch,
                test_samples=0, spawned_at=time.time(), result_path=str(Path(scratch) / f"{name}.json"),
                precision=precision, capacity_steps=CAPACITY_STEPS)
            outcome = run_child(config, interpreter.python, Path(scratch) / f"{name}.log", timeout_s,
                                on_event=lambda event: None, memory_cap_bytes=cap_bytes)
            attempt = classify(outcome, device == "cuda")
            attempt = Try(batch, attempt.outcome, attempt.peak_bytes, attempt.step_s, attempt.reason)
            found.tries.append(attempt)
            on_try(attempt)
    return found


def as_row(found: Capacity) -> dict:
    """One framework's search as stored and reported."""
    return {"framework": found.framework, "task": found.task, "device": found.device, "precision": found.precision,
            "largest_batch": found.largest, "smallest_too_big": found.smallest_too_big,
            "bytes_per_sample": found.bytes_per_sample, "memory": found.memory, "cap_bytes": found.cap_bytes,
            "max_batch": found.max_batch, "verdict": found.verdict,
            "tries": [vars(attempt) for attempt in found.tries]}


def save(root: Path, results: list[Capacity], *, mode: str) -> Path:
    """`<root>/capacity-latest.json` (bench.stored), shown by the reports of the runs beside it."""
    return stored.CAPACITY.save(root, mode=mode, steps=CAPACITY_STEPS, rows=[as_row(found) for found in results])
