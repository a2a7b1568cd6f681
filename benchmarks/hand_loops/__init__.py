"""Minimal hand-written training loops of mnist_mlp, one module per adapter module, to measure the harness against.

Each module is what a good user of that framework writes for the spec's MLP in the framework's native mode (the
way its own documentation trains for speed: PyTorch and Paddle eager, TensorFlow's step in a tf.function, Keras's
fit with its default jit_compile, MXNet hybridized; the framework's stock optimizer unless the module says
otherwise) and exposes `make(task, weights, seed)`, returning an object with `window_rates(images, labels, batches,
warmup, window)`: train on `batches` (index arrays into the NumPy data, in the harness's order) and return the
samples/s of each run of `window` batches after the first `warmup`, each timed between two synchronised clock
reads — the statistic a cell reports is the median of the same windows. Like the harness (frameworks.loop), a loop
gathers the epoch in that order once, before its clock, and steps on contiguous slices of it.
Most loops are a `step` per batch and share the timing below (`StepLoop`); Keras users call `fit`, so its module
times fit from the inside instead.

Modules import only their own framework (and NumPy), like the adapters: each runs in its framework's environment.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod

import numpy as np


class StepLoop(ABC):
    """A loop of `step(images, labels)` calls, each starting from the NumPy batch as an adapter's train_step does."""

    @abstractmethod
    def step(self, images: np.ndarray, labels: np.ndarray) -> object:
        """One optimizer step on one NumPy batch (converted here); returns the loss, not read."""

    def sync(self) -> None:
        """Wait for queued work; a no-op where every op has finished when it returns (CPU eager)."""

    def window_rates(self, images: np.ndarray, labels: np.ndarray, batches: list[np.ndarray], warmup: int,
                     window: int) -> list[float]:
        order, size = np.concatenate(batches), len(batches[0])
        images, labels = images[order], labels[order]
        slices = [slice(start, start + size) for start in range(0, len(order), size)]
        for batch in slices[:warmup]:
            self.step(images[batch], labels[batch])
        self.sync()
        rates, start = [], time.perf_counter()
        for count, batch in enumerate(slices[warmup:], 1):  # the user's loop: step on each batch
            self.step(images[batch], labels[batch])
            if count % window == 0:  # no loss read, a clock read every `window` steps
                self.sync()
                now = time.perf_counter()
                rates.append(window * size / (now - start))
                start = now
        return rates
