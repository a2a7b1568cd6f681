"""Memory of a running cell, sampled from outside: host RSS of its whole process tree, and GPU memory per NVML.

The parent samples, so the child's own figures (ru_maxrss, the framework's allocator counter) are checked by an
independent one, and compiler or data-loader processes a framework starts are counted too. The child announces
its phases (`phase` events); samples taken while it measures the device's peak FLOP/s (`peak_matmul`) are left
out, and the GPU baseline is the idle context (`device_ready`: context and BLAS handle, no model yet).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import psutil

SAMPLE_INTERVAL_S = 0.05
EXCLUDED_PHASES = ("peak_matmul",)


@dataclass
class MemoryPeaks:
    host_rss_tree_bytes: int | None
    gpu_nvml_bytes: int | None  # peak minus the idle-context baseline
    gpu_nvml_baseline_bytes: int | None
    gpu_nvml_reason: str | None  # why the GPU figures are null


class MemorySampler:
    """`with MemorySampler(pid, gpu=...) as sampler:` ... `sampler.set_phase(name)` ... `sampler.peaks()`."""

    def __init__(self, pid: int, gpu: bool):
        self.pid, self.phase = pid, "startup"
        self.host_peak: int | None = None
        self.gpu_peak: int | None = None
        self.gpu_baseline: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._nvml, self.gpu_reason = _open_nvml() if gpu else (None, "no GPU used (device cpu)")

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def set_phase(self, name: str) -> None:
        self.phase = name

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            phase = self.phase
            if phase in EXCLUDED_PHASES:
                continue
            pids, rss = _tree(self.pid)
            if rss:
                self.host_peak = max(self.host_peak or 0, rss)
            if self._nvml is not None:
                used = _gpu_used_bytes(self._nvml, pids)
                if phase == "device_ready":
                    self.gpu_baseline = used if self.gpu_baseline is None else min(self.gpu_baseline, used)
                elif phase != "startup":
                    self.gpu_peak = max(self.gpu_peak or 0, used)

    def peaks(self) -> MemoryPeaks:
        gpu_peak, reason = None, self.gpu_reason
        if self._nvml is not None:
            if self.gpu_baseline is None or not self.gpu_peak:
                reason = "NVML saw no GPU memory of this cell's processes (another PID namespace?)"
            else:
                gpu_peak = max(0, self.gpu_peak - self.gpu_baseline)
        return MemoryPeaks(self.host_peak, gpu_peak, self.gpu_baseline if gpu_peak is not None else None, reason)


def _tree(pid: int) -> tuple[set[int], int]:
    """PIDs and summed RSS of a process and all its descendants (processes that vanish meanwhile are skipped)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return set(), 0
    pids, rss = set(), 0
    for process in processes:
        try:
            rss += process.memory_info().rss
            pids.add(process.pid)
        except psutil.Error:
            pass
    return pids, rss


def _open_nvml():
    """NVML handles of every GPU, or None and why not."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())], None
    except Exception as error:  # no driver, no library: the figure is null with this reason
        return None, f"NVML unavailable: {error}"


def _gpu_used_bytes(handles, pids: set[int]) -> int:
    import pynvml

    used = 0
    for handle in handles:
        for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if process.pid in pids and process.usedGpuMemory:
                used += process.usedGpuMemory
    return used
