"""The CUDA paths: synchronisation, the frameworks' allocator counters and NVML. They run where an NVIDIA GPU and
a CUDA build of the framework are present (`--python FRAMEWORK=PATH` pointing at one, through the environment
variable BENCH_GPU_PYTHON_<NAME>, e.g. BENCH_GPU_PYTHON_PYTORCH=/opt/torch-cu12/bin/python), and are skipped with
the reason everywhere else. `scripts/gpu-reference-run` sets these variables for every framework that imports
there; by hand, point them at a CUDA build (a managed one: `bench setup --device cuda`, then `bench list`)."""
import os

import pytest

from bench import machine
from bench.registry import FRAMEWORKS
from frameworks.child import load_adapter
from conftest import bench, cells

GPUS = machine.gpus()
pytestmark = pytest.mark.skipif(not GPUS, reason="no NVIDIA GPU on this machine (nvidia-smi finds none)")


def gpu_python(name: str) -> str:
    python = os.environ.get(f"BENCH_GPU_PYTHON_{name.upper().replace('[', '_').replace(']', '')}")
    if not python:
        pytest.skip(f"{name}: no CUDA build given (set BENCH_GPU_PYTHON_"
                    f"{name.upper().replace('[', '_').replace(']', '')} to its interpreter)")
    return python


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_gpu_cell_measures_memory_and_synchronises(tmp_path, framework):
    python = gpu_python(framework)
    completed = bench("run", "--device", "cuda", "--frameworks", framework, "--tasks", "cifar_cnn",
                      "--profile", "smoke", "--dataset", "synthetic", "--python", f"{framework}={python}",
                      cwd=tmp_path, timeout=1200)
    assert completed.returncode == 0, completed.stderr
    [record] = cells(tmp_path / "results")
    assert record["status"] == "ok", f"{record['reason']}\n{record['log_tail']}"
    metrics = record["metrics"]
    # an unsynchronised clock shows up as impossible speed: no GPU does 1 PFLOP/s in float32 without TF32
    assert 1e11 < metrics["device_peak_flops_per_s"] < 1e15
    assert metrics["utilisation_percent"] < 100
    if load_adapter(FRAMEWORKS[framework].adapter).has_gpu_allocator_counter:
        assert metrics["peak_gpu_allocated_bytes"] > 3_441_592 * 4  # at least the CNN's weights
    else:
        assert metrics["peak_gpu_allocated_bytes"] is None and metrics["peak_gpu_reason"]
    assert (metrics["peak_gpu_nvml_bytes"] or 0) > 0 or "PID namespace" in metrics["peak_gpu_nvml_reason"]
    assert record["gpu_policy"]["NVIDIA_TF32_OVERRIDE"] == "0"


def test_bf16_cell_on_the_gpu_is_measured_against_the_tensor_core_peak(tmp_path):
    """A bf16 cell runs on the GPU and its utilisation is against the data sheet's bf16 tensor-core peak, which
    is above the float32 one (bench.machine.device_peak): a bf16 cell measured against float32's peak would
    claim an impossible utilisation."""
    python = gpu_python("pytorch")
    peak, why = machine.device_peak("cuda", "bf16")
    if peak is None:  # not in the data-sheet table, or no bf16 tensor cores (before Ampere)
        pytest.skip(why)
    completed = bench("run", "--device", "cuda", "--frameworks", "pytorch", "--tasks", "cifar_cnn",
                      "--profile", "smoke", "--dataset", "synthetic", "--precision", "fp32,bf16",
                      "--python", f"pytorch={python}", cwd=tmp_path, timeout=1200)
    assert completed.returncode == 0, completed.stderr
    records = {record["precision"]: record for record in cells(tmp_path / "results")}
    assert set(records) == {"fp32", "bf16"}
    for record in records.values():
        assert record["status"] == "ok", f"{record['reason']}\n{record['log_tail']}"
    fp32, bf16 = records["fp32"]["metrics"], records["bf16"]["metrics"]
    assert bf16["device_peak_flops_per_s"] == peak and "bf16" in bf16["device_peak_source"]
    assert bf16["device_peak_flops_per_s"] > fp32["device_peak_flops_per_s"]
    assert 0 < bf16["utilisation_percent"] < 100
