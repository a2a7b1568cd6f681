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

Per precision (`--precision`): every framework at that precision, including PyTorch, is compared with PyTorch in
float32, the spec's arithmetic, so the table says how far each mixed-precision recipe moves from it. The
tolerances for bf16 and fp16 (TOLERANCES) are five to eight times what the recipes measured here: bfloat16 keeps
8 bits of mantissa (a relative rounding of 2^-9 = 2e-3 per operation), float16 11 (2^-12 = 2.4e-4). Biases say
little at 16 bits (the conv biases' cancelling sums move by a fifth in PyTorch's own bf16 recipe); losses and
kernels stay well below the 1e-1 to 1 of a wrong layout or formula.
"""
from __future__ import annotations

import itertools
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
FP32_TOLERANCES = {"loss": 1e-5, "kernel": 1e-4, "bias": 3e-2}
TOLERANCES: dict[str, dict[str, float]] = {
    "fp32": FP32_TOLERANCES,
    # measured here (largest over the frameworks and both tasks): bf16 loss 6.3e-4, kernels 6.2e-3, biases 0.27;
    # fp16 loss 3.6e-4, kernels 1.7e-3, biases 6.1e-2 (PyTorch's own recipe: 0.19 and 5.2e-2 on the biases)
    "bf16": {"loss": 5e-3, "kernel": 3e-2, "bias": 5e-1},
    "fp16": {"loss": 3e-3, "kernel": 1e-2, "bias": 2e-1},
    "tf32": {"loss": 3e-3, "kernel": 1e-2, "bias": 2e-1},  # float16's 10-bit mantissa in products (GPUs: unmeasured)
}


@dataclass
class ParityRow:
    framework: str
    task: str
    status: str  # pass, FAIL, or the child's status when it did not finish
    differences: dict[str, float] | None = None  # loss, kernel, bias: the largest relative difference of each
    worst: dict[str, str] | None = None  # kernel, bias: the tensor that differs most
    parameter_count: int | None = None
    reason: str | None = None
    precision: str = "fp32"  # the framework's; the reference is always fp32


def _run(framework: str, task: str, interpreter: Interpreter, scratch: Path, seed: int, timeout_s: float,
         precision: str = "fp32"):
    limit = FRAMEWORKS[framework].limit_for("cpu", "native", interpreter.origin, precision)
    if limit is not None:
        return {"status": "unsupported", "reason": limit.why}
    name = config_name(framework, task, precision)
    config = CellConfig(
        run_id="parity", cell_id=f"parity--{name}", framework=framework, precision=precision,
        adapter=FRAMEWORKS[framework].adapter, task=task,
        dataset="synthetic", data_folder=None, device="cpu", mode="native", repeat=0, seed=seed, epochs=1,
        batch_size=TASKS[task].batch_size, train_samples=None, test_samples=None, spawned_at=time.time(),
        result_path=str(scratch / f"{name}.json"), parity_steps=PARITY_STEPS)
    outcome = run_child(config, interpreter.python, scratch / f"{name}.log", timeout_s, on_event=lambda event: None)
    document = outcome.document
    if document.get("status") == "ok":
        with np.load(document["weights_path"]) as archive:
            document["weights"] = {name: archive[name] for name in archive.files}
    elif outcome.log_tail and document.get("status") != "unsupported":
        document["reason"] = f"{document.get('reason')}; log: {outcome.log_tail.splitlines()[-1]}"
    return document


def config_name(framework: str, task: str, precision: str = "fp32") -> str:
    return f"{FRAMEWORKS[framework].slug}--{task}--{precision}"


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
               precisions: tuple[str, ...] = ("fp32",), on_row=lambda row: None) -> list[ParityRow]:
    """Rows for every (framework, task, precision), each against the reference (PyTorch, which must be among
    `frameworks`) in float32."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-parity-") as scratch:
        for task in tasks:
            reference = _run(REFERENCE, task, frameworks[REFERENCE], Path(scratch), seed, timeout_s)
            for precision, (framework, interpreter) in itertools.product(precisions, frameworks.items()):
                result = reference if (framework, precision) == (REFERENCE, "fp32") else _run(
                    framework, task, interpreter, Path(scratch), seed, timeout_s, precision)
                row = ParityRow(framework, task, result.get("status", "failed"), reason=result.get("reason"),
                                parameter_count=result.get("parameter_count"), precision=precision)
                if result.get("status") == "ok" and reference.get("status") == "ok":
                    row.differences, row.worst = compare(result, reference)
                    problems = []
                    if row.parameter_count != TASKS[task].parameter_count:
                        problems.append(f"{row.parameter_count:,} parameters, the spec has "
                                        f"{TASKS[task].parameter_count:,}")
                    problems += [f"{kind} differs by {row.differences[kind]:.1e} > {limit:g}"
                                 for kind, limit in TOLERANCES[precision].items()
                                 if not row.differences[kind] <= limit]
                    row.status, row.reason = ("FAIL", "; ".join(problems)) if problems else ("pass", None)
                elif result.get("status") == "ok":
                    row.status, row.reason = "FAIL", f"the {REFERENCE} reference failed: {reference.get('reason')}"
                rows.append(row)
                on_row(row)
    return rows
