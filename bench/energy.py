"""Energy a cell's device drew, read by the parent from the device's own counters.

- GPU cells: NVML's total-energy counter of each GPU (millijoules since the driver loaded; Volta and newer).
- CPU cells: RAPL's package domains (`/sys/class/powercap/intel-rapl:N/energy_uj`, microjoules; AMD exposes them
  under the same name), which wrap at `max_energy_range_uj`: the meter is read often enough (every sampler tick)
  to add each wrap back.

Both count the whole device, not the cell's processes: on a shared machine the contention check says so. Where no
counter is readable (a virtual machine, no permission, an older GPU) the meter says why, and the cell's energy
figures are null with that reason, never 0.
"""
from __future__ import annotations

from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


class EnergyMeter:
    """Cumulative joules of the device since the meter was made; `update()` reads the counters, `joules` is the
    total so far. `source` names what it reads; `reason` says why there is nothing to read (then `joules` is
    None)."""

    def __init__(self, device: str, nvml_handles=None, powercap: Path = POWERCAP):
        self.joules: float | None = None
        self._counters: list = []  # (read() -> raw units, wrap, last value, joules per unit)
        if device == "cpu":
            self.source, self.reason = self._open_rapl(powercap)
        else:
            self.source, self.reason = self._open_nvml(nvml_handles)
        if self._counters:
            self.joules = 0.0

    def _open_rapl(self, powercap: Path) -> tuple[str | None, str | None]:
        domains = sorted(powercap.glob("intel-rapl:[0-9]*")) if powercap.is_dir() else []
        domains = [domain for domain in domains if ":" not in domain.name.split("intel-rapl:")[1]]  # packages only
        for domain in domains:
            try:
                value = int((domain / "energy_uj").read_text())
                wrap = int((domain / "max_energy_range_uj").read_text())
            except (OSError, ValueError):
                continue
            self._counters.append([lambda d=domain: int((d / "energy_uj").read_text()), wrap, value, 1e-6])
        if self._counters:
            return f"RAPL package energy ({len(self._counters)} domain(s), {powercap})", None
        if not domains:
            return None, f"no RAPL energy counter at {powercap} (a virtual machine, or not Intel/AMD)"
        return None, f"RAPL counters at {powercap} are not readable (root only on recent kernels)"

    def _open_nvml(self, handles) -> tuple[str | None, str | None]:
        if not handles:
            return None, "NVML unavailable: no GPU energy counter"
        import pynvml

        try:
            for handle in handles:
                read = (lambda h=handle: pynvml.nvmlDeviceGetTotalEnergyConsumption(h))
                self._counters.append([read, None, read(), 1e-3])
        except pynvml.NVMLError as error:
            self._counters = []
            return None, f"NVML has no total-energy counter on this GPU ({error})"
        return f"NVML total energy of {len(handles)} GPU(s)", None

    def update(self) -> float | None:
        """Read every counter and add what it moved since the last read; returns the total."""
        for counter in self._counters:
            read, wrap, last, unit = counter
            try:
                value = read()
            except Exception:  # a counter that fails once is read again next tick
                continue
            moved = value - last if value >= last or wrap is None else value + wrap - last
            counter[2] = value
            self.joules += moved * unit
        return self.joules
