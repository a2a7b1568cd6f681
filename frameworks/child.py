"""Entry point of a cell's child process: `python -m frameworks.child CONFIG.json`.

Runs in the framework's own environment, imports exactly one framework, and writes the cell's outcome as a
JSON document (see frameworks.protocol). Phases are timed here (`with phase(...)`): interpreter startup, framework
import, data loading, model build, inference; the training loop itself lives in frameworks.loop, shared by every
framework, and its steps are timed by frameworks.clock.
"""
from __future__ import annotations

import importlib
import os
import resource
import sys
import time
import traceback

_started = time.time()

from contextlib import contextmanager  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Iterator  # noqa: E402

import numpy as np  # noqa: E402

from frameworks import data, lifeline, loop, protocol, spec  # noqa: E402
from frameworks.clock import Stopwatch  # noqa: E402
from frameworks.errors import Unsupported  # noqa: E402


def _load_data(config: protocol.CellConfig, task: spec.Task, layout: str):
    """The cell's train and test arrays, scaled to [0, 1] float32 in the adapter's layout, before any clock."""
    if config.dataset == data.SYNTHETIC:
        full_train, full_test = task.full_sizes
        found = data.synthetic(task, config.seed, config.train_samples or full_train,
                                  config.test_samples or full_test)
    else:
        found = data.load(config.dataset, Path(config.data_folder))

    def prepare(images: np.ndarray, labels: np.ndarray, count: int | None) -> tuple[np.ndarray, np.ndarray]:
        if count is not None and count < len(labels):  # the same stratified sample in every framework
            keep = data.subset_indices(labels, count, config.seed)
            images, labels = images[keep], labels[keep]
        images = images.astype(np.float32) / np.float32(255)
        return np.ascontiguousarray(images.transpose(0, 2, 3, 1) if layout == "NHWC" else images), labels

    train = prepare(found.train_x, found.train_y, config.train_samples)
    test = prepare(found.test_x, found.test_y, config.test_samples)
    return train, test, found.synthetic


def load_adapter(path: str):
    """Import the adapter class at "module:Class" (and with it the framework): only a cell's process does."""
    module_name, class_name = path.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def _enter_phase(name: str, settle_s: float = 0.0) -> None:
    """Tell the parent's memory sampler which phase starts; `settle_s` gives it time to take samples first."""
    protocol.emit("phase", name=name)
    time.sleep(settle_s)


@contextmanager
def phase(name: str, phases: dict[str, float], announce: bool = False) -> Iterator[None]:
    """Times the block into `phases[name + "_s"]` (not when it raises); with `announce`, first tells the parent's
    memory sampler that the phase starts (outside the timed block)."""
    if announce:
        _enter_phase(name)
    with Stopwatch() as watch:
        yield
    phases[f"{name}_s"] = watch.seconds


#: Top-level modules of every deep-learning framework the suite knows: a record lists those its process loaded, so
#: a row that carries another framework's import (memory, startup) is visible, and tested.
FRAMEWORK_MODULES = ("torch", "tensorflow", "jax", "keras", "mxnet", "paddle")


def loaded_frameworks() -> list[str]:
    return [name for name in FRAMEWORK_MODULES if name in sys.modules]


def run(config: protocol.CellConfig) -> dict:
    task = spec.TASKS[config.task]
    phases = {"startup_s": _started - config.spawned_at}
    with phase("import", phases):
        adapter_class = load_adapter(config.adapter)
    document = {"framework_version": adapter_class.framework_version()}

    with phase("data", phases):
        train, test, synthetic = _load_data(config, task, adapter_class.data_layout)
    protocol.emit("data", train_samples=len(train[0]), test_samples=len(test[0]), synthetic=synthetic)

    adapter = adapter_class(task, config.device, config.mode, config.seed, config.precision)
    if config.device != "cpu":  # the idle-context baseline of GPU memory: context and BLAS handle, no model yet
        adapter.matmul_step(1)()
        _enter_phase("device_ready", settle_s=0.3)
    with phase("build", phases, announce=True):
        adapter.build(spec.initial_weights(task, config.seed))
        adapter.synchronize()

    _enter_phase("train")
    result = loop.run_training(adapter, train, test, config.epochs, config.batch_size, config.seed,
                               measure_accuracy=not synthetic, emit=protocol.emit)
    with phase("inference", phases, announce=True):
        latencies_ms = loop.measure_latency(adapter, test[0])
    gpu_peak = adapter.gpu_memory_peak_bytes()
    host_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    _enter_phase("peak_matmul", settle_s=0.1)  # memory was read above: the product's operands are not the model's
    matmul_flops = loop.measure_matmul_flops(adapter)
    document.update(
        framework_settings=adapter.settings(),
        execution=adapter.execution(),
        loaded_frameworks=loaded_frameworks(),
        train_samples=len(train[0]), test_samples=len(test[0]), synthetic_data=synthetic,
        metrics={
            **phases,
            "first_step_s": result.first_step_s,
            "warmup_steps": result.warmup_steps,
            "warmup_s": result.warmup_s,
            "train_s": result.train_s,
            "steady_train_s": result.steady_s,
            "train_samples_per_s_windows": result.window_samples_per_s,
            "eval_s": result.eval_s,
            "inference_samples_per_s": result.inference_samples_per_s,
            "latency_batch1_ms_samples": latencies_ms,
            "matmul_flops_per_s": matmul_flops,
            "test_accuracy": result.test_accuracy,
            "test_loss": result.test_loss,
            "final_train_loss": result.epochs[-1]["train_loss"],
            "peak_host_rss_bytes": host_peak,
            "peak_gpu_allocated_bytes": gpu_peak,
            "peak_gpu_reason": None if gpu_peak is not None else (
                "no GPU used (device cpu)" if config.device == "cpu" else "framework has no allocator counter"),
        },
        epochs_detail=result.epochs,
    )
    return document


