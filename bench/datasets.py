"""Where the datasets are and how to get them (the harness's side; a cell reads them with frameworks.data).

Lookup order for a dataset NAME: `--data-dir` (the folder itself or DIR/NAME), `$BENCH_DATA` (likewise), the
user cache (~/.cache/bench/data/NAME), known system folders (/usr/share/datasets/NAME: Debian's
dataset-fashion-mnist installs there), then a download from the official mirrors into the cache, checked against
the published MD5 sums. A CIFAR-10 archive is extracted into the cache once, by `prepare`, before any cell.
"""
from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from frameworks.data import CIFAR_FOLDER, IDX_FILES, SYNTHETIC
from frameworks.errors import DataError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    files: dict[str, str]  # file name -> MD5 of the official download
    mirrors: tuple[str, ...]
    how_to_get: str


CIFAR_ARCHIVE = "cifar-10-python.tar.gz"

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist",
        dict(zip(IDX_FILES, ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"))),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        "download the four IDX .gz files of MNIST into one of those folders"),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        dict(zip(IDX_FILES, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                              "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        "on Debian/Ubuntu: apt-get install dataset-fashion-mnist"),
    "cifar10": DatasetInfo(
        "cifar10", {CIFAR_ARCHIVE: "c58f30108f718f92721af3b95e74349a"},
        ("https://www.cs.toronto.edu/~kriz/",),
        f"download {CIFAR_ARCHIVE} (or its extracted {CIFAR_FOLDER}/) into one of those folders"),
}
DATASET_NAMES = (*DATASETS, SYNTHETIC)
SYSTEM_FOLDERS = (Path("/usr/share/datasets"), Path("/usr/local/share/datasets"))


def cache_root() -> Path:
    base = os.environ.get("BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bench")
    return Path(base)


def candidate_folders(name: str, data_dir: str | None) -> list[Path]:
    """The folders searched for dataset NAME, in order."""
    folders: list[Path] = []
    for root in (data_dir, os.environ.get("BENCH_DATA")):
        if root:
            folders += [Path(root), Path(root) / name]
    folders.append(cache_root() / "data" / name)
    folders += [system / name for system in SYSTEM_FOLDERS]
    return folders


def _holds(name: str, folder: Path) -> bool:
    if name == "cifar10":
        return (folder / CIFAR_FOLDER / "test_batch").is_file() or (folder / CIFAR_ARCHIVE).is_file()
    return all((folder / file).is_file() or (folder / file[:-3]).is_file() for file in DATASETS[name].files)


def locate(name: str, data_dir: str | None = None) -> Path | None:
    """The first folder that holds dataset NAME, or None."""
    return next((folder for folder in candidate_folders(name, data_dir) if _holds(name, folder)), None)


def require_folder(what: str, path: str) -> None:
    """A data folder the user named must exist: a typo would otherwise be searched, found empty, and the data
    silently taken from elsewhere (the cache, a download, synthetic)."""
    if not os.path.isdir(path):
        raise DataError(f"{what} {path}: {'not a folder' if os.path.exists(path) else 'no such folder'}")


def not_found_message(name: str, data_dir: str | None) -> str:
    places = ", ".join(str(folder) for folder in candidate_folders(name, data_dir))
    return (f"dataset {name!r} not found and could not be downloaded; searched: {places}; "
            f"to get it: {DATASETS[name].how_to_get}, or pass --data-dir DIR")


def download(name: str, timeout_s: float = 15.0) -> Path:
    """Fetch NAME from its official mirrors into the cache, verifying MD5 sums; raises DataError when offline."""
    info = DATASETS[name]
    folder = cache_root() / "data" / name
    folder.mkdir(parents=True, exist_ok=True)
    for file, md5 in info.files.items():
        target = folder / file
        if target.is_file() and _md5(target) == md5:
            continue
        errors = []
        for mirror in info.mirrors:
            try:
                _fetch(mirror + file, target, timeout_s)
            except OSError as error:
                errors.append(f"{mirror}: {getattr(error, 'reason', error)}")
                continue
            if _md5(target) == md5:
                break
            target.unlink()
            errors.append(f"{mirror}: MD5 mismatch for {file}")
        else:
            raise DataError(f"could not download {name}: " + "; ".join(errors))
    return folder


def _fetch(url: str, target: Path, timeout_s: float) -> None:
    from rich.progress import Progress  # only the parent process downloads; children never import rich

    partial = target.with_suffix(target.suffix + ".part")
    with urllib.request.urlopen(url, timeout=timeout_s) as response, open(partial, "wb") as out, \
            Progress(transient=True) as progress:
        bar = progress.add_task(f"downloading {target.name}", total=int(response.headers.get("Content-Length") or 0))
        while chunk := response.read(1 << 20):
            out.write(chunk)
            progress.advance(bar, len(chunk))
    partial.replace(target)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def prepare(name: str, folder: Path) -> Path:
    """The folder a cell reads NAME from: FOLDER itself, or for a CIFAR-10 archive the cache folder it is extracted
    into (once)."""
    if name == "cifar10" and not (folder / CIFAR_FOLDER / "test_batch").is_file():
        return _extract_cifar(folder / CIFAR_ARCHIVE).parent
    return folder


def _extract_cifar(archive: Path) -> Path:
    """Unpack the official archive into the cache (once) and return the batches' folder."""
    target = cache_root() / "data" / "cifar10"
    if not (target / CIFAR_FOLDER / "test_batch").is_file():
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(target, filter="data")
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DataError(f"{archive}: truncated or corrupt archive ({error})") from None
    return target / CIFAR_FOLDER
