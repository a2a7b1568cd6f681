"""bench.stats, bench.metrics and bench.aggregate against hand-computed values (no framework needed)."""
import json
import math

import pytest

from bench import aggregate, metrics, results, session, stats
from bench.results import SCHEMA_VERSION
from bench.sampler import Energy, MemoryPeaks
from frameworks.spec import TASKS


@pytest.mark.parametrize("n, ranks, coverage", [
    (5, (1, 5), 1 - 2 / 32),  # below 6 values no interval reaches 95 %: the range, with its true coverage
    (6, (1, 6), 1 - 2 / 64),
    (10, (2, 9), 1 - 2 * 11 / 1024),  # P(Binomial(10, 1/2) <= 1) = 11/1024
    (20, (6, 15), 1 - 2 * 21700 / 2**20),  # P(Binomial(20, 1/2) <= 5) = 21700/2^20
])
def test_median_interval_ranks_and_exact_coverage(n, ranks, coverage):
    lo, hi, level = stats.median_ci_ranks(n)
    assert (lo, hi) == ranks
    assert level == pytest.approx(coverage)


def test_summary_of_one_to_ten():
    summary = stats.summarize([7, 3, 10, 1, 5, 2, 9, 4, 8, 6])
    assert (summary.n, summary.median, summary.ci_low, summary.ci_high) == (10, 5.5, 2, 9)
    assert summary.cv == pytest.approx(math.sqrt(55 / 6) / 5.5)


def test_accuracy_difference_needs_significance():
    def accuracy(value):
        return stats.Measure((value,), higher_is_better=True, trials=10_000)
    # pooled 0.855, standard error 0.00498: z = 2.008, p = 0.045
    verdict = stats.compare(accuracy(0.86), accuracy(0.85))
    assert verdict.winner == "a" and verdict.p_value == pytest.approx(0.0446, abs=5e-4)
    assert stats.compare(accuracy(0.855), accuracy(0.85)).winner == "tie"  # z = 1.0


def test_welch_on_logs():
    a = stats.Measure(tuple(math.exp(x) for x in (0, 1, 2)), higher_is_better=True)
    b = stats.Measure(tuple(math.exp(x) for x in (3, 4, 5)), higher_is_better=True)
    verdict = stats.compare(a, b)  # t = 3.674 on 4 degrees of freedom: 0.02 < p < 0.05
    assert verdict.winner == "b" and 0.02 < verdict.p_value < 0.05
    assert stats.compare(stats.Measure(a.values, higher_is_better=False), b).winner == "a"


def test_single_values_use_the_stated_noise_or_tie():
    def memory(value, noise=0.02):
        return stats.Measure((value,), higher_is_better=False, noise=noise)
    assert stats.compare(memory(110), memory(100)).winner == "b"  # log ratio 0.095 = 3.4 noise units
    assert stats.compare(memory(103), memory(100)).winner == "tie"  # 1.05 units
    assert stats.compare(memory(200, None), memory(100, None)).method.startswith("one value and no stated noise")


def test_time_to_accuracy_is_the_first_epoch_reaching_the_target():
    epochs = [{"epoch": 1, "test_accuracy": 0.83, "cumulative_train_time_s": 5.0},
              {"epoch": 2, "test_accuracy": 0.858, "cumulative_train_time_s": 9.5},
              {"epoch": 3, "test_accuracy": 0.87, "cumulative_train_time_s": 14.0}]
    reached = metrics.time_to_accuracy(epochs, TASKS["mnist_mlp"], "fashion-mnist")
    assert (reached["accuracy_target"], reached["time_to_accuracy_s"], reached["time_to_accuracy_epoch"]) == \
        (0.85, 9.5, 2)
    missed = metrics.time_to_accuracy(epochs[:1], TASKS["mnist_mlp"], "fashion-mnist")
    assert missed["time_to_accuracy_s"] is None and missed["time_to_accuracy_reason"] == "not reached in 1 epoch(s)"


def test_derived_fields_and_utilisation():
    child = {"startup_s": 0.5, "import_s": 2.0, "build_s": 0.5, "first_step_s": 1.0,
             "train_samples_per_s_windows": [float(v) for v in range(100, 110)],
             "latency_batch1_ms_samples": [float(v) for v in range(1, 101)], "matmul_flops_per_s": 6e10}
    derived = metrics.derive(child, [], TASKS["cifar_cnn"], "synthetic", MemoryPeaks(123, "pss", None, None, "cpu"),
                             (1e11, "theoretical"), Energy({"train": 8.0, "inference": 0.42}, "RAPL", None), 800)
    assert derived["train_energy_j_per_sample"] == 0.01 and derived["energy_source"] == "RAPL"
    assert derived["time_to_first_step_s"] == 4.0 and derived["launch_s"] == 2.5
    assert (derived["train_samples_per_s"], derived["train_samples_per_s_ci_low"]) == (104.5, 101)
    assert derived["latency_batch1_ms_p50"] == pytest.approx(50.5)
    assert derived["utilisation_percent"] == pytest.approx(373_585_920 * 104.5 / 1e11 * 100)
    assert derived["device_peak_source"] == "theoretical"  # the estimate stands: the cell's matmul was slower
    faster = metrics.derive({**child, "matmul_flops_per_s": 2e11}, [], TASKS["cifar_cnn"], "synthetic",
                            MemoryPeaks(123, "pss", None, None, "cpu"), (1e11, "theoretical"),
                            Energy(None, None, "no counter"), 800)
    assert faster["device_peak_flops_per_s"] == 2e11  # a device that outran the estimate: its measured figure
    assert derived["peak_host_tree_bytes"] == 123 and derived["peak_host_tree_kind"] == "pss"
    assert derived["peak_gpu_nvml_bytes"] is None


