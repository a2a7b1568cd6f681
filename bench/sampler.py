"""A running cell watched from outside: memory of its whole process tree, and what else used the machine meanwhile.

The parent samples, so the child's own figures (ru_maxrss, the framework's allocator counter) are checked by an
independent one, and compiler or data-loader processes a framework starts are counted too. The child announces
its phases (`phase` events); samples taken while it measures the device's peak FLOP/s (`peak_matmul`) are left
out, and the GPU baseline is the idle context (`device_ready`: context and BLAS handle, no model yet).

Host memory of the tree is the sum of each process's PSS (proportional set size: a page shared by k processes
counts 1/k in each, so shared pages count once), read from /proc/PID/smaps_rollup where the OS gives it, else RSS
(shared pages then count once per process); the record says which. PSS costs the kernel a page-table walk, so it
is read only when the tree's RSS is near its peak so far, at most every PSS_INTERVAL_S.

Contention: over the timed phases (training and inference), the CPU time used by every process other than the
cell's tree and this harness process (system-wide busy time, from /proc/stat via psutil, minus the two), plus
the time the hypervisor gave this machine's CPUs to others (steal), in cores: CPU seconds per second of wall
time. On a GPU, any other process holding the device while the cell is timed is listed (NVML). Above
CONTENTION_THRESHOLD_CORES, or with another process on the GPU, the cell is flagged, the reason naming them: its
speed was measured on a busy machine (`contention_verdict`).

Energy: the device's own counter (bench.energy), read every tick and at each phase change, summed per phase.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import psutil

from bench.energy import EnergyMeter

SAMPLE_INTERVAL_S = 0.05
PSS_INTERVAL_S = 0.25
PSS_NEAR_PEAK = 0.97  # read PSS when the tree's RSS is at least this fraction of its peak so far
EXCLUDED_PHASES = ("peak_matmul",)
TIMED_PHASES = ("train", "eval", "inference")
#: Other processes' CPU use above which a cell is flagged as measured under contention: a quarter of one core on
#: average. Idle, this machine's background (daemons, the harness's own sampling excluded) stays under 0.05
#: cores; one CPU-bound neighbour adds about 1 (README, "Contention").
CONTENTION_THRESHOLD_CORES = 0.25


@dataclass
class MemoryPeaks:
    host_tree_bytes: int | None
    host_tree_kind: str | None  # "pss" or "rss"
    gpu_nvml_bytes: int | None  # peak minus the idle-context baseline
    gpu_nvml_baseline_bytes: int | None
    gpu_nvml_reason: str | None  # why the GPU figures are null


@dataclass
class Energy:
    joules_by_phase: dict[str, float] | None  # the device's joules during each phase; None: no counter
    source: str | None  # what was read
    reason: str | None  # why there is no figure


@dataclass
class _CpuWindow:
    """System-wide and own CPU seconds at the start of the timed phases, and the tree's per-process CPU."""
    wall: float
    system_busy: float
    steal: float
    harness: float
    tree_start: dict[int, float] = field(default_factory=dict)
    tree_last: dict[int, float] = field(default_factory=dict)


