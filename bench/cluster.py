"""The Ray executor: `bench run --executor ray [--address ADDR]` runs each cell of the matrix as a Ray task.

What stays as in a local run: on its node, a task runs the cell exactly as the local runner does
(bench.runner.execute_cell: `python -m frameworks.child` in the framework's own environment, its own process, the
timeout, the memory sampler and the contention check), building the environment there first where it is missing
(bench.envs.build_env: once per node, keyed by the same requirements hash, under a file lock). Ray lives only in the
harness: a framework's environment never imports it. The driver writes every record and log with the run's store,
atomically, as each task ends, so Ctrl-C or a lost node loses no finished cell and `--resume` (with either
executor: cell ids do not name the executor) runs only what is missing.

Resources, so that timed cells never share a device: a GPU cell asks for one whole GPU (`num_gpus=1`, never a
fraction); a CPU cell asks for one unit of BENCH_CPU_CELL, a custom resource each node declares once (the local
cluster this module starts does; `ray start --resources='{"bench_cpu_cell": 1}'` on a cluster of your own), so a
node runs one CPU cell at a time. GPU cells do not take it: a node with several GPUs runs one cell per GPU, beside
at most one CPU cell; they share the node's CPUs, which the contention check measures and flags, as on one machine.

Failures: a cell that fails for its own reasons (a crash, out of memory, a timeout) comes back as a record, like
locally, and is not retried. A task whose worker process or node is lost is started again, at most
INFRASTRUCTURE_RETRIES times, each retry said on the terminal and counted in its record
(`infrastructure_retries`); after that the cell is left unrecorded and the run says so (`--resume` tries again).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from bench import datasets, envs
from bench.registry import FRAMEWORKS, SOURCE_ROOT
from bench.runner import Cell, execute_cell
from bench.settings import RunSettings
from frameworks.errors import UserError

BENCH_CPU_CELL = "bench_cpu_cell"
INFRASTRUCTURE_RETRIES = 2
#: what the source tree ships to the nodes without (Ray's runtime_env working_dir: the code every task runs)
NOT_SHIPPED = [".git", "results", "reports", "build", "*.egg-info", "tests/golden", ".pytest_cache", ".benchmarks"]
RAY_MISSING = ("--executor ray needs Ray in the harness environment: pip install 'dl-framework-bench[ray]' "
               "(scripts/bench and scripts/test install it, BENCH_EXTRAS=ray)")


def import_ray():
    """Ray, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(RAY_MISSING) from None
    return ray


def run_on_node(cell: Cell, settings: dict, run_id: str, overrides: dict[str, str], data_folder: str | None
                ) -> tuple[dict, str]:
    """The body of a cell's Ray task, on its node: the framework's environment there (built on first use), the
    dataset there, then the cell as the local runner runs it. Returns its record and its log's text."""
    run_settings = RunSettings.from_dict(settings)
    framework = FRAMEWORKS[cell.framework]
    interpreter = envs.interpreter_for(framework, overrides, cell.device) or envs.build_env(
        framework, log=lambda line: None, device=cell.device)
    with tempfile.TemporaryDirectory(prefix="bench-ray-cell-") as scratch:
        log_path = Path(scratch) / "cell.log"
        record = execute_cell(cell, run_settings, run_id, interpreter, node_data_folder(cell.dataset, data_folder,
                                                                                        run_settings),
                              log_path, on_event=lambda event: None, executor="ray")
        return record, log_path.read_text(errors="replace") if log_path.is_file() else ""


def node_data_folder(dataset: str, driver_folder: str | None, settings: RunSettings) -> str | None:
    """The dataset's folder on this node: the driver's where the node sees it (one machine, a shared file
    system), else found or downloaded here as the driver would; None for synthetic data."""
    if driver_folder is None:
        return None
    if Path(driver_folder).is_dir():
        return driver_folder
    folder = datasets.locate(dataset, settings.data_dir)
    if folder is None and settings.download:
        folder = datasets.download(dataset)
    if folder is None:
        raise UserError(datasets.not_found_message(dataset, settings.data_dir))
    return str(datasets.prepare(dataset, folder))


@dataclass
class Finished:
    """A cell's task that ended: its record and log, or why it has none."""
    cell: Cell
    retries: int  # times it was started again after its worker or node was lost
    record: dict | None = None
    log: str = ""
    failed_on_node: str | None = None  # the task itself raised (the environment, the dataset): a failed cell
    lost: str | None = None  # its worker or node was lost INFRASTRUCTURE_RETRIES + 1 times: no record


