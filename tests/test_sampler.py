"""The parent's memory sampler counts a cell's whole process tree and leaves the peak-FLOP/s phase out."""
import subprocess
import sys

from bench.sampler import MemorySampler

ALLOCATE = "import time; block = bytearray({size}); block[::4096] = b'x' * len(block[::4096]); time.sleep({hold})"


def test_child_processes_are_counted():
    """A framework's compiler workers hold memory too: a grandchild allocating 300 MB shows in the peak."""
    script = (f"import subprocess, sys; subprocess.run([sys.executable, '-c', "
              f"{ALLOCATE.format(size=300 * 2**20, hold=1.5)!r}])")
    process = subprocess.Popen([sys.executable, "-c", script])
    with MemorySampler(process.pid, gpu=False) as sampler:
        process.wait()
    assert sampler.peaks().host_rss_tree_bytes > 300 * 2**20
    assert sampler.peaks().gpu_nvml_reason == "no GPU used (device cpu)"


def test_excluded_phase_is_not_sampled():
    process = subprocess.Popen([sys.executable, "-c", ALLOCATE.format(size=300 * 2**20, hold=1.0)])
    with MemorySampler(process.pid, gpu=False) as sampler:
        sampler.set_phase("peak_matmul")
        process.wait()
    assert sampler.peaks().host_rss_tree_bytes is None
