"""The parent's cell sampler: memory of a cell's whole process tree (shared pages once), the peak-FLOP/s phase
left out, and other processes' CPU use while the cell is timed."""
import subprocess
import sys
import time

from bench.sampler import CONTENTION_THRESHOLD_CORES, CellSampler, contention_verdict

ALLOCATE = "import time; block = bytearray({size}); block[::4096] = b'x' * len(block[::4096]); time.sleep({hold})"
SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"


def test_child_processes_are_counted():
    """A framework's compiler workers hold memory too: a grandchild allocating 300 MB shows in the peak."""
    script = (f"import subprocess, sys; subprocess.run([sys.executable, '-c', "
              f"{ALLOCATE.format(size=300 * 2**20, hold=1.5)!r}])")
    process = subprocess.Popen([sys.executable, "-c", script])
    with CellSampler(process.pid, gpu=False) as sampler:
        process.wait()
    peaks = sampler.peaks()
    assert peaks.host_tree_bytes > 300 * 2**20
    assert peaks.host_tree_kind in ("pss", "rss")
    assert peaks.gpu_nvml_reason == "no GPU used (device cpu)"


def test_excluded_phase_is_not_sampled():
    process = subprocess.Popen([sys.executable, "-c", ALLOCATE.format(size=300 * 2**20, hold=1.0)])
    with CellSampler(process.pid, gpu=False) as sampler:
        sampler.set_phase("peak_matmul")
        process.wait()
    assert sampler.peaks().host_tree_bytes is None


def test_a_busy_neighbour_is_contention_and_the_cells_own_work_is_not():
    """The cell's own CPU-bound work is never contention; a CPU-bound process beside it is."""
    cell = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=2.5)])
    with CellSampler(cell.pid, gpu=False) as alone:
        alone.set_phase("train")
        time.sleep(2)
        alone.set_phase("peak_matmul")
    cell.wait()
    assert not alone.contention()["flagged"], alone.contention()

    cell = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=2.5)])
    neighbour = subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=2.5)])
    with CellSampler(cell.pid, gpu=False) as busy:
        busy.set_phase("train")
        time.sleep(2)
        busy.set_phase("peak_matmul")
    cell.wait(), neighbour.wait()
    found = busy.contention()
    assert found["flagged"] and found["other_cpu_cores"] > CONTENTION_THRESHOLD_CORES, found
    assert "other processes used" in found["reason"]


def test_other_processes_on_the_gpu_flag_the_cell_and_are_named():
    """NVML's list of other processes holding the GPU while the cell was timed: each named in the reason."""
    others = [{"pid": 4242, "name": "python3", "used_bytes": 3 * 2**30}, {"pid": 77, "name": "?", "used_bytes": None}]
    flagged, reason = contention_verdict(0.0, others)
    assert flagged
    assert "2 other process(es) held the GPU" in reason and "python3 (pid 4242, 3072 MiB)" in reason
    assert "? (pid 77)" in reason
    assert contention_verdict(0.0, []) == (False, None) and contention_verdict(0.0, None) == (False, None)
    both, why = contention_verdict(1.0, others[:1])
    assert both and "other processes used 1.00 cores" in why and "pid 4242" in why


def test_gpu_processes_that_may_be_the_cell_itself_do_not_flag_it():
    """NVML never listed the cell's own processes (another PID namespace): what it lists may be the cell."""
    flagged, reason = contention_verdict(0.0, [{"pid": 9, "name": "?", "used_bytes": None}], own_gpu_seen=False)
    assert not flagged and "may be the cell itself" in reason
