"""`bench parity`: proof that every adapter computes the spec, step by step, against the PyTorch reference.

For each task, each framework builds the spec's network from the shared initial weights, with dropout off, and
takes PARITY_STEPS optimizer steps on identical batches (seeded synthetic data, the harness's batch order) in its
own process. Compared with PyTorch:
- loss: max over steps of |loss - loss_ref| / |loss_ref|;
- weights: max over tensors of ||w - w_ref|| / ||w_ref|| (Euclidean norms, per tensor), kernels and biases
  apart;
- the parameter count each framework reports for its own model, which must equal the spec's.

Tolerances (float32 on CPU): losses 1e-5 and kernels 1e-4 relative. Biases get 3e-2: a conv bias's gradient sums
batch x height x width terms (65,536 for conv1) that largely cancel, so float32 rounding alone moves it by
1e-3 to 1e-2 relative (PyTorch float32 against PyTorch float64: 1.1e-3; Keras on torch, whose convolutions run
channels-last: 8e-3). A wrong layout, padding, flatten order, optimizer formula or loss shows up as 1e-1 to 1.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.envs import Interpreter
from bench.registry import FRAMEWORKS
from bench.runner import run_child
from frameworks.protocol import CellConfig
from frameworks.spec import TASKS

REFERENCE = "pytorch"
PARITY_STEPS = 5
TOLERANCES = {"loss": 1e-5, "kernel": 1e-4, "bias": 3e-2}


@dataclass
class ParityRow:
    framework: str
    task: str
    status: str  # pass, FAIL, or the child's status when it did not finish
    differences: dict[str, float] | None = None  # loss, kernel, bias: the largest relative difference of each
    worst: dict[str, str] | None = None  # kernel, bias: the tensor that differs most
    parameter_count: int | None = None
    reason: str | None = None


def _run(framework: str, task: str, interpreter: Interpreter, scratch: Path, seed: int, timeout_s: float):
    config = CellConfig(
        run_id="parity", cell_id=f"parity--{framework}--{task}", framework=framework,
        adapter=FRAMEWORKS[framework].adapter, task=task,
        dataset="synthetic", data_folder=None, device="cpu", mode="native", repeat=0, seed=seed, epochs=1,
        batch_size=TASKS[task].batch_size, train_samples=None, test_samples=None, spawned_at=time.time(),
        result_path=str(scratch / f"{config_name(framework, task)}.json"), parity_steps=PARITY_STEPS)
    outcome = run_child(config, interpreter.python, scratch / f"{config_name(framework, task)}.log", timeout_s,
                        on_event=lambda event: None)
    document = outcome.document
    if document.get("status") == "ok":
        with np.load(document["weights_path"]) as archive:
            document["weights"] = {name: archive[name] for name in archive.files}
    elif outcome.log_tail:
        document["reason"] = f"{document.get('reason')}; log: {outcome.log_tail.splitlines()[-1]}"
    return document


def config_name(framework: str, task: str) -> str:
    return f"{framework}--{task}".replace("[", "-").replace("]", "")


def compare(result: dict, reference: dict) -> tuple[dict[str, float], dict[str, str]]:
    """Largest relative differences of losses, kernels and biases, and the tensors where they are."""
    losses, reference_losses = np.asarray(result["losses"]), np.asarray(reference["losses"])
    differences = {"loss": float(np.max(np.abs(losses - reference_losses) / np.abs(reference_losses)))}
    worst = {}
    for kind in ("kernel", "bias"):
        per_tensor = {name: float(np.linalg.norm(result["weights"][name] - ref)) / float(np.linalg.norm(ref))
                      for name, ref in reference["weights"].items() if name.endswith(f".{kind}")}
        worst[kind] = max(per_tensor, key=per_tensor.get)
        differences[kind] = per_tensor[worst[kind]]
    return differences, worst


def run_parity(frameworks: dict[str, Interpreter], tasks: tuple[str, ...], seed: int, timeout_s: float,
               on_row=lambda row: None) -> list[ParityRow]:
    """Rows for every (framework, task); the reference (PyTorch) must be among `frameworks`."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-parity-") as scratch:
        for task in tasks:
            reference = _run(REFERENCE, task, frameworks[REFERENCE], Path(scratch), seed, timeout_s)
            for framework, interpreter in frameworks.items():
                result = reference if framework == REFERENCE else _run(framework, task, interpreter,
                                                                        Path(scratch), seed, timeout_s)
                row = ParityRow(framework, task, result.get("status", "failed"), reason=result.get("reason"),
                                parameter_count=result.get("parameter_count"))
                if result.get("status") == "ok" and reference.get("status") == "ok":
                    row.differences, row.worst = compare(result, reference)
                    problems = []
                    if row.parameter_count != TASKS[task].parameter_count:
                        problems.append(f"{row.parameter_count:,} parameters, the spec has "
                                        f"{TASKS[task].parameter_count:,}")
                    problems += [f"{kind} differs by {row.differences[kind]:.1e} > {limit:g}"
                                 for kind, limit in TOLERANCES.items() if not row.differences[kind] <= limit]
                    row.status, row.reason = ("FAIL", "; ".join(problems)) if problems else ("pass", None)
                elif result.get("status") == "ok":
                    row.status, row.reason = "FAIL", f"the {REFERENCE} reference failed: {reference.get('reason')}"
                rows.append(row)
                on_row(row)
    return rows
