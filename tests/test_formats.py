"""The dataset format readers, on files written here in the official formats, and on broken ones."""
import gzip
import pickle

import numpy as np
import pytest

from frameworks.errors import DataError
from frameworks.formats import read_cifar_batch, read_idx
from conftest import write_cifar_batch, write_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte.gz", "images-idx3-ubyte"])
def test_idx_round_trip(tmp_path, name):
    images = np.arange(3 * 28 * 28, dtype=np.uint64).reshape(3, 28, 28).astype(np.uint8)
    assert np.array_equal(read_idx(write_idx(tmp_path / name, images), 3), images)


def test_idx_truncated_gzip_names_the_file(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((50, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: truncated or corrupt gzip"):
        read_idx(path, 3)


def test_idx_truncated_data(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + bytes(60)))
    with pytest.raises(DataError, match=r"labels.gz: truncated IDX data \(header says 100 bytes, found 60\)"):
        read_idx(path, 1)


def test_idx_wrong_magic(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(b"PK\x03\x04 this is a zip file"))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path, 1)


def test_idx_wrong_dimensions(tmp_path):
    path = write_idx(tmp_path / "labels.gz", np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(DataError, match="expected an IDX file with 1 dimensions, found 3"):
        read_idx(path, 1)


def test_cifar_batch_layout(tmp_path):
    path = write_cifar_batch(tmp_path / "data_batch_1", 7)
    images, labels = read_cifar_batch(path)
    raw = pickle.loads(path.read_bytes())
    assert images.shape == (7, 3, 32, 32) and labels.dtype == np.int64
    # CIFAR rows are 1024 red, then 1024 green, then 1024 blue values, row-major: channel-first.
    assert np.array_equal(images[3, 1].ravel(), raw[b"data"][3, 1024:2048])


def test_cifar_truncated(tmp_path):
    path = write_cifar_batch(tmp_path / "data_batch_1", 20)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match="data_batch_1: not a readable CIFAR-10 python batch"):
        read_cifar_batch(path)


def test_cifar_pickle_cannot_run_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        read_cifar_batch(path)


def test_cifar_wrong_shape(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((5, 100), np.uint8), b"labels": [0] * 5}))
    with pytest.raises(DataError, match=r"expected \(N, 3072\)"):
        read_cifar_batch(path)
