"""Shared helpers: run the real CLI in a subprocess, and write small datasets in the official formats."""
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
