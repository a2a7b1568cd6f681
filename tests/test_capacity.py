"""`bench capacity`: the bounded search on its own, and one real search on the CPU against a memory cap."""

import psutil
import pytest

from bench import capacity, envs, stored
from bench.capacity import FAILED, FITS, OUT_OF_MEMORY, Try, next_batch
from bench.registry import FRAMEWORKS
from conftest import bench


def search(limit: int, start: int = 128, max_batch: int = 65536, max_tries: int = capacity.MAX_TRIES) -> list[int]:
    """The batches tried against a device where everything up to LIMIT fits."""
    tries: list[Try] = []
    while len(tries) < max_tries and (batch := next_batch(tries, start, max_batch)) is not None:
        tries.append(Try(batch, FITS if batch <= limit else OUT_OF_MEMORY, None, None, None))
    return [t.batch_size for t in tries]


def test_search_doubles_then_bisects_to_the_resolution():
    tried = search(limit=3000)
    assert tried[:6] == [128, 256, 512, 1024, 2048, 4096]  # doubling until one does not fit
    fitted = max(b for b in tried if b <= 3000)
    too_big = min(b for b in tried if b > 3000)
    assert fitted <= 3000 < too_big and too_big - fitted <= fitted * capacity.RESOLUTION
    assert len(tried) <= capacity.MAX_TRIES


def test_search_is_bounded_by_max_batch_and_max_tries_and_halves_below_the_start():
    assert search(limit=10**9, max_batch=1000) == [128, 256, 512, 1000]  # the cap fits: done
    assert len(search(limit=3000, max_tries=7)) == 7
    assert search(limit=40)[:3] == [128, 64, 32]  # not even the first fits: halve until one does
    assert search(limit=0) == [128, 64, 32, 16, 8, 4, 2, 1]


def test_a_failure_that_is_not_memory_ends_the_search():
    tries = [Try(128, FITS, 1, 0.1, None), Try(256, FAILED, None, None, "ValueError: bad")]
    assert next_batch(tries, 128, 65536) is None
    found = capacity.Capacity("pytorch", "mnist_mlp", "cpu", "fp32", "host", 1, 65536, tries)
    assert found.verdict == "stopped: batch 256: ValueError: bad"


@pytest.mark.skipif(envs.managed_python(FRAMEWORKS["pytorch"]) is None, reason="run `bench setup pytorch` first")
def test_capacity_on_the_cpu_records_running_out_of_memory_as_data(tmp_path):
    """Under a 450 MiB cap, PyTorch's MLP fits 8192 samples a batch but not 65536: the tries past the cap are
    killed by the sampler and recorded as out of memory; memory per sample comes from the batches that fitted."""
    completed = bench("capacity", "--frameworks", "pytorch", "--tasks", "mnist_mlp", "--memory-cap", "450MiB",
                      "--start-batch", "8192", "--max-tries", "5", "--out", str(tmp_path / "results"),
                      cwd=tmp_path, timeout=600)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    [row] = stored.CAPACITY.load(tmp_path / "results")["rows"]
    outcomes = {attempt["batch_size"]: attempt["outcome"] for attempt in row["tries"]}
    assert outcomes[8192] == FITS and OUT_OF_MEMORY in outcomes.values() and len(outcomes) == 5
    assert 8192 <= row["largest_batch"] < row["smallest_too_big"] <= 65536
    too_big = next(a for a in row["tries"] if a["outcome"] == OUT_OF_MEMORY)
    assert "memory cap (450 MiB)" in too_big["reason"]
    assert 1024 < row["bytes_per_sample"] < 64 * 1024  # a flattened 28x28 float32 input alone is 3 KiB
    fitted = [a["peak_bytes"] for a in row["tries"] if a["outcome"] == FITS]
    assert all(peak <= 450 * 2**20 for peak in fitted)
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if "frameworks.child" in " ".join(p.info["cmdline"] or [])]
    assert not leftovers  # every killed try took its whole process tree with it
    assert "Largest training batch on cpu" in completed.stdout


def test_bad_memory_cap_is_one_line_and_exit_2(tmp_path):
    completed = bench("capacity", "--memory-cap", "lots", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].endswith("expected a size such as 4GiB or 1500MiB, received 'lots'")
