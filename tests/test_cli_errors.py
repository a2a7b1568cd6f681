"""Bad input: one line naming the problem and the valid choices, exit code 2, never a traceback.

In-process (`cli.main([...])`, output captured by capsys), each case in its own empty folder; one case runs the real
`python -m bench` to check the process's exit status. The options' defaults and help come from RunSettings."""
import os
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from bench import cli, session
from bench.settings import AUTO_REPEATS_MAX, PARITY_TIMEOUT_S, RunSettings
from conftest import REPO, bench


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Each case in its own empty folder (so `results`, `reports` are its own), downloads off as in every test,
    and no $BENCH_DATA from the caller's shell."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_NO_DOWNLOAD", "1")
    monkeypatch.delenv("BENCH_DATA", raising=False)


@pytest.fixture
def no_environments(monkeypatch):
    """Fail the test, instead of building or probing framework environments, if bad input gets past the checks
    made before them."""
    def available(*args):
        raise AssertionError("framework environments reached despite bad input")
    monkeypatch.setattr(session, "available_frameworks", available)


def one_line_error(capsys, *argv: str) -> str:
    assert cli.main(list(argv)) == 2
    error = capsys.readouterr().err
    assert error.startswith("bench: error: ") and len(error.strip().splitlines()) == 1, error
    assert "Traceback" not in error
    return error

BAD_RUNS = [
    (["--frameworks", "caffe"], "unknown framework 'caffe'; choose from: pytorch, tensorflow"),
    (["--tasks", "imagenet"], "unknown task 'imagenet'; choose from: mnist_mlp, cifar_cnn"),
    (["--tasks", "imagenet", "--dataset", "mnist"], "unknown task 'imagenet'; choose from: mnist_mlp, cifar_cnn"),
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
    (["--precision", "fp8"], "unknown precision 'fp8'; choose from: fp32, tf32, bf16, fp16"),
    (["--batch-size", "32,big"], "expected a whole number, received 'big'"),
    (["--address", "10.0.0.1:6379"], "names a Ray cluster: add --executor ray"),
]


@pytest.mark.parametrize("args, message", BAD_RUNS, ids=[" ".join(a) for a, _ in BAD_RUNS])
def test_bad_run_arguments(capsys, no_environments, args, message):
    error = one_line_error(capsys, "run", *args)
    assert message in error


def test_unknown_command(capsys):
    error = one_line_error(capsys, "fly")
    assert "invalid choice: 'fly'" in error


def test_real_process_exits_2_with_one_line(tmp_path):
    """The one case that needs `python -m bench` itself: the exit status of the process, and nothing else said."""
    completed = bench("run", "--frameworks", "caffe", cwd=tmp_path)
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr.startswith("bench: error: unknown framework 'caffe'; choose from: pytorch")
    assert len(completed.stderr.strip().splitlines()) == 1


def test_named_dataset_missing_says_where_it_looked(tmp_path, capsys, monkeypatch, no_environments):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    error = one_line_error(capsys, "run", "--frameworks", "pytorch", "--tasks", "mnist_mlp", "--dataset", "mnist",
                           "--data-dir", str(tmp_path / "empty"))
    assert "dataset 'mnist' not found" in error and str(tmp_path / "empty") in error


