"""Shared helpers: run the real CLI in a subprocess, write small datasets in the official formats, and the one smoke
run of every framework that several test files read."""
from __future__ import annotations

import gzip
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An IDX file (gzip when the name ends in .gz) holding a uint8 array."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + np.ascontiguousarray(array, np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def make_mnist_folder(folder: Path, train: int = 600, test: int = 200, seed: int = 1) -> Path:
    """Learnable MNIST-format data: each class lights up its own band of pixels, plus noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = rng.integers(0, 60, (count, 28, 28)).astype(np.uint8)
        for index, label in enumerate(labels):
            images[index, 2 + 2 * label: 4 + 2 * label, :] = 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def write_cifar_batch(path: Path, count: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
             b"labels": rng.integers(0, 10, count).tolist()}
    path.write_bytes(pickle.dumps(batch))
    return path


def bench(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m bench ARGS` as a user would; downloads are disabled in tests."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "BENCH_NO_DOWNLOAD": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def cells(results: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(results.glob("*/cells/*.json"))]


@pytest.fixture
def mnist_folder(tmp_path) -> Path:
    return make_mnist_folder(tmp_path / "data" / "mnist")


#: The smoke run's cells: each framework once per mode, both tasks covered. The MLP is cheap to compile, so it takes
#: eager and compiled; the CNN runs native, the mode a default run compares. `scripts/test --all` adds every mode
#: on both tasks (tests/test_frameworks.py, marked slow).
SMOKE_RUNS = (("cifar_cnn", "native"), ("mnist_mlp", "eager,compiled"))


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> dict:
    """Every framework whose environment is set up, through `bench run --profile smoke` on synthetic data: two runs
    (SMOKE_RUNS), their records by framework and their terminal output."""
    from bench import envs
    from bench.registry import FRAMEWORKS

    ready = [name for name, framework in FRAMEWORKS.items() if envs.managed_python(framework) is not None]
    folder = tmp_path_factory.mktemp("smoke")
    outputs = []
    for task, modes in SMOKE_RUNS:
        completed = bench("run", "--frameworks", ",".join(ready), "--profile", "smoke", "--dataset", "synthetic",
                          "--tasks", task, "--mode", modes, cwd=folder, timeout=1800)
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr
        outputs.append(completed.stdout)
    records: dict[str, list[dict]] = {}
    for record in cells(folder / "results"):
        records.setdefault(record["framework"], []).append(record)
    return {"records": records, "stdout": "\n".join(outputs), "results": folder / "results"}


def slow(test):
    """The exhaustive matrix: run by `scripts/test --all` (BENCH_TEST_ALL=1), skipped otherwise, saying so."""
    return pytest.mark.skipif(not os.environ.get("BENCH_TEST_ALL"),
                              reason="the exhaustive matrix: `scripts/test --all` runs it")(test)