class CellSampler:
    """`with CellSampler(pid, gpu=...) as sampler:` ... `set_phase(name)` ... `peaks()`, `contention()`."""

    def __init__(self, pid: int, gpu: bool, memory_cap_bytes: int | None = None):
        self.pid, self.phase = pid, "startup"
        self.memory_cap_bytes = memory_cap_bytes  # the tree's RSS past this: killed (bench capacity on a CPU)
        self.over_cap = False
        self.host_rss_peak = 0
        self.host_peak: int | None = None
        self.host_kind: str | None = None
        self.gpu_peak: int | None = None
        self.gpu_baseline: int | None = None
        self.gpu_others: dict[int, dict] = {}
        self.gpu_own_seen = False  # NVML listed one of the cell's processes at least once
        self.window: _CpuWindow | None = None
        self.window_result: tuple[float, float, float] | None = None  # (other, steal, wall)
        self._last_pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._nvml, self.gpu_reason = _open_nvml() if gpu else (None, "no GPU used (device cpu)")
        self.energy = EnergyMeter("cuda" if gpu else "cpu", self._nvml)
        self.joules_by_phase: dict[str, float] = {}
        self._energy_lock, self._energy_mark = threading.Lock(), 0.0
        self.load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    def __enter__(self) -> "CellSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._close_window()
        self._account_energy()

    def _account_energy(self) -> None:
        """The joules since the last phase change go to the phase that is ending."""
        with self._energy_lock:
            total = self.energy.update()
            if total is not None:
                self.joules_by_phase[self.phase] = self.joules_by_phase.get(self.phase, 0.0) + total - self._energy_mark
                self._energy_mark = total

    def set_phase(self, name: str) -> None:
        self._account_energy()
        if name in TIMED_PHASES and self.window is None:
            self._open_window()
        elif name not in TIMED_PHASES:
            self._close_window()
        self.phase = name

    def _open_window(self) -> None:
        times = psutil.cpu_times()
        self.window = _CpuWindow(time.monotonic(), _busy(times), getattr(times, "steal", 0.0), _own_cpu())
        self.window.tree_start = self.window.tree_last = _tree_cpu(self.pid)

    def _close_window(self) -> None:
        window, self.window = self.window, None
        if window is None or self.window_result is not None:
            return
        tree_now = _tree_cpu(self.pid)
        tree_last = {**window.tree_last, **tree_now}
        tree_used = sum(seconds - window.tree_start.get(pid, 0.0) for pid, seconds in tree_last.items())
        times = psutil.cpu_times()
        wall = time.monotonic() - window.wall
        other = _busy(times) - window.system_busy - tree_used - (_own_cpu() - window.harness)
        steal = getattr(times, "steal", 0.0) - window.steal
        if wall > 0:
            self.window_result = (max(0.0, other) / wall, max(0.0, steal) / wall, wall)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            phase, window = self.phase, self.window
            if phase in EXCLUDED_PHASES:
                continue
            with self._energy_lock:
                self.energy.update()  # often enough that a counter's wrap is seen
            processes = _tree(self.pid)
            if window is not None:
                window.tree_last = {**window.tree_last, **_tree_cpu(self.pid, processes)}
            self._sample_host(processes)
            if self._nvml is not None:
                pids = {process.pid for process in processes}
                used, seen = _gpu_used_bytes(self._nvml, pids, self.gpu_others if window is not None else None)
                self.gpu_own_seen = self.gpu_own_seen or seen
                if phase == "device_ready":
                    self.gpu_baseline = used if self.gpu_baseline is None else min(self.gpu_baseline, used)
                elif phase != "startup":
                    self.gpu_peak = max(self.gpu_peak or 0, used)

    def _sample_host(self, processes: list[psutil.Process]) -> None:
        rss = sum(_quiet(lambda p=p: p.memory_info().rss, 0) for p in processes)
        if not rss:
            return
        if self.memory_cap_bytes is not None and rss > self.memory_cap_bytes and not self.over_cap:
            self.over_cap = True  # RSS, not PSS: what the machine must hold, read every tick
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)  # the child leads its own process group
        self.host_rss_peak = max(self.host_rss_peak, rss)
        if self.host_kind == "rss":
            self.host_peak = self.host_rss_peak
            return
        now = time.monotonic()
        if rss < PSS_NEAR_PEAK * self.host_rss_peak or now - self._last_pss < PSS_INTERVAL_S:
            return
        self._last_pss = now
        pss = [_quiet(lambda p=p: p.memory_full_info().pss, None) for p in processes]
        if any(value is None for value in pss):  # no smaps_rollup (another OS, no permission): RSS it is
            self.host_kind, self.host_peak = "rss", self.host_rss_peak
        else:
            self.host_kind, self.host_peak = "pss", max(self.host_peak or 0, sum(pss))

    def peaks(self) -> MemoryPeaks:
        gpu_peak, reason = None, self.gpu_reason
        if self._nvml is not None:
            if self.gpu_baseline is None or not self.gpu_peak:
                reason = "NVML saw no GPU memory of this cell's processes (another PID namespace?)"
            else:
                gpu_peak = max(0, self.gpu_peak - self.gpu_baseline)
        return MemoryPeaks(self.host_peak, self.host_kind if self.host_peak else None, gpu_peak,
                           self.gpu_baseline if gpu_peak is not None else None, reason)

    def energies(self) -> Energy:
        if self.energy.reason:
            return Energy(None, None, self.energy.reason)
        return Energy(dict(self.joules_by_phase), self.energy.source, None)

    def contention(self) -> dict | None:
        """Other processes' CPU use while the cell was timed, and the verdict; None if it never reached training."""
        if self.window_result is None:
            return None
        other, steal, wall = self.window_result
        gpu_others = sorted(self.gpu_others.values(), key=lambda p: p["pid"]) if self._nvml is not None else None
        flagged, reason = contention_verdict(other + steal, gpu_others, own_gpu_seen=self.gpu_own_seen)
        return {"flagged": flagged, "other_cpu_cores": round(other, 4), "steal_cores": round(steal, 4),
                "threshold_cores": CONTENTION_THRESHOLD_CORES, "window_s": round(wall, 3),
                "load_before": self.load_before, "gpu_other_processes": gpu_others, "reason": reason}


