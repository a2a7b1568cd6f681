"""The adapter contract: the only thing a framework has to implement.

An adapter builds the spec's network from the shared initial weights and runs one training step or one forward
pass on NumPy batches the harness hands it. The harness owns everything else (data, batch order, the training
loop, clocks, statistics, records), so every framework is measured by the same code. An adapter must:

- load `weights` exactly (converting from the spec's canonical layout, see `frameworks.spec`), and set every
  optimizer hyperparameter of the spec explicitly, never relying on a framework default;
- convert each NumPy batch to its own tensors inside `train_step`/`predict` (the host-to-device copy is part of
  a real training step, in every framework alike). Every adapter gets its batches the same way: the harness
  gathers each epoch once, in the epoch's order, before the clock starts, and hands contiguous slices of it;
- make `synchronize` wait for all queued device work, so a clock read after it measures finished work;
- take dropout rates from `self.task.dropout` (in order of appearance), not literals: `bench parity` sets them
  to 0 to compare frameworks step by step;
- return its current parameters from `weights()` in the spec's canonical layout (the inverse of its load);
- seed its own random generators (dropout masks) from `seed`;
- raise `frameworks.errors.Unsupported` for a device, mode or precision it cannot run here, and say in
  `execution()` what a mode actually ran (graph, op by op, XLA, inductor; whether the optimizer update is inside
  the compiled region) and at what precision ("precision": the recipe, e.g. "bf16 autocast, float32 weights");
- run `precision` (frameworks.spec.PRECISIONS) by its framework's documented recipe: fp32 is float32 with TF32 off; tf32 lets
  float32 matmuls and convolutions use TensorFloat-32; bf16 and fp16 keep float32 weights and optimizer state
  and compute in 16 bits (mixed precision), fp16 with dynamic loss scaling; logits come back as float32;
- import only its own framework, and write down every framework-specific choice where it makes it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Protocol

import numpy as np

from frameworks.spec import Task


class Clock(Protocol):
    """What `Adapter.train_epoch` is handed: the harness's clock over one epoch (frameworks.clock.StepClock).

    Tell it as each training step begins, before the step's work is queued, and hand it each step's loss as
    `train_step` returned it: the clock reads losses only between its timed windows. An adapter that trains with
    its framework's own loop calls `finish()` as that loop's epoch ends, so the loop's teardown stays untimed (the
    harness calls it again after `train_epoch`; a second call does nothing)."""

    def step_begins(self) -> None: ...

    def add_loss(self, loss: Any) -> None: ...

    def finish(self) -> None: ...


class Adapter(ABC):
    #: Image layout the adapter computes in; the harness converts the data once, before any clock starts.
    data_layout: ClassVar[str] = "NCHW"
    #: Whether `gpu_memory_peak_bytes` reads the framework's own allocator.
    has_gpu_allocator_counter: ClassVar[bool] = False

    def __init__(self, task: Task, device: str, mode: str, seed: int, precision: str = "fp32"):
        self.task, self.device, self.mode, self.seed, self.precision = task, device, mode, seed, precision

    @staticmethod
    @abstractmethod
    def framework_version() -> str:
        """The exact version of the framework this process imported."""

    @abstractmethod
    def build(self, weights: dict[str, np.ndarray]) -> None:
        """Create the model for `self.task` with these initial weights, its loss and its optimizer."""

    @abstractmethod
    def train_step(self, images: np.ndarray, labels: np.ndarray) -> Any:
        """One optimizer step on one batch (dropout active); returns the batch's mean loss, possibly not ready."""

    @abstractmethod
    def predict(self, images: np.ndarray) -> np.ndarray:
        """Logits for a batch in inference mode (dropout off), as a NumPy array (which waits for the result)."""

    @abstractmethod
    def weights(self) -> dict[str, np.ndarray]:
        """Current parameters as float32 NumPy arrays, named and laid out as in `frameworks.spec.initial_weights`."""

    @abstractmethod
    def parameter_count(self) -> int:
        """Trainable parameters of the model as the framework counts them (must equal the spec's)."""

    @abstractmethod
    def synchronize(self) -> None:
        """Block until every queued operation on the device has finished."""

    @abstractmethod
    def matmul_step(self, size: int) -> Callable[[], None]:
        """A function multiplying two float32 `size` x `size` matrices already on the device, returning once the
        product is finished: the harness times it for the device's peak FLOP/s as this framework reaches it."""

    @abstractmethod
    def execution(self) -> dict[str, str]:
        """What actually runs in this mode, for the record: {"runs_as": "op by op" | "graph (tf.function)" |
        "XLA" | "inductor" | ..., "optimizer_update": where the update runs (inside the graph, or eagerly)}."""

    def train_epoch(self, images: np.ndarray, labels: np.ndarray, batch_size: int, clock: Clock) -> float | None:
        """One epoch over `images`, already in the epoch's order (gathered by the harness before the clock): one
        step per contiguous slice of `batch_size`, telling `clock` as each step begins.

        The loop every user writes: one `train_step` per batch, its loss to the clock. An adapter whose framework's
        users train with its own loop (Keras's fit) runs that instead and returns the epoch's mean loss."""
        for start in range(0, len(images) - batch_size + 1, batch_size):
            clock.step_begins()
            clock.add_loss(self.train_step(images[start:start + batch_size], labels[start:start + batch_size]))
        return None

    def loss_value(self, loss: Any) -> float:
        """A loss returned by `train_step` as a Python float."""
        return float(loss)

    def gpu_memory_peak_bytes(self) -> int | None:
        """Peak bytes held by the framework's GPU allocator, or None where it has no such counter."""
        return None

    def settings(self) -> dict[str, Any]:
        """Framework-specific choices and defaults in force (threads, determinism flags...), for the record."""
        return {}
