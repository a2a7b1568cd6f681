"""The device's peak FLOP/s per precision (bench.machine.device_peak): the data-sheet table looked up by the name
nvidia-smi gives (faked here: a test of the lookup, not of a GPU), and the CPU's figures from its flags. And
scripts/gpu-reference-run where there is no GPU, and its options."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import machine


@pytest.fixture
def gpu_named(monkeypatch):
    """device_peak("cuda", ...) as on a machine whose first GPU nvidia-smi calls NAME."""
    def use(name: str | None):
        machine.device_peak.cache_clear()
        found = [] if name is None else [{"name": name, "driver": "580.0", "memory_total_mib": 81559, "cuda": "13.0"}]
        monkeypatch.setattr(machine, "gpus", lambda: found)
    yield use
    machine.device_peak.cache_clear()


@pytest.mark.parametrize("name, model, fp32, tf32, bf16", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 67e12, 494.7e12, 989.4e12),  # the SXM H100, as nvidia-smi names it
    ("NVIDIA H100 PCIe", "H100 PCIe", 51e12, 378e12, 756e12),  # not the SXM figures of "H100"
    ("NVIDIA H100 NVL", "H100 NVL", 60e12, 417.5e12, 835.5e12),
    ("NVIDIA H200", "H200 SXM", 67e12, 494.7e12, 989.4e12),
    ("NVIDIA H200 NVL", "H200 NVL", 60e12, 417.5e12, 835.5e12),
    ("NVIDIA A100-SXM4-80GB", "A100", 19.5e12, 156e12, 312e12),
    ("NVIDIA A100 80GB PCIe", "A100", 19.5e12, 156e12, 312e12),
    ("NVIDIA A10", "A10", 31.2e12, 62.5e12, 125e12),  # "A10" is a word of its own, not a prefix of "A100"
    ("NVIDIA L40S", "L40S", 91.6e12, 183e12, 362.05e12),  # not L4's, nor L40's
    ("NVIDIA L4", "L4", 30.3e12, 60e12, 121e12),
    ("NVIDIA GeForce RTX 4090", "RTX 4090", 82.6e12, 82.6e12, 165.2e12),
])
def test_gpu_peaks_by_name_and_precision(gpu_named, name, model, fp32, tf32, bf16):
    gpu_named(name)
    for precision, expected in (("fp32", fp32), ("tf32", tf32), ("bf16", bf16)):
        peak, how = machine.device_peak("cuda", precision)
        assert peak == pytest.approx(expected), (precision, how)
        assert how.startswith(f"data sheet: {name} ({model}), {precision}: ")
    assert "CUDA cores" in machine.device_peak("cuda", "fp32")[1]
    assert "tensor cores" in machine.device_peak("cuda", "bf16")[1]
    # the 16-bit tensor cores beat float32 on every GPU in the table
    assert machine.device_peak("cuda", "fp16")[0] > machine.device_peak("cuda", "fp32")[0]


def test_gpus_without_tensor_cores_for_a_precision_have_no_peak_and_say_why(gpu_named):
    gpu_named("Tesla V100-SXM2-16GB")
    assert machine.device_peak("cuda", "fp16")[0] == pytest.approx(125e12)
    for precision in ("tf32", "bf16"):
        peak, why = machine.device_peak("cuda", precision)
        assert peak is None and "Ampere" in why and "V100" in why
    gpu_named("Tesla V100S-PCIE-32GB")  # V100S, not V100
    assert machine.device_peak("cuda", "fp32")[1].startswith("data sheet: Tesla V100S-PCIE-32GB (V100S PCIe)")
    gpu_named("Tesla T4")
    assert machine.device_peak("cuda", "fp16")[0] == pytest.approx(65e12)
    assert machine.device_peak("cuda", "bf16")[0] is None


def test_unknown_gpus_and_no_gpu_have_no_peak(gpu_named):
    gpu_named("NVIDIA A10G")  # a cloud variant of the A10 with its own clocks: not A10's figures
    peak, why = machine.device_peak("cuda", "fp32")
    assert peak is None and why == "no data-sheet peak known for NVIDIA A10G"
    gpu_named(None)
    assert machine.device_peak("cuda", "bf16") == (None, "no GPU found")


def test_cpu_tf32_has_no_peak():
    assert machine.device_peak("cpu", "tf32") == (None, "TF32 is an NVIDIA tensor-core format; a CPU has no "
                                                        "tf32 peak")


@pytest.mark.parametrize("flags, bf16_per_cycle, fp16_per_cycle", [
    ({"avx512f", "fma"}, 64, 64),  # no 16-bit instructions: frameworks compute in float32, the float32 figure
    ({"avx512f", "fma", "avx512_bf16"}, 128, 64),  # bf16 dot products: twice float32
    ({"avx512f", "fma", "avx512_bf16", "avx512_fp16", "amx_bf16"}, 1024, 128),  # AMX tiles; AVX512_FP16
])
def test_cpu_16_bit_peaks_follow_its_instructions(monkeypatch, flags, bf16_per_cycle, fp16_per_cycle):
    monkeypatch.setattr(machine, "_cpu_flags", lambda: flags)
    monkeypatch.setattr(machine, "_cpu_max_hz", lambda: (2e9, "test clock"))
    machine.device_peak.cache_clear()
    try:
        fp32, _ = machine.device_peak("cpu", "fp32", threads=2)
        bf16, bf16_how = machine.device_peak("cpu", "bf16", threads=2)
        fp16, fp16_how = machine.device_peak("cpu", "fp16", threads=2)
    finally:
        machine.device_peak.cache_clear()
    assert fp32 == 2 * 2e9 * 64
    assert (bf16, fp16) == (2 * 2e9 * bf16_per_cycle, 2 * 2e9 * fp16_per_cycle)
    assert "bf16" in bf16_how and "fp16" in fp16_how
    if bf16_per_cycle == 64:
        assert "the float32 figure" in bf16_how


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="fp32, tf32, bf16, fp16"):
        machine.device_peak("cpu", "int8")


REFERENCE_RUN = Path(__file__).resolve().parent.parent / "scripts" / "gpu-reference-run"


def reference_run(*args: str, path: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REFERENCE_RUN), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": path})


def test_the_gpu_reference_run_without_a_gpu_says_so_in_one_line(tmp_path):
    """scripts/gpu-reference-run where nvidia-smi is not found: exit 2, one line, nothing written."""
    completed = reference_run("--profile", "quick", "--into", str(tmp_path / "into"), path=str(tmp_path))
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr.splitlines() == [
        "gpu-reference-run: no NVIDIA GPU here (nvidia-smi not found): the GPU reference run needs one"]
    assert not (tmp_path / "into").exists()


def test_the_gpu_reference_run_refuses_bad_options_before_anything(tmp_path):
    for args, message in ((["--python", "pytorch"], "--python expects FW=PATH"),
                          (["--wheels", str(tmp_path / "none")], "not a folder"),
                          (["--wheels", str(tmp_path)], "no .whl file in it"),
                          (["--profile", "huge"], "invalid choice: 'huge'"),
                          (["--download-wheels", str(tmp_path), "--for-python", "312"], "like 3.12")):
        completed = reference_run(*args, path=os.environ["PATH"])
        assert completed.returncode == 2 and message in completed.stderr, (args, completed.stderr)
