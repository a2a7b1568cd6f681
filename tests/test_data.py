"""Dataset lookup and the harness-owned batch order."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from bench import datasets
from frameworks import data, loop
from frameworks.errors import DataError
from frameworks.spec import CIFAR_CNN, MNIST_MLP
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
    found = data.load("mnist", folder)
    assert found.train_x.shape == (30, 1, 28, 28) and found.test_y.shape == (12,) and not found.synthetic


def test_mismatched_images_and_labels(tmp_path):
    folder = make_mnist_folder(tmp_path / "mnist", train=30, test=12)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes((folder / "train-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(DataError, match="t10k images"):
        data.load("mnist", folder)


def test_cifar_folder_loads(tmp_path):
    batches = tmp_path / "cifar10" / data.CIFAR_FOLDER
    batches.mkdir(parents=True)
    for index in range(1, 6):
        write_cifar_batch(batches / f"data_batch_{index}", 4, seed=index)
    write_cifar_batch(batches / "test_batch", 3)
    assert datasets.locate("cifar10", str(tmp_path)) == tmp_path / "cifar10"
    found = data.load("cifar10", tmp_path / "cifar10")
    assert found.train_x.shape == (20, 3, 32, 32) and found.test_x.shape == (3, 3, 32, 32)


def test_synthetic_matches_task_shapes_and_is_seeded():
    a = data.synthetic(CIFAR_CNN, seed=3, train_samples=10, test_samples=5)
    b = data.synthetic(CIFAR_CNN, seed=3, train_samples=10, test_samples=5)
    assert a.synthetic and a.train_x.shape == (10, 3, 32, 32) and a.train_x.dtype == np.uint8
    assert np.array_equal(a.train_x, b.train_x) and np.array_equal(a.test_y, b.test_y)


def test_batches_drop_the_last_partial_batch_and_cover_the_rest():
    batches = list(loop.train_batches(1000, 128, seed=0, epoch=0))
    assert len(batches) == 7 and all(len(batch) == 128 for batch in batches)
    assert len(np.unique(np.concatenate(batches))) == 7 * 128


def test_each_epoch_is_a_different_permutation():
    assert not np.array_equal(loop.epoch_order(100, 0, 0), loop.epoch_order(100, 0, 1))


def test_batch_order_is_identical_across_processes():
    code = ("import hashlib, numpy as np; from frameworks import loop; "
            "print(hashlib.sha256(np.concatenate([b for e in range(3) for b in "
            "loop.train_batches(60000, 128, 7, e)]).tobytes()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip() for _ in range(2)}
    local = hashlib.sha256(np.concatenate([b for e in range(3) for b in loop.train_batches(60000, 128, 7, e)])
                           .tobytes()).hexdigest()
    assert digests == {local}


def test_subset_of_a_class_sorted_set_holds_every_class_in_proportion():
    labels = np.repeat(np.arange(10), 1000)  # a test set sorted by class: its first 2,000 hold two classes
    chosen = data.subset_indices(labels, 2000, seed=0)
    assert len(chosen) == len(np.unique(chosen)) == 2000 and (np.diff(chosen) > 0).all()
    assert np.bincount(labels[chosen], minlength=10).tolist() == [200] * 10
    assert np.array_equal(chosen, data.subset_indices(labels, 2000, seed=0))
    assert not np.array_equal(chosen, data.subset_indices(labels, 2000, seed=1))
    assert np.array_equal(data.subset_indices(labels, 10_000, seed=0), np.arange(10_000))


def test_subset_rounds_by_largest_remainder():
    labels = np.repeat([0, 1, 2], [5, 3, 2])  # 7 of 10: quotas 3.5, 2.1, 1.4
    assert np.bincount(labels[data.subset_indices(labels, 7, seed=3)]).tolist() == [4, 2, 1]


def test_subset_is_the_same_in_every_framework_environment():
    """Each framework's environment has its own NumPy (MXNet's is 1.23): all must pick the same samples."""
    from bench import envs
    from bench.registry import FRAMEWORKS

    code = ("import hashlib, numpy as np; from frameworks import data; "
            "labels = np.random.default_rng(5).integers(0, 10, 60000); "
            "print(hashlib.sha256(data.subset_indices(labels, 5000, 2).astype(np.int64).tobytes()).hexdigest())")
    pythons = [sys.executable] + [interpreter.python for name in ("pytorch", "mxnet")
                                  if (interpreter := envs.interpreter_for(FRAMEWORKS[name], {}))]
    digests = {subprocess.run([python, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.strip() for python in pythons}
    assert len(digests) == 1, pythons


def test_a_cell_trains_and_tests_on_the_stratified_subsets(tmp_path):
    from frameworks.protocol import CellConfig
    from frameworks.child import _load_data

    folder = make_mnist_folder(tmp_path / "mnist", train=300, test=100)
    config = CellConfig(run_id="r", cell_id="c", framework="pytorch", adapter="frameworks.pytorch:PyTorchAdapter", task="mnist_mlp", dataset="mnist",
                        data_folder=str(folder), device="cpu", mode="eager", repeat=0, seed=4, epochs=1,
                        batch_size=16, train_samples=150, test_samples=40, spawned_at=0.0,
                        result_path=str(tmp_path / "result.json"))
    (train_x, train_y), (test_x, test_y), synthetic = _load_data(config, MNIST_MLP, "NHWC")
    found = data.load("mnist", folder)
    for x, y, full_x, full_y, count in ((train_x, train_y, found.train_x, found.train_y, 150),
                                        (test_x, test_y, found.test_x, found.test_y, 40)):
        keep = data.subset_indices(full_y, count, seed=4)
        assert np.array_equal(y, full_y[keep]) and x.shape == (count, 28, 28, 1)
        assert np.array_equal(x, full_x[keep].transpose(0, 2, 3, 1).astype(np.float32) / np.float32(255))
    assert not synthetic


def test_spec_parameter_counts():
    assert CIFAR_CNN.parameter_count == 3_441_592
    assert MNIST_MLP.parameter_count == 784 * 128 + 128 + 128 * 10 + 10
