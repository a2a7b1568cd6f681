"""What the run ran on: OS, CPU, memory, GPUs. Read from the system, never from a framework."""
from __future__ import annotations

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
        "ram_bytes": _ram_bytes(),
        "python": platform.python_version(),
        "gpus": gpus(),
    }
