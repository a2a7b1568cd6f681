"""Figures derived in the parent from what a cell's child measured (the child needs only NumPy): the throughput's
confidence interval, latency percentiles, time-to-accuracy, FLOP/s and utilisation, the sampled memory peaks, and
energy per training sample and per 1,000 inferences.
"""
from __future__ import annotations

import numpy as np

from bench import stats
from bench.catalogue import CATALOGUE, TRAIN_SPEED
from bench.sampler import Energy, MemoryPeaks
from frameworks.loop import LATENCY_CALLS, LATENCY_WARMUP_CALLS
from frameworks.spec import Task


def derive(metrics: dict, epochs: list[dict], task: Task, dataset: str, memory: MemoryPeaks,
           device_peak: tuple[float | None, str], energy: Energy, trained_samples: int) -> dict:
    """METRICS completed with every derived field (a new dict; the child's own fields are kept). `device_peak` is
    the device's peak FLOP/s at the cell's precision and its source (bench.machine.device_peak): one figure for every framework.
    `trained_samples`: the samples the training phase stepped on (every epoch)."""
    derived = {**metrics, **summaries(metrics)}
    derived.update({
        "time_to_first_step_s": sum(metrics[phase] for phase in ("startup_s", "import_s", "build_s",
                                                                  "first_step_s")),
        "launch_s": metrics["startup_s"] + metrics["import_s"],
    })
    derived.update(time_to_accuracy(epochs, task, dataset))
    flops = task.train_flops_per_sample
    achieved = flops * derived[TRAIN_SPEED.name]
    peak, peak_source = device_peak
    if metrics["matmul_flops_per_s"] > (peak or 0):  # the estimate fell short of what the device did
        peak, peak_source = metrics["matmul_flops_per_s"], "fastest float32 matmul measured in this cell"
    derived.update({
        "train_flops_per_sample": flops,
        "achieved_train_flops_per_s": achieved,
        "device_peak_flops_per_s": peak,
        "device_peak_source": peak_source,
        "utilisation_percent": 100 * achieved / peak if peak else None,
        "peak_host_tree_bytes": memory.host_tree_bytes,
        "peak_host_tree_kind": memory.host_tree_kind,
        "peak_gpu_nvml_bytes": memory.gpu_nvml_bytes,
        "gpu_nvml_baseline_bytes": memory.gpu_nvml_baseline_bytes,
        "peak_gpu_nvml_reason": memory.gpu_nvml_reason,
        **energy_figures(energy, trained_samples),
    })
    return derived


def energy_figures(energy: Energy, trained_samples: int) -> dict:
    """Joules per training sample (the training phase: warm-up and compilation in, evaluation out) and per 1,000
    single-sample predictions (the latency phase, its warm-up calls counted); null with the reason when the device
    has no readable counter."""
    phases = energy.joules_by_phase
    if phases is None:
        return {"train_energy_j_per_sample": None, "inference_energy_j_per_1000": None, "energy_source": None,
                "energy_reason": energy.reason}
    train, inference = phases.get("train"), phases.get("inference")
    return {"train_energy_j_per_sample": train / trained_samples if train and trained_samples else None,
            "inference_energy_j_per_1000": 1000 * inference / (LATENCY_CALLS + LATENCY_WARMUP_CALLS)
            if inference else None,
            "energy_source": energy.source, "energy_reason": None if train and inference else
            "the counter did not move during the phase (too short for its resolution)"}


def summaries(metrics: dict) -> dict:
    """Every catalogue metric the parent derives from the cell's own samples: a median with its distribution-free
    interval and the samples' CV ("median"), or a percentile ("p50", "p99")."""
    found = {}
    for metric in CATALOGUE:
        samples = metrics.get(metric.samples) if metric.summary else None
        if not samples:
            continue
        if metric.summary == "median":
            summary = stats.summarize(samples)
            found.update(zip((metric.name, *metric.interval_fields),
                             (summary.median, summary.ci_low, summary.ci_high, summary.ci_level, summary.cv)))
        else:
            found[metric.name] = float(np.percentile(samples, int(metric.summary[1:])))
    return found


def time_to_accuracy(epochs: list[dict], task: Task, dataset: str) -> dict:
    """Training wall-clock (evaluation excluded) at the end of the first epoch whose test accuracy reaches the
    task's target for this dataset; resolution one epoch. Null with a reason when not reached or not measurable."""
    target = task.accuracy_targets.get(dataset)
    result = {"accuracy_target": target, "time_to_accuracy_s": None, "time_to_accuracy_epoch": None}
    if target is None:
        return {**result, "time_to_accuracy_reason": f"no accuracy target for {dataset}"}
    for epoch in epochs:
        if epoch["test_accuracy"] is not None and epoch["test_accuracy"] >= target:
            return {**result, "time_to_accuracy_s": epoch["cumulative_train_time_s"],
                    "time_to_accuracy_epoch": epoch["epoch"], "time_to_accuracy_reason": None}
    return {**result, "time_to_accuracy_reason": f"not reached in {len(epochs)} epoch(s)"}


def apply_run_device_peak(records: list[dict]) -> list[dict]:
    """One device peak per run, device and precision, for every framework: the largest of the records' estimates
    and of the float32 matmuls every framework of the run reached on that device (a virtual machine's nominal clock can
    understate the peak; no framework's training outruns the device's best product). Utilisation is recomputed
    against it, so it means the same for every row. Records of other runs never mix."""
    best: dict[tuple, tuple[float, str]] = {}
    for record in records:
        found = record.get("metrics") or {}
        key = (record["run_id"], record["device"], record.get("precision", "fp32"))
        candidates = ((found.get("matmul_flops_per_s"), f"fastest float32 matmul of any framework in the run "
                                                        f"({record['framework']})"),
                      (found.get("device_peak_flops_per_s"), found.get("device_peak_source")))
        for value, source in candidates:
            if value and value > best.get(key, (0.0, ""))[0]:
                best[key] = (value, source)
    for record in records:
        found = record.get("metrics")
        key = (record["run_id"], record["device"], record.get("precision", "fp32"))
        if found and key in best and found.get("achieved_train_flops_per_s") is not None:
            peak, source = best[key]
            found.update(device_peak_flops_per_s=peak, device_peak_source=source,
                         utilisation_percent=100 * found["achieved_train_flops_per_s"] / peak)
    return records