def _synthetic_train(task: spec.Task, seed: int, samples: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """Seeded synthetic training samples, scaled to [0, 1] float32, in the adapter's layout."""
    found = data.synthetic(task, seed, samples, 0)
    images = found.train_x.astype(np.float32) / np.float32(255)
    if layout == "NHWC":
        images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    return images, found.train_y


def run_parity(config: protocol.CellConfig) -> dict:
    """`bench parity`: PARITY_STEPS steps with dropout off on the harness's batches of synthetic data; per-step
    losses in the document, final weights (canonical layout) in an .npz file beside it."""
    task = replace(spec.TASKS[config.task], dropout=(0.0,) * len(spec.TASKS[config.task].dropout))
    adapter_class = load_adapter(config.adapter)
    samples = config.parity_steps * config.batch_size
    images, labels = _synthetic_train(task, config.seed, samples, adapter_class.data_layout)
    adapter = adapter_class(task, config.device, config.mode, config.seed, config.precision)
    adapter.build(spec.initial_weights(task, config.seed))
    losses = []
    for indices in loop.train_batches(samples, config.batch_size, config.seed, epoch=0):
        loss = adapter.train_step(images[indices], labels[indices])
        adapter.synchronize()
        losses.append(adapter.loss_value(loss))
    weights = adapter.weights()
    np.savez(config.result_path + ".weights.npz", **weights)
    return {"framework_version": adapter_class.framework_version(), "losses": losses,
            "parameter_count": adapter.parameter_count(), "weights_path": config.result_path + ".weights.npz"}


def run_capacity(config: protocol.CellConfig) -> dict:
    """One `bench capacity` try: build the model and take CAPACITY_STEPS training steps at the config's batch size
    (one synthetic batch, over and over); the parent's sampler watches the memory. Running out of it raises, or the
    kernel or the parent kills the process: either way the parent records this batch as too big."""
    task = spec.TASKS[config.task]
    adapter_class = load_adapter(config.adapter)
    images, labels = _synthetic_train(task, config.seed, config.batch_size, adapter_class.data_layout)
    adapter = adapter_class(task, config.device, config.mode, config.seed, config.precision)
    if config.device != "cpu":  # the GPU baseline, as in a benchmark cell
        adapter.matmul_step(1)()
        _enter_phase("device_ready", settle_s=0.3)
    _enter_phase("train")
    adapter.build(spec.initial_weights(task, config.seed))
    step_s = []
    for _ in range(config.capacity_steps):
        with Stopwatch() as watch:
            loss = adapter.train_step(images, labels)
            adapter.synchronize()
        step_s.append(watch.seconds)
    if not np.isfinite(adapter.loss_value(loss)):
        raise FloatingPointError(f"training loss became {adapter.loss_value(loss)} at batch {config.batch_size}")
    return {"framework_version": adapter_class.framework_version(), "step_s": step_s,
            "peak_gpu_allocated_bytes": adapter.gpu_memory_peak_bytes(),
            "peak_host_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main(argv: list[str]) -> int:
    lifeline.tie_to_parent()  # first: a harness killed outright (SIGKILL) takes this cell with it
    config = protocol.CellConfig.from_file(argv[1])
    protocol.emit("started", pid=os.getpid())
    try:
        kind = run_parity if config.parity_steps else run_capacity if config.capacity_steps else run
        document = {"status": "ok", "reason": None, **kind(config)}
    except Unsupported as error:
        document = {"status": "unsupported", "reason": str(error)}
    except Exception as error:  # recorded as a failed cell; the traceback goes to the log
        traceback.print_exc()
        document = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
    protocol.write_json_atomic(config.result_path, document)
    return 0


if __name__ == "__main__":
    status = main(sys.argv)
    # The result is written: exit now, without the interpreter's teardown (a framework's atexit handlers and thread
    # pools take 0.5-2 s and measure nothing). Output is flushed first; worker processes die with their lifeline.
    sys.stdout.flush(), sys.stderr.flush()
    os._exit(status)
