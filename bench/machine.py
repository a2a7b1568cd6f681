"""What the run ran on: OS, CPU, memory, GPUs, the CPUs a process may use, and the device's peak FLOP/s at each
precision.
Read from the system, never from a framework."""
from __future__ import annotations

import functools
import math
import os
import platform
import shutil
import subprocess
from pathlib import Path

from frameworks.spec import PRECISIONS


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """CPUs this process may actually use: its affinity mask, capped by a cgroup CPU quota (containers, CI)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cpu_max_hz() -> tuple[float | None, str]:
    """The highest clock a core reaches, and where the figure came from."""
    try:
        khz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text())
        return khz * 1e3, "cpufreq maximum"
    except (OSError, ValueError):
        pass
    try:
        mhz = [float(line.split(":", 1)[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.startswith("cpu MHz")]
        if mhz:
            return max(mhz) * 1e6, "/proc/cpuinfo clock (no cpufreq: a virtual machine's nominal clock)"
    except (OSError, ValueError):
        pass
    return None, "clock unknown"


#: float32 FLOPs per cycle and core: vector lanes x 2 (fused multiply-add) x 2 FMA units. Two units is the most
#: any x86 core has, so the figure is an upper bound where a core has one.
_FLOPS_PER_CYCLE = (("avx512f", 16 * 2 * 2, "AVX-512"), ("fma", 8 * 2 * 2, "AVX2 + FMA"), ("avx", 8 * 2, "AVX"),
                    ("sse2", 4 * 2, "SSE2"))
#: 16-bit FLOPs per cycle and core, by the CPU flag of the instructions that do them, widest first. AMX (Sapphire
#: Rapids and newer): Intel's figure for one core's tile unit, 1024 bf16 (or fp16) FLOP/cycle. AVX512_BF16's
#: VDPBF16PS and AVX512_FP16's FMAs do twice the float32 FLOPs of the same 512-bit instruction (two 16-bit pairs
#: per float32 lane); taken, like float32's, with two units per core: an upper bound.
_HALF_FLOPS_PER_CYCLE = {
    "bf16": (("amx_bf16", 1024, "AMX-BF16 tiles, Intel's figure"), ("avx512_bf16", 16 * 2 * 2 * 2,
                                                                     "AVX512_BF16 dot products, 2 units")),
    "fp16": (("amx_fp16", 1024, "AMX-FP16 tiles, Intel's figure"), ("avx512_fp16", 32 * 2 * 2,
                                                                     "AVX512_FP16, 2 FMA units")),
}
_T = 1e12  # FLOP/s in a TFLOP/s
#: Dense peaks (no structured sparsity) from NVIDIA's data sheets, FLOP/s per precision: fp32 is the CUDA cores'
#: float32 (no tensor cores: TF32 off); tf32, bf16 and fp16 are the tensor cores' figures with float32
#: accumulation (the sheets print twice these "with sparsity"; GeForce cards accumulate fp16 in float32 at half
#: the fp16-accumulate rate, which is the figure here). None: the GPU has no tensor cores for the precision, with
#: why (`_NO_TENSOR_CORES`); Pascal's P100 has none at all (its CUDA cores' paired-half2 fp16 is not counted).
#: Keys are GPU names as nvidia-smi writes them, without "NVIDIA"/"Tesla"/"GeForce"; the longest key found in a
#: name as whole words wins (_gpu_entry), so "H100 PCIe" is never taken for "H100", nor "A100" for "A10".
_HOPPER_SXM = {"fp32": 67 * _T, "tf32": 494.7 * _T, "bf16": 989.4 * _T, "fp16": 989.4 * _T}
_HOPPER_NVL = {"fp32": 60 * _T, "tf32": 417.5 * _T, "bf16": 835.5 * _T, "fp16": 835.5 * _T}
GPU_PEAKS: dict[str, tuple[str, dict[str, float | None]]] = {
    # Hopper. nvidia-smi calls the SXM H100 "NVIDIA H100 80GB HBM3"; an H100 of no named form gets the SXM
    # figures, the highest, so utilisation stays an upper bound's fraction.
    "H100 SXM": ("H100 SXM", _HOPPER_SXM),
    "H100 80GB HBM3": ("H100 SXM", _HOPPER_SXM),
    "H100": ("H100 (form not named: the SXM figures)", _HOPPER_SXM),
    "H100 PCIe": ("H100 PCIe", {"fp32": 51 * _T, "tf32": 378 * _T, "bf16": 756 * _T, "fp16": 756 * _T}),
    "H100 NVL": ("H100 NVL", _HOPPER_NVL),
    "H200": ("H200 SXM", _HOPPER_SXM),
    "H200 NVL": ("H200 NVL", _HOPPER_NVL),
    "GH200": ("GH200", _HOPPER_SXM),
    # Ampere (A100: the SXM and PCIe sheets give the same tensor figures)
    "A100": ("A100", {"fp32": 19.5 * _T, "tf32": 156 * _T, "bf16": 312 * _T, "fp16": 312 * _T}),
    "A30": ("A30", {"fp32": 10.3 * _T, "tf32": 82 * _T, "bf16": 165 * _T, "fp16": 165 * _T}),
    "A10": ("A10", {"fp32": 31.2 * _T, "tf32": 62.5 * _T, "bf16": 125 * _T, "fp16": 125 * _T}),
    "A40": ("A40", {"fp32": 37.4 * _T, "tf32": 74.8 * _T, "bf16": 149.7 * _T, "fp16": 149.7 * _T}),
    "RTX 3090": ("RTX 3090", {"fp32": 35.6 * _T, "tf32": 35.6 * _T, "bf16": 71 * _T, "fp16": 71 * _T}),
    # Ada
    "L4": ("L4", {"fp32": 30.3 * _T, "tf32": 60 * _T, "bf16": 121 * _T, "fp16": 121 * _T}),
    "L40": ("L40", {"fp32": 90.5 * _T, "tf32": 90.5 * _T, "bf16": 181.05 * _T, "fp16": 181.05 * _T}),
    "L40S": ("L40S", {"fp32": 91.6 * _T, "tf32": 183 * _T, "bf16": 362.05 * _T, "fp16": 362.05 * _T}),
    "RTX 4090": ("RTX 4090", {"fp32": 82.6 * _T, "tf32": 82.6 * _T, "bf16": 165.2 * _T, "fp16": 165.2 * _T}),
    # Turing and Volta: fp16 tensor cores only
    "T4": ("T4", {"fp32": 8.1 * _T, "tf32": None, "bf16": None, "fp16": 65 * _T}),
    "V100 SXM2": ("V100 SXM2", {"fp32": 15.7 * _T, "tf32": None, "bf16": None, "fp16": 125 * _T}),
    "V100": ("V100 (form not named: the SXM2 figures)",
             {"fp32": 15.7 * _T, "tf32": None, "bf16": None, "fp16": 125 * _T}),
    "V100 PCIE": ("V100 PCIe", {"fp32": 14 * _T, "tf32": None, "bf16": None, "fp16": 112 * _T}),
    "V100S": ("V100S PCIe", {"fp32": 16.4 * _T, "tf32": None, "bf16": None, "fp16": 130 * _T}),
    # Pascal: no tensor cores
    "P100 SXM2": ("P100 SXM2", {"fp32": 10.6 * _T, "tf32": None, "bf16": None, "fp16": None}),
    "P100": ("P100 (form not named: the SXM2 figures)",
             {"fp32": 10.6 * _T, "tf32": None, "bf16": None, "fp16": None}),
    "P100 PCIE": ("P100 PCIe", {"fp32": 9.3 * _T, "tf32": None, "bf16": None, "fp16": None}),
}
_NO_TENSOR_CORES = {
    "tf32": "TF32 needs Ampere or newer tensor cores",
    "bf16": "bf16 needs Ampere or newer tensor cores",
    "fp16": "fp16 tensor cores came with Volta; a Pascal GPU has none",
}
#: how each precision's figure is described in `device_peak_source`
_GPU_UNIT = {"fp32": "float32 on CUDA cores, TF32 off", "tf32": "TF32 tensor cores, dense",
             "bf16": "bf16 tensor cores, float32 accumulate, dense",
             "fp16": "fp16 tensor cores, float32 accumulate, dense"}


def _words(name: str) -> str:
    return " " + " ".join(name.lower().replace("-", " ").replace("_", " ").split()) + " "


def _gpu_entry(gpu_name: str) -> tuple[str, dict[str, float | None]] | None:
    """The data-sheet entry of the longest key found in GPU_NAME as whole words ("H100 PCIe" before "H100";
    "A10" is not in "A100" nor in "A10G"), or None."""
    name = _words(gpu_name)
    found = [key for key in GPU_PEAKS if _words(key) in name]
    return GPU_PEAKS[max(found, key=len)] if found else None


@functools.lru_cache(maxsize=None)  # once per run, device and precision: the GPU's name comes from nvidia-smi
def device_peak(device: str, precision: str = "fp32", threads: int | None = None) -> tuple[float | None, str]:
    """The device's peak FLOP/s at PRECISION and how it was obtained (the precision named in it): one figure per
    device and precision, for every framework. Null with the reason where the device has no such figure.

    GPU: the data sheet's dense figure for the GPU's name (GPU_PEAKS): CUDA-core float32 for fp32, the tensor
    cores' for tf32, bf16 and fp16; null where the GPU is not in the table or lacks tensor cores for the
    precision. CPU: cores x highest clock x FLOPs per cycle of the widest vector unit, assuming two FMA units per
    core, an upper bound (no framework's measured speed can exceed it, so utilisation stays within 100 %); bf16
    and fp16 use the 16-bit instructions the CPU has (AMX tiles, AVX512_BF16, AVX512_FP16: _HALF_FLOPS_PER_CYCLE),
    and where it has none the float32 figure (frameworks then compute in float32); tf32 is null (a tensor-core
    format)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from: {', '.join(PRECISIONS)}")
    if device == "cuda":
        for gpu in gpus()[:1]:
            entry = _gpu_entry(gpu["name"])
            if entry is None:
                return None, f"no data-sheet peak known for {gpu['name']}"
            model, peaks = entry
            peak = peaks[precision]
            if peak is None:
                return None, f"{gpu['name']} ({model}) has no {precision} peak: {_NO_TENSOR_CORES[precision]}"
            return peak, (f"data sheet: {gpu['name']} ({model}), {precision}: {_GPU_UNIT[precision]} "
                          f"({peak / 1e12:g} TFLOP/s)")
        return None, "no GPU found"
    if precision == "tf32":
        return None, "TF32 is an NVIDIA tensor-core format; a CPU has no tf32 peak"
    cores = threads or usable_cpus()
    flags = _cpu_flags()
    hz, clock_source = _cpu_max_hz()
    if not hz:
        return None, "CPU clock unknown"
    for flag, per_cycle, unit in _HALF_FLOPS_PER_CYCLE.get(precision, ()):
        if flag in flags:
            return (cores * hz * per_cycle,
                    f"theoretical: {cores} cores x {hz / 1e9:.2f} GHz ({clock_source}) x {per_cycle} {precision} "
                    f"FLOP/cycle ({unit})")
    for flag, per_cycle, unit in _FLOPS_PER_CYCLE:
        if flag in flags:
            why = "" if precision == "fp32" else (f"; no {precision} instructions on this CPU, so frameworks "
                                                  f"compute {precision} in float32: the float32 figure")
            return (cores * hz * per_cycle,
                    f"theoretical: {cores} cores x {hz / 1e9:.2f} GHz ({clock_source}) x {per_cycle} float32 "
                    f"FLOP/cycle ({unit}, 2 FMA units){why}")
    return None, "CPU vector width unknown"


def _ram_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def gpus() -> list[dict]:
    """NVIDIA GPUs as nvidia-smi reports them; an empty list where there is none (or no driver)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        completed = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,uuid", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=30)
        header = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    if completed.returncode != 0:
        return []
    cuda = header.split("CUDA Version:")[1].split()[0] if "CUDA Version:" in header else None
    found = []
    for line in completed.stdout.strip().splitlines():
        name, driver, memory, uuid = (part.strip() for part in line.split(","))
        found.append({"name": name, "driver": driver, "memory_total_mib": int(float(memory)), "cuda": cuda,
                      "uuid": uuid})
    return found


def node_info() -> dict:
    """The machine a cell ran on, for its record: on a cluster, cells of one run run on several (bench.cluster).
    `gpus_visible` is CUDA_VISIBLE_DEVICES as the cell got it (Ray sets it to the GPU a task was given)."""
    return {**_node_hardware(), "gpus_visible": os.environ.get("CUDA_VISIBLE_DEVICES")}


@functools.lru_cache(maxsize=1)  # once per process: nvidia-smi takes a tenth of a second
def _node_hardware() -> dict:
    return {"hostname": platform.node(), "cpu_model": _cpu_model(), "usable_cpus": usable_cpus(),
            "gpus": [{key: gpu.get(key) for key in ("name", "uuid", "driver")} for gpu in gpus()]}


def machine_info() -> dict:
    return {
        "os": platform.platform(),
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "ram_bytes": _ram_bytes(),
        "python": platform.python_version(),
        "gpus": gpus(),
    }
