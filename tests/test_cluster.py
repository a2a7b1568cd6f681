"""`bench run --executor ray`: a real Ray cluster on this machine (a head and one worker node, each one CPU cell at a
time), a small matrix through it, a driver killed and resumed, a worker killed mid-cell.

The two nodes listen on this machine's own address, not 127.0.0.1: Ray replaces a loopback address given to
`ray.init(address=...)` by the node's IP (ray._private.services.resolve_ip_for_localhost), so a cluster bound to
127.0.0.1 cannot be joined by address. The run's own local instance (no --address) does bind to 127.0.0.1."""
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from bench import envs
from bench.registry import FRAMEWORKS
from conftest import REPO, bench, cells

ray = pytest.importorskip("ray", reason="the ray extra is not installed (scripts/test installs it)")
pytestmark = pytest.mark.skipif(envs.managed_python(FRAMEWORKS["pytorch"]) is None,
                                reason="run `bench setup pytorch` first")
from ray.cluster_utils import Cluster  # noqa: E402

SMALL = ["--frameworks", "pytorch", "--profile", "smoke", "--dataset", "synthetic"]
NODE = {"num_cpus": 1, "resources": {"bench_cpu_cell": 1}}


@pytest.fixture(scope="module")
def cluster():
    """A head node and a worker node, each its own raylet on 127.0.0.1."""
    started = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    started.add_node(**NODE)
    started.wait_for_nodes()
    yield started
    started.shutdown()


def ray_run(*args, cwd, timeout=300):
    return bench("run", "--executor", "ray", *args, cwd=cwd, timeout=timeout)


def test_a_matrix_through_ray_gives_the_records_a_local_run_gives(cluster, tmp_path):
    completed = ray_run(*SMALL, "--tasks", "mnist_mlp,cifar_cnn", "--address", cluster.address, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "2 node(s)" in completed.stdout and "2 CPU cell(s) at a time" in completed.stdout
    records = cells(tmp_path / "results")
    assert sorted(r["task"] for r in records) == ["cifar_cnn", "mnist_mlp"]
    for record in records:
        assert record["status"] == "ok", (record["reason"], record["log_tail"])
        assert record["executor"] == "ray" and record["infrastructure_retries"] == 0
        assert record["node"]["hostname"] and record["node"]["cpu_model"]
        assert record["metrics"]["train_samples_per_s"] > 0 and record["contention"] is not None
        assert (tmp_path / "results" / record["run_id"] / record["log_path"]).is_file()  # the node's log, here
    (tmp_path / "local").mkdir()
    local = bench("run", *SMALL, "--tasks", "mnist_mlp", cwd=tmp_path / "local")
    assert local.returncode == 0, local.stderr
    [local_record] = cells(tmp_path / "local" / "results")
    ray_record = next(r for r in records if r["task"] == "mnist_mlp")
    assert set(local_record) | {"infrastructure_retries"} == set(ray_record)  # the same form
    assert set(local_record["metrics"]) == set(ray_record["metrics"])
    assert local_record["cell_id"] == ray_record["cell_id"]  # resume works across executors


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _cell_processes() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if "frameworks.child" in " ".join(p.info["cmdline"] or [])]


def test_resume_after_the_driver_is_killed_runs_only_the_missing_cells(cluster, tmp_path):
    driver = subprocess.Popen([sys.executable, "-m", "bench", "run", "--executor", "ray", "--address",
                               cluster.address, *SMALL, "--tasks", "mnist_mlp", "--repeats", "3"],
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        results = tmp_path / "results"
        _wait_for(lambda: list(results.glob("*/cells/*.json")), 300, "the first cell record")
        driver.kill()  # SIGKILL: no clean-up of its own
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    [run] = list(results.iterdir())
    before = {path.name: path.stat().st_mtime_ns for path in (run / "cells").glob("*.json")}
    assert 1 <= len(before) < 3
    _wait_for(lambda: not _cell_processes(), 60, "the killed driver's cells to end with it")
    completed = ray_run("--resume", run.name, "--address", cluster.address, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert f"{len(before)} cells already done" in completed.stdout
    after = {path.name: path.stat().st_mtime_ns for path in (run / "cells").glob("*.json")}
    assert len(after) == 3 and all(after[name] == stamp for name, stamp in before.items())  # not run again
    assert all(r["status"] == "ok" for r in cells(results))


def test_a_worker_killed_mid_cell_is_retried_and_says_so(cluster, tmp_path):
    driver = subprocess.Popen([sys.executable, "-m", "bench", "run", "--executor", "ray", "--address",
                               cluster.address, *SMALL, "--tasks", "cifar_cnn"],
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    child = _wait_for(_cell_processes, 300, "the cell's process on a Ray worker")[0]
    worker = child.parent()  # the Ray worker running the cell's task
    assert "ray" in " ".join(worker.cmdline()).lower()
    worker.send_signal(signal.SIGKILL)
    output, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, output[-3000:]
    assert "starting it again (retry 1 of 2)" in output
    [record] = cells(tmp_path / "results")
    assert record["status"] == "ok" and record["infrastructure_retries"] == 1
    assert not child.is_running()  # the lost worker's cell died with it (frameworks/lifeline.py)


def _ray_processes() -> set[int]:
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in ("raylet", "gcs_server")}


def test_executor_ray_without_an_address_starts_and_stops_its_own_instance(tmp_path):
    before = _ray_processes()  # the module's cluster, if it is up
    completed = ray_run(*SMALL, "--tasks", "mnist_mlp", cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "started a local instance" in completed.stdout
    [record] = cells(tmp_path / "results")
    assert record["status"] == "ok" and record["executor"] == "ray"
    _wait_for(lambda: _ray_processes() <= before, 30, "the run's own Ray instance to stop")


def test_address_without_executor_ray_is_one_line(tmp_path):
    completed = bench("run", *SMALL, "--address", "127.0.0.1:6379", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].endswith("names a Ray cluster: add --executor ray")
    assert not (tmp_path / "results").exists()  # refused before anything was written
