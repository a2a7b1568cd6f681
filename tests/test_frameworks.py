"""Every framework whose environment is set up: the contract run end to end, and parity with PyTorch.

`scripts/test` (and so CI) sets up every framework first, so nothing here is skipped in CI; on a machine where a
framework's environment is missing, its tests are skipped with the reason.
"""
import json

import pytest

from bench import envs
from bench.registry import FRAMEWORKS
from conftest import bench, cells

READY = {name: envs.managed_python(framework) for name, framework in FRAMEWORKS.items()}


def ready(name: str):
    return pytest.param(name, marks=pytest.mark.skipif(READY[name] is None,
                                                       reason=f"{name}: run `bench setup {name}` first"))


#: The deep-learning modules each row may load, and must: a Keras row carries its backend and nothing else (TensorFlow
#: registers `keras` as tf.keras when it is imported).
LOADS = {"pytorch": {"torch"}, "tensorflow": {"tensorflow", "keras"}, "keras[tensorflow]": {"keras", "tensorflow"},
         "keras[jax]": {"keras", "jax"}, "keras[torch]": {"keras", "torch"}, "mxnet": {"mxnet"}, "paddle": {"paddle"}}


@pytest.mark.parametrize("framework", [ready(name) for name in FRAMEWORKS])
def test_smoke_both_tasks_every_mode(tmp_path, framework):
    completed = bench("run", "--frameworks", framework, "--profile", "smoke", "--dataset", "synthetic",
                      "--mode", "native,eager,compiled", cwd=tmp_path, timeout=1200)
    assert completed.returncode == 0, completed.stderr
    records = cells(tmp_path / "results")
    assert len(records) == 6
    for record in records:
        assert record["status"] == "ok", f"{record['cell_id']}: {record['reason']}\n{record['log_tail']}"
        assert record["framework_version"]
        assert set(record["loaded_frameworks"]) == LOADS[framework], record["loaded_frameworks"]
        assert record["execution"]["runs_as"] and record["execution"]["optimizer_update"]
        assert record["threads"] >= 1 and record["compile_cache"] == "cold"
        assert record["contention"]["other_cpu_cores"] >= 0 and record["contention"]["threshold_cores"] > 0
        assert_measurements_plausible(record["metrics"])
    runs_as = {record["mode"]: record["execution"]["runs_as"] for record in records}
    assert "op by op" in runs_as["eager"]  # eager means op by op in every framework


def assert_measurements_plausible(metrics: dict) -> None:
    """What a missing synchronisation or a mis-wired phase would break: work counted before it finished shows
    up as more FLOP/s than the device has, or as training faster than the framework's own peak allows."""
    assert metrics["train_samples_per_s"] > 0
    assert metrics["train_samples_per_s_ci_low"] <= metrics["train_samples_per_s"] \
        <= metrics["train_samples_per_s_ci_high"]
    assert 0 < metrics["matmul_flops_per_s"] <= metrics["device_peak_flops_per_s"] < 5e13
    assert metrics["device_peak_source"]  # one figure per device, named: the theoretical peak or a better matmul
    assert 0 < metrics["utilisation_percent"] < 100
    assert 0 < metrics["latency_batch1_ms_p50"] <= metrics["latency_batch1_ms_p90"] <= metrics["latency_batch1_ms_p99"]
    by_batch = metrics["inference_samples_per_s_by_batch"]
    assert "32" in by_batch and "1000" not in by_batch and min(by_batch.values()) > 0  # smoke: 128-256 test images
    assert metrics["peak_host_tree_bytes"] > 50 * 2**20 and metrics["peak_host_tree_kind"] in ("pss", "rss")
    assert metrics["peak_gpu_allocated_bytes"] is None and metrics["peak_gpu_reason"] == "no GPU used (device cpu)"
    assert metrics["time_to_first_step_s"] > metrics["first_step_s"] > 0
    assert metrics["launch_s"] == pytest.approx(metrics["startup_s"] + metrics["import_s"])


@pytest.mark.parametrize("framework", [ready(name) for name in FRAMEWORKS if name != "pytorch"])
def test_parity_with_pytorch(tmp_path, framework):
    if READY["pytorch"] is None:
        pytest.skip("pytorch: run `bench setup pytorch` first")
    completed = bench("parity", "--frameworks", framework, cwd=tmp_path, timeout=1200)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.count(" pass") >= 4  # reference and framework, both tasks


def test_list_shows_every_framework_with_its_environment(tmp_path):
    completed = bench("list", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    for name in FRAMEWORKS:
        assert name in completed.stdout
    assert "3,441,592" in completed.stdout and "101,770" in completed.stdout


def test_setup_unknown_framework(tmp_path):
    completed = bench("setup", "theano", cwd=tmp_path)
    assert completed.returncode == 2 and "unknown framework 'theano'" in completed.stderr