def _record(framework, windows, rss):
    return {"task": "mnist_mlp", "dataset": "synthetic", "device": "cpu", "framework": framework, "mode": "eager",
            "precision": "fp32", "batch_size": 128,
            "status": "ok", "test_samples": 100,
            "metrics": {"train_samples_per_s": sorted(windows)[len(windows) // 2],
                        "train_samples_per_s_windows": windows, "peak_host_tree_bytes": rss}}


def test_headline_names_a_leader_only_when_significant():
    records = [_record("fast", [200.0, 210, 190, 205, 195], 500e6), _record("slow", [100.0, 105, 95, 102, 98], 505e6),
               _record("also-fast", [205.0, 190, 200, 212, 196], 900e6)]
    lines = aggregate.headline(aggregate.group(records))
    assert lines[0].startswith("fastest to train: ") and "tied with" in lines[0] and "slow" not in lines[0]
    assert lines[1] == "leanest in host memory: fast eager — tied with slow eager (not significant at 95 %)"


def test_version_1_records_migrate_with_new_fields_null(tmp_path):
    path = tmp_path / "cell.json"
    old = {"schema_version": 1, "status": "ok", "metrics": {"train_samples_per_s": 5.0}}
    path.write_text(json.dumps(old))
    migrated = results.check_version(results.read_json(path, "cell record"), path)
    assert migrated["schema_version"] == SCHEMA_VERSION and migrated["metrics"]["train_samples_per_s"] == 5.0
    assert migrated["metrics"]["latency_batch1_ms_p99"] is None and migrated["gpu_policy"] is None
    assert migrated["contention"] is None and migrated["execution"] is None


def test_version_2_records_keep_their_figures_under_the_new_names(tmp_path):
    """A v2 tree peak summed RSS and its device peak was the framework's own matmul: both kept, and said so."""
    path = tmp_path / "cell.json"
    old = {"schema_version": 2, "status": "ok", "metrics": {
        "peak_host_rss_tree_bytes": 300, "device_peak_flops_per_s": 7e10, "startup_s": 0.5, "import_s": 2.0,
        "utilisation_percent": 150.0}}
    path.write_text(json.dumps(old))
    migrated = results.check_version(results.read_json(path, "cell record"), path)["metrics"]
    assert (migrated["peak_host_tree_bytes"], migrated["peak_host_tree_kind"]) == (300, "rss")
    assert migrated["matmul_flops_per_s"] == 7e10 and migrated["device_peak_flops_per_s"] is None
    assert migrated["utilisation_percent"] is None and migrated["launch_s"] == 2.5


def test_one_device_peak_per_run_for_every_framework():
    """Utilisation is against the run's best figure for the device, whichever framework reached it."""
    def record(framework, matmul, achieved):
        return {"run_id": "r", "device": "cpu", "framework": framework, "metrics": {
            "device_peak_flops_per_s": 1e11, "device_peak_source": "theoretical", "matmul_flops_per_s": matmul,
            "achieved_train_flops_per_s": achieved}}
    records = metrics.apply_run_device_peak([record("slow gemm", 6.6e10, 1.1e11), record("fast gemm", 4e11, 2e11)])
    assert {r["metrics"]["device_peak_flops_per_s"] for r in records} == {4e11}
    assert [r["metrics"]["utilisation_percent"] for r in records] == [27.5, 50.0]
    assert "fast gemm" in records[0]["metrics"]["device_peak_source"]


@pytest.mark.parametrize("overheads_percent, median_percent, interval, verdict", [
    (range(0, 10), 4.5, (1, 8), "undecided"),  # the interval straddles the 3 % limit
    ([x / 10 for x in range(10)], 0.45, (0.1, 0.8), "within"),
    (range(4, 14), 8.5, (5, 12), "OVER"),
])
def test_overhead_verdict_follows_the_interval_not_the_median(overheads_percent, median_percent, interval, verdict):
    from benchmarks import overhead
    hand = [1000.0] * 10
    harness = [1000.0 * (1 - percent / 100) for percent in overheads_percent]
    summary = overhead.summarize({"harness_rounds_samples_per_s": harness, "hand_rounds_samples_per_s": hand})
    assert summary["overhead_percent"] == pytest.approx(median_percent)
    assert summary["overhead_percent_ci"] == pytest.approx(interval)  # ranks 2 and 9 of 10
    assert summary["verdict"] == verdict


def test_repeats_auto_settles_a_cell_once_its_interval_is_narrow():
    """--repeats auto: three tight repeats settle a cell, three scattered ones do not, a failure settles it."""
    def record(framework, speed, status="ok"):
        return {"framework": framework, "task": "mnist_mlp", "dataset": "synthetic", "device": "cpu",
                "mode": "native", "precision": "fp32", "batch_size": 128, "status": status,
                "metrics": {"train_samples_per_s": speed}}
    records = [record("tight", s) for s in (100.0, 101.0, 100.5)] + \
              [record("scattered", s) for s in (100.0, 140.0, 70.0)] + \
              [record("two", s) for s in (100.0, 100.1)] + [record("broken", None, "failed")]
    settled = {key[0] for key in session.settled_cells(records)}
    assert settled == {"tight", "broken"}
    assert stats.relative_halfwidth([100.0, 101.0, 100.5]) < 0.05 < stats.relative_halfwidth([100.0, 140.0, 70.0])
