"""Bad input: one line naming the problem and the valid choices, exit code 2, never a traceback."""
import os
import tomllib
from pathlib import Path

import pytest

from bench import cli, session
from conftest import REPO, bench

BAD_RUNS = [
    (["--frameworks", "caffe"], "unknown framework 'caffe'; choose from: pytorch, tensorflow"),
    (["--tasks", "imagenet"], "unknown task 'imagenet'; choose from: mnist_mlp, cifar_cnn"),
    (["--epochs", "0"], "--epochs must be a positive whole number. Received: 0"),
    (["--epochs", "two"], "expected a whole number, received 'two'"),
    (["--batch-size", "-5"], "--batch-size must be a positive whole number"),
    (["--timeout", "soon"], "expected a number of seconds"),
    (["--mode", "turbo"], "unknown mode 'turbo'; choose from: native, eager, compiled"),
    (["--profile", "huge"], "invalid choice: 'huge'"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'; choose from: mnist, fashion-mnist, cifar10, synthetic"),
    (["--tasks", "cifar_cnn", "--dataset", "fashion-mnist"], "dataset 'fashion-mnist' fits none of the selected"),
    (["--tasks", "mnist_mlp", "--train-samples", "100"], "fewer than 2 batches of 128"),
    (["--python", "pytorch"], "--python expects FRAMEWORK=PATH"),
    (["--python", "pytorch=/no/such/python"], "no interpreter at /no/such/python"),
    (["--resume", "nope"], "no run 'nope' in results"),
]


@pytest.mark.parametrize("args, message", BAD_RUNS, ids=[" ".join(a) for a, _ in BAD_RUNS])
def test_bad_run_arguments(tmp_path, args, message):
    completed = bench("run", *args, cwd=tmp_path)
    assert completed.returncode == 2
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


def test_unknown_command(tmp_path):
    completed = bench("fly", cwd=tmp_path)
    assert completed.returncode == 2 and "invalid choice: 'fly'" in completed.stderr


def test_named_dataset_missing_says_where_it_looked(tmp_path):
    (tmp_path / "empty").mkdir()
    completed = bench("run", "--frameworks", "pytorch", "--tasks", "mnist_mlp", "--dataset", "mnist",
                      "--data-dir", str(tmp_path / "empty"), cwd=tmp_path, env={"BENCH_CACHE": str(tmp_path)})
    assert completed.returncode == 2
    assert "dataset 'mnist' not found" in completed.stderr and str(tmp_path / "empty") in completed.stderr
    assert "Traceback" not in completed.stderr


def test_corrupt_dataset_file_is_one_line(tmp_path, mnist_folder):
    (mnist_folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    completed = bench("run", "--frameworks", "pytorch", "--tasks", "mnist_mlp", "--profile", "smoke",
                      "--dataset", "mnist", "--data-dir", str(mnist_folder.parent), cwd=tmp_path)
    assert completed.returncode == 2
    assert "train-images-idx3-ubyte.gz: truncated or corrupt gzip file" in completed.stderr
    assert "Traceback" not in completed.stderr and not list(tmp_path.glob("results/*/cells/*.json"))


def test_corrupt_cell_file_on_resume(tmp_path):
    run = tmp_path / "results" / "20990101-000000"
    (run / "cells").mkdir(parents=True)
    (run / "manifest.json").write_text("{not json")
    completed = bench("run", "--resume", "20990101-000000", cwd=tmp_path)
    assert completed.returncode == 2
    assert "manifest.json: corrupt run manifest" in completed.stderr
    assert (run / "manifest.json").read_text() == "{not json"  # nothing already written is lost


SMOKE_RUN = ["run", "--frameworks", "pytorch", "--tasks", "mnist_mlp", "--profile", "smoke", "--dataset", "synthetic"]


@pytest.fixture
def no_cells(monkeypatch):
    """Fail the test, instead of running cells, if bad input gets past the checks made before any cell."""
    def run(*args):
        raise AssertionError("a run started despite bad input")
    monkeypatch.setattr(session, "run", run)


@pytest.fixture
def read_only_folder(tmp_path) -> Path:
    """A folder nobody may write in: one with no write permission, or, for root (which ignores permission bits),
    sysfs."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        folder = Path("/sys")
        if not folder.is_dir() or os.geteuid() != 0:
            pytest.skip("no folder this user cannot write in")
    yield folder
    (tmp_path / "read-only").chmod(0o755)


def one_line_error(capsys, *argv: str) -> str:
    assert cli.main(list(argv)) == 2
    error = capsys.readouterr().err
    assert error.startswith("bench: error: ") and len(error.strip().splitlines()) == 1, error
    return error


@pytest.mark.parametrize("option", ["--out", "--reports"])
def test_output_folder_under_a_read_only_folder(tmp_path, capsys, no_cells, read_only_folder, option):
    target = read_only_folder / "results"
    error = one_line_error(capsys, *SMOKE_RUN, option, str(target))
    assert f"{option} {target}: cannot write in {read_only_folder}" in error


@pytest.mark.parametrize("option", ["--out", "--reports"])
def test_output_folder_that_is_a_file(tmp_path, capsys, no_cells, option):
    target = tmp_path / "taken.txt"
    target.write_text("not a folder")
    error = one_line_error(capsys, *SMOKE_RUN, option, str(target))
    assert f"{option} {target}: {target} is not a folder" in error
    error = one_line_error(capsys, *SMOKE_RUN, option, str(target / "sub"))
    assert f"{option} {target / 'sub'}: {target} is not a folder" in error
    assert target.read_text() == "not a folder"


def test_missing_data_dir(tmp_path, capsys, no_cells):
    error = one_line_error(capsys, *SMOKE_RUN, "--data-dir", str(tmp_path / "nowhere"))
    assert f"--data-dir {tmp_path / 'nowhere'}: no such folder" in error


def test_bench_data_pointing_nowhere_is_an_error(tmp_path, capsys, monkeypatch, no_cells):
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "nowhere"))
    error = one_line_error(capsys, *SMOKE_RUN)
    assert f"$BENCH_DATA {tmp_path / 'nowhere'}: no such folder" in error


def test_version(tmp_path, capsys, monkeypatch):
    def printed() -> str:
        with pytest.raises(SystemExit) as stop:
            cli.main(["--version"])
        assert stop.value.code == 0
        return capsys.readouterr().out

    def not_installed(name):
        raise cli.importlib.metadata.PackageNotFoundError(name)

    in_clone = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    completed = bench("--version", cwd=tmp_path)
    assert completed.returncode == 0 and completed.stdout == f"bench {in_clone}\n"
    monkeypatch.setattr(cli.importlib.metadata, "version", {"dl-framework-bench": "9.8.7"}.__getitem__)
    assert printed() == "bench 9.8.7\n"  # the installed distribution's
    monkeypatch.setattr(cli.importlib.metadata, "version", not_installed)
    assert printed() == f"bench {in_clone}\n"  # run from a clone through PYTHONPATH: pyproject.toml's
