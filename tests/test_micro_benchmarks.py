"""pytest-benchmark micro-benchmarks of the harness's own hot paths: what it does outside the framework must
cost next to nothing. Compare runs with `scripts/test tests/test_micro_benchmarks.py --benchmark-autosave`
then `--benchmark-compare`. Each also checks the result it timed."""
import json

import numpy as np

from bench import aggregate
from bench.results import load_cells
from frameworks import formats, loop
from conftest import write_cifar_batch, write_idx


def test_read_mnist_sized_idx(benchmark, tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (60_000, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    loaded = benchmark(formats.read_idx, path, 3)
    assert np.array_equal(loaded, images)


def test_read_cifar_batch(benchmark, tmp_path):
    path = write_cifar_batch(tmp_path / "data_batch_1", 10_000)
    images, labels = benchmark(formats.read_cifar_batch, path)
    assert images.shape == (10_000, 3, 32, 32) and labels.shape == (10_000,)


def test_one_epoch_of_batches(benchmark):
    """The harness's per-step data work for a whole MNIST epoch: permutation, index slices, gathers."""
    train_x = np.zeros((60_000, 1, 28, 28), np.float32)
    train_y = np.zeros(60_000, np.int64)

    def epoch():
        return sum(len(train_x[indices]) + len(train_y[indices])
                   for indices in loop.train_batches(60_000, 128, seed=0, epoch=1))
    assert benchmark(epoch) == 2 * 468 * 128


def test_load_and_rank_a_run(benchmark, tmp_path):
    """Reading a run of 70 cells from disk (schema-checked) and deciding every headline."""
    from bench.results import RunStore

    store = RunStore.create(tmp_path, "run", {"command": "test"})
    rng = np.random.default_rng(0)
    for index in range(70):
        windows = list(rng.normal(1000 + 10 * index, 20, 50))
        store.write_cell({
            "schema_version": 2, "run_id": "run", "cell_id": f"cell{index}", "framework": f"fw{index % 7}",
            "task": "mnist_mlp", "dataset": "synthetic", "synthetic_data": True, "device": "cpu",
            "mode": "eager", "precision": "fp32", "repeat": index // 7, "seed": 0, "epochs": 1, "batch_size": 128,
            "batch_outside_spec": False, "status": "failed",
            "reason": "synthetic record", "wall_time_s": 1.0, "started_at": "", "finished_at": "",
            "exit_code": 1, "signal": None, "log_tail": "", "interpreter": {"python": "p", "origin": "managed"},
            "metrics": {"train_samples_per_s": float(np.median(windows)), "train_samples_per_s_windows": windows}})

    def load_and_rank():
        records = [dict(row, metrics={"train_samples_per_s": row["metrics.train_samples_per_s"],
                                      "train_samples_per_s_windows": row["metrics.train_samples_per_s_windows"]},
                        status="ok")
                   for row in load_cells([str(store.folder)]).to_dict("records")]
        return aggregate.headline(aggregate.group(records))
    assert benchmark(load_and_rank)[0].startswith("fastest to train: fw6 eager")


def test_the_overhead_benchmark_runs_both_sides(tmp_path):
    """benchmarks/overhead.py, the committed check that the harness is not what is measured, still runs: one short
    round of PyTorch through the harness and through its hand loop, each side with a figure."""
    from bench import envs
    from bench.registry import FRAMEWORKS
    from benchmarks import overhead

    if envs.managed_python(FRAMEWORKS["pytorch"]) is None:
        import pytest
        pytest.skip("pytorch: run `bench setup pytorch` first")
    overhead.main(["--frameworks", "pytorch", "--rounds", "2", "--steps", "20", "--out", str(tmp_path / "o.json")])
    [row] = json.loads((tmp_path / "o.json").read_text())["frameworks"]
    assert "error" not in row, row.get("error")
    assert min(row["harness_rounds_samples_per_s"] + row["hand_rounds_samples_per_s"]) > 0
