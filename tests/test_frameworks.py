"""Every framework whose environment is set up: the contract run end to end, and parity with PyTorch.

`scripts/test` (and so CI) sets up every framework first, so nothing here is skipped in CI; on a machine where a
framework's environment is missing, its tests are skipped with the reason.
"""
import json

import pytest

from bench import envs
from bench.registry import FRAMEWORKS
from conftest import bench, cells, slow

READY = {name: envs.managed_python(framework) for name, framework in FRAMEWORKS.items()}


def ready(name: str):
    return pytest.param(name, marks=pytest.mark.skipif(READY[name] is None,
                                                       reason=f"{name}: run `bench setup {name}` first"))


#: The deep-learning modules each row may load, and must: a Keras row carries its backend and nothing else (TensorFlow
#: registers `keras` as tf.keras when it is imported).
LOADS = {"pytorch": {"torch"}, "tensorflow": {"tensorflow", "keras"}, "keras[tensorflow]": {"keras", "tensorflow"},
         "keras[jax]": {"keras", "jax"}, "keras[torch]": {"keras", "torch"}, "mxnet": {"mxnet"}, "paddle": {"paddle"}}


@pytest.mark.parametrize("framework", [ready(name) for name in FRAMEWORKS])
def test_smoke_each_mode_and_task(smoke_run, framework):
    """One smoke cell per mode (conftest.SMOKE_RUNS): every contract check on each."""
    records = smoke_run["records"][framework]
    assert sorted((r["task"], r["mode"]) for r in records) == [("cifar_cnn", "native"), ("mnist_mlp", "compiled"),
                                                               ("mnist_mlp", "eager")]
    assert_cells_honour_the_contract(framework, records)


@slow
@pytest.mark.parametrize("framework", [ready(name) for name in FRAMEWORKS])
def test_every_mode_on_both_tasks(tmp_path, framework):
    completed = bench("run", "--frameworks", framework, "--profile", "smoke", "--dataset", "synthetic",
                      "--mode", "native,eager,compiled", cwd=tmp_path, timeout=1200)
    assert completed.returncode == 0, completed.stderr
    records = cells(tmp_path / "results")
    assert len(records) == 6
    assert_cells_honour_the_contract(framework, records)


def assert_cells_honour_the_contract(framework: str, records: list[dict]) -> None:
    for record in records:
        assert record["status"] == "ok", f"{record['cell_id']}: {record['reason']}\n{record['log_tail']}"
        assert record["framework_version"]
        assert set(record["loaded_frameworks"]) == LOADS[framework], record["loaded_frameworks"]
        assert record["execution"]["runs_as"] and record["execution"]["optimizer_update"]
        assert "float32" in record["execution"]["precision"]  # an fp32 cell says what arithmetic ran
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
    assert metrics["inference_samples_per_s"] > 0 and "inference_samples_per_s_by_batch" not in metrics
    # a window faster than the device can compute timed queued work, not finished work: synchronize() did not wait
    assert max(metrics["train_samples_per_s_windows"]) * metrics["train_flops_per_sample"] \
        <= metrics["device_peak_flops_per_s"]
    assert metrics["peak_host_tree_bytes"] > 50 * 2**20 and metrics["peak_host_tree_kind"] in ("pss", "rss")
    assert metrics["peak_gpu_allocated_bytes"] is None and metrics["peak_gpu_reason"] == "no GPU used (device cpu)"
    assert metrics["time_to_first_step_s"] > metrics["first_step_s"] > 0
    assert metrics["launch_s"] == pytest.approx(metrics["startup_s"] + metrics["import_s"])


@pytest.fixture(scope="module")
def parity_table(tmp_path_factory) -> dict:
    """One `bench parity` of every framework set up, in fp32 and bf16, against PyTorch in fp32 (the reference runs
    once), its stored table."""
    if READY["pytorch"] is None:
        pytest.skip("pytorch: run `bench setup pytorch` first")
    folder = tmp_path_factory.mktemp("parity")
    completed = bench("parity", "--precision", "fp32,bf16", "--out", str(folder), cwd=folder, timeout=1800)
    table = json.loads((folder / "parity-latest.json").read_text())
    return {"returncode": completed.returncode, "output": completed.stdout + completed.stderr, **table}


#: What a CPU cannot run at bf16, and the words its record gives: Paddle's auto_cast has no effect on CPUs.
CPU_WITHOUT_BF16 = {"paddle": "makes no effect"}


@pytest.mark.parametrize("framework", [ready(name) for name in FRAMEWORKS])
def test_parity_with_pytorch(parity_table, framework):
    """Every framework against PyTorch in fp32: in fp32 within float32 rounding, in bf16 within bfloat16's
    (PyTorch's own bf16 recipe included), or unsupported with why where the CPU has no bf16 path."""
    rows = [row for row in parity_table["rows"] if row["framework"] == framework]
    assert sorted((row["task"], row["precision"]) for row in rows) == [
        ("cifar_cnn", "bf16"), ("cifar_cnn", "fp32"), ("mnist_mlp", "bf16"), ("mnist_mlp", "fp32")]
    for row in rows:
        if row["precision"] == "bf16" and framework in CPU_WITHOUT_BF16:
            assert row["status"] == "unsupported" and CPU_WITHOUT_BF16[framework] in row["reason"]
            continue
        assert row["status"] == "pass", (row, parity_table["output"][-3000:])
        limits = parity_table["tolerances"][row["precision"]]
        assert all(row["differences"][kind] <= limit for kind, limit in limits.items())
        if row["precision"] == "bf16":  # bfloat16 really ran: not float32 under another name
            float32_spread = max(other["differences"]["kernel"] for other in parity_table["rows"]
                                 if other["task"] == row["task"] and other["precision"] == "fp32"
                                 and other["status"] == "pass")
            assert row["differences"]["kernel"] > 10 * float32_spread, (row, float32_spread)


def test_parity_exits_0_when_every_framework_passes(parity_table):
    assert parity_table["returncode"] == 0, parity_table["output"][-3000:]


def test_list_shows_every_framework_with_its_environment(tmp_path):
    completed = bench("list", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    for name in FRAMEWORKS:
        assert name in completed.stdout
    assert "3,441,592" in completed.stdout and "101,770" in completed.stdout


def test_setup_unknown_framework(tmp_path):
    completed = bench("setup", "theano", cwd=tmp_path)
    assert completed.returncode == 2 and "unknown framework 'theano'" in completed.stderr
