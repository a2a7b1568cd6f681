"""Figures derived in the parent from what a cell's child measured (the child needs only NumPy): the throughput's
confidence interval, latency percentiles, time-to-accuracy, FLOP/s and utilisation, and the sampled memory peaks.
"""
from __future__ import annotations

import numpy as np

from bench import stats
from bench.sampler import MemoryPeaks
from bench.spec import Task

LATENCY_PERCENTILES = (50, 90, 99)


def derive(metrics: dict, epochs: list[dict], task: Task, dataset: str, memory: MemoryPeaks) -> dict:
    """METRICS completed with every derived field (a new dict; the child's own fields are kept)."""
    derived = dict(metrics)
    throughput = stats.summarize(metrics["train_samples_per_s_windows"])
    derived.update({
        "train_samples_per_s": throughput.median,
        "train_samples_per_s_ci_low": throughput.ci_low,
        "train_samples_per_s_ci_high": throughput.ci_high,
        "train_samples_per_s_ci_level": throughput.ci_level,
        "train_samples_per_s_cv": throughput.cv,
        "time_to_first_step_s": sum(metrics[phase] for phase in ("startup_s", "import_s", "build_s",
                                                                  "first_step_s")),
    })
    latencies = metrics["latency_batch1_ms_samples"]
    for percentile in LATENCY_PERCENTILES:
        derived[f"latency_batch1_ms_p{percentile}"] = float(np.percentile(latencies, percentile))
    derived.update(time_to_accuracy(epochs, task, dataset))
    flops = task.train_flops_per_sample
    achieved = flops * throughput.median
    derived.update({
        "train_flops_per_sample": flops,
        "achieved_train_flops_per_s": achieved,
        "utilisation_percent": 100 * achieved / metrics["device_peak_flops_per_s"],
        "peak_host_rss_tree_bytes": memory.host_rss_tree_bytes,
        "peak_gpu_nvml_bytes": memory.gpu_nvml_bytes,
        "gpu_nvml_baseline_bytes": memory.gpu_nvml_baseline_bytes,
        "peak_gpu_nvml_reason": memory.gpu_nvml_reason,
    })
    return derived


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
