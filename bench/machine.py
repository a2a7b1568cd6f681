"""What the run ran on: OS, CPU, memory, GPUs, the CPUs a process may use, and the device's peak FLOP/s.
Read from the system, never from a framework."""
from __future__ import annotations

import functools
import math
import os
import platform
import shutil
import subprocess
from pathlib import Path


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
#: Dense float32 peaks (no tensor cores, TF32 off) from NVIDIA's data sheets, by a substring of the GPU's name.
GPU_FP32_PEAK = {"H200": 67e12, "H100 SXM": 67e12, "H100 PCIe": 51e12, "H100 NVL": 60e12, "H100": 51e12,
                 "A100": 19.5e12, "L40S": 91.6e12, "L4": 30.3e12, "A10": 31.2e12, "V100": 15.7e12, "T4": 8.1e12}


@functools.lru_cache(maxsize=None)  # once per run and device: the GPU's name comes from nvidia-smi
def device_peak(device: str, threads: int | None = None) -> tuple[float | None, str]:
    """The device's float32 peak FLOP/s and how it was obtained: one figure per device, for every framework.

    CPU: cores x highest clock x FLOPs per cycle of the widest vector unit, assuming two FMA units per core, an
    upper bound (no framework's measured speed can exceed it, so utilisation stays within 100 %). GPU: the data
    sheet's figure for the GPU's name (null where the name is not in the table)."""
    if device == "cuda":
        for gpu in gpus()[:1]:
            for name, peak in GPU_FP32_PEAK.items():
                if name.lower() in gpu["name"].lower():
                    return peak, f"data sheet: {gpu['name']}, float32 without tensor cores ({peak / 1e12:g} TFLOP/s)"
            return None, f"no data-sheet peak known for {gpu['name']}"
        return None, "no GPU found"
    cores = threads or usable_cpus()
    flags = _cpu_flags()
    hz, clock_source = _cpu_max_hz()
    for flag, per_cycle, unit in _FLOPS_PER_CYCLE:
        if flag in flags and hz:
            return (cores * hz * per_cycle,
                    f"theoretical: {cores} cores x {hz / 1e9:.2f} GHz ({clock_source}) x {per_cycle} float32 "
                    f"FLOP/cycle ({unit}, 2 FMA units)")
    return None, "CPU vector width or clock unknown"


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
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=30)
        header = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    if completed.returncode != 0:
        return []
    cuda = header.split("CUDA Version:")[1].split()[0] if "CUDA Version:" in header else None
    found = []
    for line in completed.stdout.strip().splitlines():
        name, driver, memory = (part.strip() for part in line.split(","))
        found.append({"name": name, "driver": driver, "memory_total_mib": int(float(memory)), "cuda": cuda})
    return found


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