def test_corrupt_dataset_file_is_one_line(tmp_path, capsys, mnist_folder, no_environments):
    (mnist_folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    error = one_line_error(capsys, "run", "--frameworks", "pytorch", "--tasks", "mnist_mlp", "--profile", "smoke",
                           "--dataset", "mnist", "--data-dir", str(mnist_folder.parent))
    assert "train-images-idx3-ubyte.gz: truncated or corrupt gzip file" in error
    assert not list(tmp_path.glob("results/*/cells/*.json"))


def test_corrupt_cell_file_on_resume(tmp_path, capsys, no_environments):
    run = tmp_path / "results" / "20990101-000000"
    (run / "cells").mkdir(parents=True)
    (run / "manifest.json").write_text("{not json")
    error = one_line_error(capsys, "run", "--resume", "20990101-000000")
    assert "manifest.json: corrupt run manifest" in error
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
    assert printed() == f"bench {in_clone}\n"
    monkeypatch.setattr(cli.importlib.metadata, "version", {"dl-framework-bench": "9.8.7"}.__getitem__)
    assert printed() == "bench 9.8.7\n"  # the installed distribution's
    monkeypatch.setattr(cli.importlib.metadata, "version", not_installed)
    assert printed() == f"bench {in_clone}\n"  # run from a clone through PYTHONPATH: pyproject.toml's



def help_text(capsys, command: str) -> str:
    """`bench COMMAND --help`, its line wrapping undone."""
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"])
    assert stop.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_run_help_reads_options_and_defaults_from_settings(capsys):
    text = help_text(capsys, "run")
    for spec in fields(RunSettings):
        if "flag" in spec.metadata:
            assert spec.metadata["flag"] in text
    assert f"seconds per cell (default: {RunSettings.timeout_s:g})" in text
    assert f"(default: {RunSettings.device})" in text and f"(default: {RunSettings.compile_cache})" in text
    assert "within ±5% (at most" in text  # a literal % in a setting's help survives argparse's formatting
    for flag in ("--python", "--out", "--reports", "--resume"):
        assert flag in text


@pytest.mark.parametrize("command, flags", [
    ("parity", ("--frameworks", "--tasks", "--seed", "--timeout", "--python", "--out")),
    ("report", ("--format", "--out", "--reports", "--output")),
    ("compare", ("--format", "--out", "--reports", "--output")),
])
def test_other_commands_help(capsys, command, flags):
    text = help_text(capsys, command)
    assert all(flag in text for flag in flags)
    if command == "parity":
        assert f"seconds per framework and task (default: {PARITY_TIMEOUT_S:g})" in text


def test_no_options_give_the_settings_defaults(monkeypatch):
    monkeypatch.delenv("BENCH_NO_DOWNLOAD")
    assert cli.run_settings(cli.build_parser().parse_args(["run"])) == RunSettings()
    parity = cli.run_settings(cli.build_parser().parse_args(["parity"]))
    assert parity == RunSettings(timeout_s=PARITY_TIMEOUT_S)


def test_options_become_settings(monkeypatch):
    args = cli.build_parser().parse_args([
        "run", "--frameworks", "torch,pytorch", "--tasks", "mnist_mlp", "--mode", "eager,compiled", "--repeats",
        "auto", "--dataset", "synthetic", "--timeout", "60", "--seed", "7", "--compile-cache", "warm"])
    settings = cli.run_settings(args)
    assert settings.frameworks == ("pytorch",) and settings.tasks == ("mnist_mlp",)
    assert settings.modes == ("eager", "compiled") and settings.datasets == {"mnist_mlp": "synthetic"}
    assert settings.repeats == AUTO_REPEATS_MAX and settings.auto_repeats
    assert (settings.timeout_s, settings.seed, settings.compile_cache) == (60.0, 7, "warm")
    assert not settings.download  # $BENCH_NO_DOWNLOAD, set for every test here
    monkeypatch.delenv("BENCH_NO_DOWNLOAD")
    assert cli.run_settings(args).download
    assert not cli.run_settings(cli.build_parser().parse_args(["run", "--no-download"])).download


def test_executor_ray_without_ray_installed_is_one_line(capsys, monkeypatch, no_environments):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where the extra is missing
    error = one_line_error(capsys, "run", "--executor", "ray", "--tasks", "mnist_mlp", "--dataset", "synthetic")
    assert "pip install 'dl-framework-bench[ray]'" in error
    assert not Path("results").exists() or not list(Path("results").glob("*/cells/*"))


@pytest.mark.parametrize("flag", ["--start-batch", "--max-batch", "--max-tries"])
def test_capacity_counts_must_be_positive(capsys, flag):
    error = one_line_error(capsys, "capacity", flag, "0")
    assert "expected a positive whole number, received '0'" in error


def test_device_auto_on_a_ray_cluster_is_one_line(capsys, no_environments):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    error = one_line_error(capsys, "run", "--executor", "ray", "--device", "auto", "--dataset", "synthetic")
    assert "--device auto with --executor ray: name the device the cells run on (cpu or cuda)" in error