class RayExecutor:
    """`with RayExecutor(address, note) as executor: for finished in executor.run(cells, ...): ...`

    Without an address, a local Ray instance is started for the run (this machine's CPUs and GPUs, one
    BENCH_CPU_CELL) and stopped after it; with one, the driver joins that cluster and leaves it running."""

    def __init__(self, address: str | None, note: Callable[[str], None]):
        self.ray = import_ray()
        self.address, self.note = address, note

    def __enter__(self) -> "RayExecutor":
        common = {"runtime_env": {"working_dir": str(SOURCE_ROOT), "excludes": NOT_SHIPPED},
                  "logging_level": "ERROR", "log_to_driver": False}
        if self.address:
            self.ray.init(address=self.address, **common)
        else:  # this machine alone, reachable from nowhere else
            self.ray.init(address="local", resources={BENCH_CPU_CELL: 1}, include_dashboard=False,
                          _node_ip_address="127.0.0.1",
                          **common)
        nodes = [node for node in self.ray.nodes() if node.get("Alive")]
        cells_at_once = sum(node["Resources"].get(BENCH_CPU_CELL, 0) for node in nodes)
        gpus = self.ray.cluster_resources().get("GPU", 0)
        self.note(f"ray: {'joined ' + self.address if self.address else 'started a local instance'}: "
                  f"{len(nodes)} node(s), {gpus:g} GPU(s), {cells_at_once:g} CPU cell(s) at a time")
        if not cells_at_once and not gpus:
            self.ray.shutdown()
            raise UserError(f"the Ray cluster at {self.address} declares no {BENCH_CPU_CELL} resource and no GPU, "
                            f"so no cell can be placed: start each node with "
                            f"ray start ... --resources='{{\"{BENCH_CPU_CELL}\": 1}}'")
        self._task = self.ray.remote(max_retries=0)(run_on_node)
        return self

    def __exit__(self, *exc) -> None:
        self.ray.shutdown()  # a local instance stops with it; a cluster's own nodes stay

    def _submit(self, cell: Cell, settings: RunSettings, run_id: str, overrides: dict[str, str],
                data_folder: str | None):
        resources = {"num_gpus": 1, "num_cpus": 1} if cell.device == "cuda" else {
            "num_cpus": 1, "resources": {BENCH_CPU_CELL: 1}}
        return self._task.options(**resources).remote(cell, settings.to_dict(), run_id, overrides, data_folder)

    def run(self, cells: list[Cell], settings: RunSettings, run_id: str, overrides: dict[str, str],
            data_folders: dict[str, str | None]) -> Iterator[Finished]:
        """Dispatch CELLS; yield each as it ends (in the order they end). A cell whose task was lost with its
        worker or node is started again (INFRASTRUCTURE_RETRIES at most); a task that raised returns a failed
        cell with the reason. Leaving the iterator early (Ctrl-C) cancels what is still running."""
        exceptions = self.ray.exceptions
        lost = (exceptions.WorkerCrashedError, exceptions.NodeDiedError, exceptions.ObjectLostError,
                exceptions.LocalRayletDiedError, exceptions.RaySystemError)
        pending = {self._submit(cell, settings, run_id, overrides, data_folders[cell.task]): (cell, 0)
                   for cell in cells}
        try:
            while pending:
                [done], _ = self.ray.wait(list(pending), num_returns=1)
                cell, retries = pending.pop(done)
                try:
                    record, log = self.ray.get(done)
                except lost as error:
                    reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".strip()
                    if retries < INFRASTRUCTURE_RETRIES:
                        self.note(f"[yellow]{cell.cell_id}: its Ray worker or node was lost ({reason}); "
                                  f"starting it again (retry {retries + 1} of {INFRASTRUCTURE_RETRIES})[/]")
                        pending[self._submit(cell, settings, run_id, overrides,
                                             data_folders[cell.task])] = (cell, retries + 1)
                    else:
                        yield Finished(cell, retries, lost=reason)
                    continue
                except exceptions.RayTaskError as error:  # the task itself raised: the environment, the dataset
                    cause = error.cause if getattr(error, "cause", None) is not None else error
                    yield Finished(cell, retries, failed_on_node=f"on its Ray node: {type(cause).__name__}: {cause}")
                    continue
                yield Finished(cell, retries, {**record, "infrastructure_retries": retries}, log)
        finally:
            for reference in pending:
                self.ray.cancel(reference, force=True)

