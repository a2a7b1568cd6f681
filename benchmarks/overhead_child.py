"""One framework's half of `benchmarks.overhead`: the harness against a hand-written loop, in one process.

Runs in the framework's own environment (`python -m benchmarks.overhead_child --adapter MODULE:CLASS ...`, cwd the
repository root, environment from `bench.runner.child_environment`). Both sides train mnist_mlp in native mode on
the same synthetic data, prepared as a cell prepares it, in the same batches, with the same warm-up steps left out:
(a) the adapter through `frameworks.loop.run_training`, the code every cell runs; (b) the framework's hand loop
(`benchmarks.hand_loops`). Each side's figure per round is what a cell reports: the median samples/s of its
windows of `frameworks.clock.WINDOW_STEPS` steps. Rounds alternate which side goes first (AB, BA, AB...), so a machine
that slows down or speeds up during the run weighs on both alike. Prints one JSON line: the per-round samples/s
of each side.
"""
from __future__ import annotations

import argparse
import importlib
import json

import numpy as np

from frameworks import clock, data, loop, spec
from frameworks.child import load_adapter

TASK = spec.MNIST_MLP
TEST_SAMPLES = loop.EVAL_BATCH_SIZE  # run_training evaluates after its epoch: one batch keeps that short


def _prepare(images: np.ndarray, layout: str) -> np.ndarray:
    """Pixels / 255 as float32 in the adapter's layout: what frameworks/child.py `_load_data` does for a cell."""
    images = images.astype(np.float32) / np.float32(255)
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1) if layout == "NHWC" else images)


def _hand_module(adapter: str):
    """benchmarks.hand_loops.X for the adapter frameworks.X:Class (Keras's three backends share one)."""
    adapter_module = adapter.split(":")[0]
    return importlib.import_module(f"benchmarks.hand_loops.{adapter_module.rsplit('.', 1)[1]}")


def measure(adapter_path: str, rounds: int, steps: int, seed: int) -> dict:
    adapter_class = load_adapter(adapter_path)
    hand_module = _hand_module(adapter_path)
    batch_size = TASK.batch_size
    train_samples = (steps + clock.WARMUP_STEPS) * batch_size
    found = data.synthetic(TASK, seed, train_samples, TEST_SAMPLES)
    train = (_prepare(found.train_x, adapter_class.data_layout), found.train_y)
    test = (_prepare(found.test_x, adapter_class.data_layout), found.test_y)
    batches = list(loop.train_batches(train_samples, batch_size, seed, epoch=0))  # run_training's epoch 0
    warmup = clock.warmup_steps(len(batches))
    steady_samples = (len(batches) - warmup) * batch_size

    weights = spec.initial_weights(TASK, seed)
    adapter = adapter_class(TASK, "cpu", "native", seed)
    adapter.build(weights)
    hand = hand_module.make(TASK, weights, seed)

    def harness() -> float:
        result = loop.run_training(adapter, train, test, epochs=1, batch_size=batch_size, seed=seed,
                                   measure_accuracy=False, emit=lambda *args, **kwargs: None)
        assert result.steady_samples == steady_samples  # both sides time the same batches
        return float(np.median(result.window_samples_per_s))  # a cell's train_samples_per_s

    def hand_loop() -> float:
        return float(np.median(hand.window_rates(*train, batches, warmup, clock.WINDOW_STEPS)))

    figures = {"harness": [], "hand": []}
    for round_index in range(rounds):
        order = ("harness", "hand") if round_index % 2 == 0 else ("hand", "harness")
        for side in order:
            figures[side].append((harness if side == "harness" else hand_loop)())
    return {"adapter": adapter_path, "framework_version": adapter_class.framework_version(),
            "hand_loop": hand_module.__name__, "steady_steps": len(batches) - warmup, "warmup_steps": warmup,
            "batch_size": batch_size, "window_steps": clock.WINDOW_STEPS,
            "harness_rounds_samples_per_s": figures["harness"], "hand_rounds_samples_per_s": figures["hand"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", required=True, help="module:Class (bench.registry)")
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(measure(args.adapter, args.rounds, args.steps, args.seed)), flush=True)


if __name__ == "__main__":
    main()
