"""Readers for the datasets' official file formats: IDX (MNIST, Fashion-MNIST; gzip or raw) and CIFAR-10's
"python" pickle batches. Every problem with a file becomes one `DataError` line naming the file."""
from __future__ import annotations

import gzip
import pickle
import zlib
from pathlib import Path

import numpy as np

from frameworks.errors import DataError

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as error:
        raise DataError(f"{path}: truncated or corrupt gzip file ({error})") from None


def read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """An IDX file as an array: 2 zero bytes, a dtype code, the number of dimensions, big-endian int32 sizes."""
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    ndim = data[3]
    if ndim != expected_ndim:
        raise DataError(f"{path}: expected an IDX file with {expected_ndim} dimensions, found {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(size) for size in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"{path}: truncated IDX data (header says {expected} bytes, found {len(data) - header})")
    return np.frombuffer(data, dtype, offset=header).reshape(shape)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles: allow only what a NumPy array needs, never arbitrary code."""
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy._core") and not hasattr(np, "_core"):  # pickled by NumPy 2, read by 1.x
            module = module.replace("numpy._core", "numpy.core")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    try:
        with open(path, "rb") as handle:
            batch = _ArrayOnlyUnpickler(handle, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            ImportError) as error:
        raise DataError(f"{path}: not a readable CIFAR-10 python batch ({error or type(error).__name__})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path}: not a CIFAR-10 python batch (expected keys b'data' and b'labels')")
    images = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if images.ndim != 2 or images.shape[1] != 3 * 32 * 32 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{path}: CIFAR-10 batch has data of shape {images.shape} for {labels.shape[0]} labels, "
                        f"expected (N, 3072) for N labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: CIFAR-10 labels outside 0..9")
    return images.reshape(-1, 3, 32, 32), labels
