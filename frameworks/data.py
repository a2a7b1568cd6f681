"""Reading the datasets inside a cell: the official files (found by the harness, bench.datasets) as arrays, the
stratified subsets every framework trains and tests on, and seeded synthetic data. NumPy only.

Images come back as uint8 NCHW and labels as int64; scaling to [0, 1] happens once, in the cell, before training.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from frameworks.errors import DataError
from frameworks.formats import read_cifar_batch, read_idx
from frameworks.spec import Task

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR_FOLDER = "cifar-10-batches-py"  # the official archive's batches, extracted by the harness
SYNTHETIC = "synthetic"


@dataclass
class Dataset:
    name: str
    train_x: np.ndarray  # uint8, (N, C, H, W)
    train_y: np.ndarray  # int64, (N,)
    test_x: np.ndarray
    test_y: np.ndarray
    source: str  # the folder it was read from, or "synthetic"

    @property
    def synthetic(self) -> bool:
        return self.name == SYNTHETIC


def _idx_file(folder: Path, file: str) -> Path:
    return folder / file if (folder / file).is_file() else folder / file[:-3]


def _load_idx(folder: Path) -> tuple[np.ndarray, ...]:
    train_x, train_y, test_x, test_y = (read_idx(_idx_file(folder, file), ndim)
                                        for file, ndim in zip(IDX_FILES, (3, 1, 3, 1)))
    for images, labels, split in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
            raise DataError(f"{folder}: {split} images {images.shape} do not match labels {labels.shape} "
                            f"(expected (N, 28, 28) and (N,))")
    return train_x[:, None], train_y.astype(np.int64), test_x[:, None], test_y.astype(np.int64)


def _load_cifar(folder: Path) -> tuple[np.ndarray, ...]:
    batches = folder / CIFAR_FOLDER
    train = [read_cifar_batch(batches / f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = read_cifar_batch(batches / "test_batch")
    return np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), test_x, test_y


def load(name: str, folder: Path) -> Dataset:
    """Read dataset NAME from FOLDER (bench.datasets.prepare's: for CIFAR-10, the folder of the extracted batches)."""
    arrays = _load_cifar(folder) if name == "cifar10" else _load_idx(folder)
    return Dataset(name, *arrays, source=str(folder))


def subset_indices(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Sorted indices of COUNT samples, every class in proportion to its share of LABELS (largest remainders get
    the rounding), drawn within each class from (seed, labels) alone: every framework and process trains and tests
    on the same samples, and a file sorted by class still yields all classes (its first N would not)."""
    if count >= len(labels):
        return np.arange(len(labels))
    _, classes, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    quotas, remainders = np.divmod(sizes * count, len(labels))
    quotas[np.argsort(-remainders, kind="stable")[:count - quotas.sum()]] += 1
    rng = np.random.default_rng([seed, 0x5AB5E7])
    chosen = [rng.permutation(np.flatnonzero(classes == index))[:quota] for index, quota in enumerate(quotas)]
    return np.sort(np.concatenate(chosen))


def synthetic(task: Task, seed: int, train_samples: int, test_samples: int) -> Dataset:
    """Seeded random images and labels with the task's shapes and dtypes: for throughput and memory only."""
    rng = np.random.default_rng([seed, 0x5EED])
    shape = task.input_shape
    return Dataset(SYNTHETIC,
                   rng.integers(0, 256, (train_samples, *shape), dtype=np.uint8),
                   rng.integers(0, task.num_classes, train_samples, dtype=np.int64),
                   rng.integers(0, 256, (test_samples, *shape), dtype=np.uint8),
                   rng.integers(0, task.num_classes, test_samples, dtype=np.int64),
                   source=SYNTHETIC)