def contention_verdict(busy_cores: float, gpu_others: list[dict] | None,
                       own_gpu_seen: bool = True) -> tuple[bool, str | None]:
    """Whether a cell was measured under contention, and why (None when it was not): other processes' CPU use
    (BUSY_CORES, steal included) above CONTENTION_THRESHOLD_CORES, or other processes holding the GPU while it was
    timed (GPU_OTHERS, from NVML), each named. Where NVML never listed one of the cell's own processes
    (OWN_GPU_SEEN false: the harness in another PID namespace than the driver's view, a container), a process NVML
    lists may be the cell itself under another number, so it is named in the reason but does not flag the cell."""
    reasons, flagged = [], False
    if busy_cores > CONTENTION_THRESHOLD_CORES:
        flagged = True
        reasons.append(f"other processes used {busy_cores:.2f} cores while it was timed "
                       f"(threshold {CONTENTION_THRESHOLD_CORES:g})")
    if gpu_others:
        named = ", ".join(f"{p.get('name') or '?'} (pid {p['pid']}"
                          + (f", {p['used_bytes'] / 2**20:.0f} MiB" if p.get("used_bytes") else "") + ")"
                          for p in gpu_others)
        if own_gpu_seen:
            flagged = True
            reasons.append(f"{len(gpu_others)} other process(es) held the GPU while it was timed: {named}")
        else:
            reasons.append(f"NVML listed {len(gpu_others)} process(es) on the GPU ({named}) but none of the cell's "
                           f"own (another PID namespace?): they may be the cell itself, so not flagged")
    return flagged, "; ".join(reasons) or None


def _busy(times) -> float:
    """Busy CPU seconds of the whole machine (everything but idle, iowait and steal)."""
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


def _own_cpu() -> float:
    """This harness process's CPU seconds (its sampler and output threads), not contention."""
    times = os.times()
    return times.user + times.system


def _quiet(read, default):
    try:
        return read()
    except (psutil.Error, OSError):
        return default


def _tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (processes that vanish meanwhile are skipped)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _tree_cpu(pid: int, processes: list[psutil.Process] | None = None) -> dict[int, float]:
    """CPU seconds so far of each process of the tree (children it already reaped included)."""
    seconds = {}
    for process in processes if processes is not None else _tree(pid):
        times = _quiet(process.cpu_times, None)
        if times is not None:
            seconds[process.pid] = times.user + times.system + times.children_user + times.children_system
    return seconds


def _open_nvml():
    """NVML handles of every GPU, or None and why not."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())], None
    except Exception as error:  # no driver, no library: the figure is null with this reason
        return None, f"NVML unavailable: {error}"


def _gpu_used_bytes(handles, pids: set[int], others: dict[int, dict] | None) -> tuple[int, bool]:
    """GPU memory of the cell's processes, and whether NVML listed any of them; other processes on the device go
    into `others` (when given)."""
    import pynvml

    used, seen, own = 0, False, os.getpid()
    for handle in handles:
        for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if process.pid in pids:
                used += process.usedGpuMemory or 0
                seen = True
            elif others is not None and process.pid != own:
                name = _quiet(lambda: psutil.Process(process.pid).name(), "?")
                others[process.pid] = {"pid": process.pid, "name": name, "used_bytes": process.usedGpuMemory}
    return used, seen


def machine_load(seconds: float = 1.0, top: int = 3) -> tuple[float, list[tuple[str, int, float]]]:
    """Before a run: cores' worth of CPU other processes used over `seconds`, and the busiest of them
    (name, pid, cores). This process is left out."""
    own = os.getpid()
    processes = [process for process in psutil.process_iter(["name"]) if process.pid != own]
    for process in processes:
        _quiet(lambda p=process: p.cpu_percent(None), None)
    before, own_before = psutil.cpu_times(), _own_cpu()
    time.sleep(seconds)
    after = psutil.cpu_times()
    busy = (_busy(after) - _busy(before) - (_own_cpu() - own_before)) / seconds
    usage = [(process.info["name"] or "?", process.pid, _quiet(lambda p=process: p.cpu_percent(None), 0.0) / 100)
             for process in processes]
    return max(0.0, busy), sorted((u for u in usage if u[2] > 0.01), key=lambda u: -u[2])[:top]
