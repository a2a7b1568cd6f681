"""Dataset lookup and the harness-owned batch order."""
import hashlib
import subprocess
import sys

import numpy as np
import pytest

from bench import datasets, loop
from bench.errors import DataError
from bench.spec import CIFAR_CNN, MNIST_MLP
from conftest import REPO, make_mnist_folder, write_cifar_batch


def test_lookup_order_prefers_data_dir_then_env(tmp_path, monkeypatch):
    first = make_mnist_folder(tmp_path / "a" / "mnist", train=20, test=10)
    second = make_mnist_folder(tmp_path / "b", train=20, test=10)
    monkeypatch.setenv("BENCH_DATA", str(second))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    assert datasets.locate("mnist", str(tmp_path / "a")) == first
    assert datasets.locate("mnist", None) == second


def test_not_found_message_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BENCH_DATA", raising=False)
    assert datasets.locate("cifar10", str(tmp_path)) is None
    message = datasets.not_found_message("cifar10", str(tmp_path))
    assert str(tmp_path / "cifar10") in message and "/usr/share/datasets/cifar10" in message
    assert "cifar-10-python.tar.gz" in message


def test_mnist_folder_loads_as_nchw(tmp_path):
    folder = make_mnist_folder(tmp_path / "mnist", train=30, test=12)
    data = datasets.load("mnist", folder)
    assert data.train_x.shape == (30, 1, 28, 28) and data.test_y.shape == (12,) and not data.synthetic


def test_mismatched_images_and_labels(tmp_path):
    folder = make_mnist_folder(tmp_path / "mnist", train=30, test=12)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes((folder / "train-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match="t10k images"):
        datasets.load("mnist", folder)


def test_cifar_folder_loads(tmp_path):
    batches = tmp_path / "cifar10" / datasets.CIFAR_FOLDER
    batches.mkdir(parents=True)
    for index in range(1, 6):
        write_cifar_batch(batches / f"data_batch_{index}", 4, seed=index)
    write_cifar_batch(batches / "test_batch", 3)
    assert datasets.locate("cifar10", str(tmp_path)) == tmp_path / "cifar10"
    data = datasets.load("cifar10", tmp_path / "cifar10")
    assert data.train_x.shape == (20, 3, 32, 32) and data.test_x.shape == (3, 3, 32, 32)


def test_synthetic_matches_task_shapes_and_is_seeded():
    a = datasets.synthetic(CIFAR_CNN, seed=3, train_samples=10, test_samples=5)
    b = datasets.synthetic(CIFAR_CNN, seed=3, train_samples=10, test_samples=5)
    assert a.synthetic and a.train_x.shape == (10, 3, 32, 32) and a.train_x.dtype == np.uint8
    assert np.array_equal(a.train_x, b.train_x) and np.array_equal(a.test_y, b.test_y)


def test_batches_drop_the_last_partial_batch_and_cover_the_rest():
    batches = list(loop.train_batches(1000, 128, seed=0, epoch=0))
    assert len(batches) == 7 and all(len(batch) == 128 for batch in batches)
    assert len(np.unique(np.concatenate(batches))) == 7 * 128


def test_each_epoch_is_a_different_permutation():
    assert not np.array_equal(loop.epoch_order(100, 0, 0), loop.epoch_order(100, 0, 1))


def test_batch_order_is_identical_across_processes():
    code = ("import hashlib, numpy as np; from bench import loop; "
            "print(hashlib.sha256(np.concatenate([b for e in range(3) for b in "
            "loop.train_batches(60000, 128, 7, e)]).tobytes()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip() for _ in range(2)}
    local = hashlib.sha256(np.concatenate([b for e in range(3) for b in loop.train_batches(60000, 128, 7, e)])
                           .tobytes()).hexdigest()
    assert digests == {local}


def test_spec_parameter_counts():
    assert CIFAR_CNN.parameter_count == 3_441_592
    assert MNIST_MLP.parameter_count == 784 * 128 + 128 + 128 * 10 + 10
