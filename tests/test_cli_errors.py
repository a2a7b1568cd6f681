"""Bad input: one line naming the problem and the valid choices, exit code 2, never a traceback."""
import pytest

from conftest import bench

BAD_RUNS = [
    (["--frameworks", "caffe"], "unknown framework 'caffe'; choose from: pytorch, tensorflow"),
    (["--tasks", "imagenet"], "unknown task 'imagenet'; choose from: mnist_mlp, cifar_cnn"),
    (["--epochs", "0"], "--epochs must be a positive whole number. Received: 0"),
    (["--epochs", "two"], "expected a whole number, received 'two'"),
    (["--batch-size", "-5"], "--batch-size must be a positive whole number"),
    (["--timeout", "soon"], "expected a number of seconds"),
    (["--mode", "turbo"], "unknown mode 'turbo'; choose from: eager, compiled"),
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
