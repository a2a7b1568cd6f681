"""Runs the matrix: every cell in a fresh child process of its framework's environment, with a timeout.

A child that raises, crashes (signal), runs out of memory or hangs is recorded as a cell with that status, its
reason, exit code or signal and the tail of its log; the matrix goes on. A cell its framework's registry entry
declares it cannot run (bench.registry.Limit) is planned unsupported and recorded without starting a process.
Each record is written the moment its cell ends; Ctrl-C kills the running child and keeps everything already
written.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from bench import machine, metrics
from bench.datasets import cache_root
from bench.envs import Interpreter
from bench.registry import FRAMEWORKS, SOURCE_ROOT
from bench.results import SCHEMA_VERSION, RunStore, log_relative_path
from bench.sampler import CellSampler, Energy, MemoryPeaks
from bench.settings import RunSettings
from frameworks import lifeline
from frameworks.protocol import CellConfig, parse_event
from frameworks.spec import TASKS

LOG_TAIL_LINES = 40
_SIGNAL_HINTS = {signal.SIGKILL: "killed (SIGKILL): most often the kernel's out-of-memory killer",
                 signal.SIGSEGV: "crashed with a segmentation fault (SIGSEGV)",
                 signal.SIGABRT: "aborted (SIGABRT)"}
#: Every persistent compile cache a framework keeps on disk, pointed at one folder per cell: empty (cold: the cell
#: pays its full compile time, as on a first run) unless --compile-cache warm, which keeps one folder per
#: framework across cells and runs. TF's XLA and JAX's caches are off unless a folder is named, so cold leaves
#: them off; torch.compile (inductor, Triton) caches by default, in /tmp, across runs.
COMPILE_CACHE_VARIABLES = {"TORCHINDUCTOR_CACHE_DIR": "inductor", "TRITON_CACHE_DIR": "triton"}
WARM_COMPILE_CACHE_VARIABLES = {"JAX_COMPILATION_CACHE_DIR": "jax"}
WARM_COMPILE_CACHE_SETTINGS = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                               "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


@dataclass(frozen=True)
class Cell:
    framework: str
    task: str
    dataset: str
    device: str
    mode: str
    precision: str
    batch_size: int
    repeat: int
    #: why the cell cannot run, from a limit its framework's registry entry declares; None: it runs
    unsupported_reason: str | None = field(default=None, compare=False)

    @property
    def cell_id(self) -> str:
        return (f"{self.framework}--{self.task}--{self.dataset}--{self.device}--{self.mode}--{self.precision}"
                f"--b{self.batch_size}--r{self.repeat}")

    @property
    def outside_spec(self) -> bool:
        """Trained at a batch size other than the spec's: its accuracy answers another question (not compared)."""
        return self.batch_size != TASKS[self.task].batch_size


def plan(settings: RunSettings, interpreters: dict[str, Interpreter], device: str, datasets: dict[str, str]
         ) -> list[Cell]:
    """The matrix in run order: repeats outermost, so a repeat never runs back to back with itself. A cell that a
    limit rules out (bench.registry.Limit: its framework's, or one every framework shares) carries the limit's why."""
    cells = []
    for repeat in range(settings.repeats):
        for task in settings.tasks:
            for framework, interpreter in interpreters.items():
                for mode, precision, batch_size in itertools.product(
                        settings.modes, settings.precisions, settings.batch_sizes_for(task)):
                    limit = FRAMEWORKS[framework].limit_for(device, mode, interpreter.origin, precision)
                    cells.append(Cell(framework, task, datasets[task], device, mode, precision, batch_size, repeat,
                                      limit.why if limit else None))
    return cells


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _failure_reason(exit_code: int) -> tuple[str, str | None]:
    if exit_code < 0:
        number = -exit_code
        name = signal.Signals(number).name if number in signal.valid_signals() else f"signal {number}"
        return _SIGNAL_HINTS.get(number, f"killed by {name}"), name
    return f"the cell's process exited with code {exit_code} before writing a result", None


@dataclass
class ChildOutcome:
    """What a child process left: its result document (or one made from how it died) and process facts."""
    document: dict
    exit_code: int | None
    signal: str | None
    wall_time_s: float
    started_at: str
    finished_at: str
    log_tail: str
    memory: MemoryPeaks
    contention: dict | None  # other processes' use of the machine while the cell was timed (bench.sampler)
    energy: Energy  # the device's joules per phase, from its own counter
    threads: int  # OMP_NUM_THREADS the child ran with
    over_cap: bool = False  # killed by the sampler for growing past memory_cap_bytes


def run_child(config: CellConfig, python: str, log_path: Path, timeout_s: float,
              on_event: Callable[[dict], None], compile_cache: str = "cold",
              memory_cap_bytes: int | None = None) -> ChildOutcome:
    """Start `python -m frameworks.child` for CONFIG, wait at most TIMEOUT_S, and collect what it left. With
    MEMORY_CAP_BYTES, the child's process tree is killed once its memory grows past it (`over_cap`).

    Call it from a thread that outlives the child: the child's lifeline (frameworks.lifeline) kills it when the thread
    that started it ends, so that a harness killed outright leaves no cell running.
    """
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    config_path = Path(config.result_path).with_suffix(".config.json")
    config_path.write_text(config.to_json())
    caches = compile_cache_folders(config.framework, compile_cache, Path(config.result_path).parent)
    environment = {**child_environment(config.framework, config.device, caches, config.precision),
                   lifeline.PARENT_PID_VARIABLE: str(os.getpid())}
    started_at, clock = _now(), time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen([python, "-m", "frameworks.child", str(config_path)],
                                   cwd=SOURCE_ROOT, env=environment,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, errors="replace", start_new_session=True)
        with CellSampler(process.pid, gpu=config.device != "cpu", memory_cap_bytes=memory_cap_bytes) as sampler:
            def handle(event: dict) -> None:
                if event.get("event") == "phase":
                    sampler.set_phase(event.get("name", ""))
                on_event(event)
            reader = threading.Thread(target=_pump, args=(process, log, tail, handle), daemon=True)
            reader.start()
            timed_out = False
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill(process)
            except BaseException:  # Ctrl-C, SIGTERM, SIGHUP (bench.cli.Terminated): no half-finished cell
                _kill(process)
                raise
            reader.join(timeout=10)
    wall = time.perf_counter() - clock
    signal_name = None
    if timed_out:
        document = {"status": "timeout", "reason": f"no result within --timeout {timeout_s:g} s; killed"}
    elif Path(config.result_path).is_file():
        document = json.loads(Path(config.result_path).read_text())
    elif sampler.over_cap:
        signal_name = "SIGKILL"
        document = {"status": "failed", "reason": f"out of memory: its processes grew past the memory cap "
                                                  f"({memory_cap_bytes / 2**20:,.0f} MiB) and were killed"}
    else:
        reason, signal_name = _failure_reason(process.returncode)
        document = {"status": "failed", "reason": reason + (f"; last log line: {tail[-1]}" if tail else "")}
    return ChildOutcome(document, process.returncode, signal_name, wall, started_at, _now(), "\n".join(tail),
                        sampler.peaks(), sampler.contention(), sampler.energies(),
                        int(environment["OMP_NUM_THREADS"]), sampler.over_cap)


def _identity(cell: Cell, settings: RunSettings, run_id: str, interpreter: Interpreter) -> dict:
    """The fields every record of CELL has, whether it ran or not."""
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "cell_id": cell.cell_id,
        "framework": cell.framework, "task": cell.task, "dataset": cell.dataset,
        "synthetic_data": cell.dataset == "synthetic", "device": cell.device, "mode": cell.mode,
        "precision": cell.precision, "repeat": cell.repeat, "seed": settings.seed,
        "epochs": settings.epochs_for(cell.task), "batch_size": cell.batch_size,
        "batch_outside_spec": cell.outside_spec, "train_samples": settings.train_samples_for(cell.task),
        "test_samples": settings.test_samples_for(cell.task),
        "interpreter": {"python": interpreter.python, "origin": interpreter.origin},
        "compile_cache": settings.compile_cache,
    }


def record_unsupported(cell: Cell, settings: RunSettings, store: RunStore, interpreter: Interpreter) -> dict:
    """Record a cell the plan marked unsupported, without starting a process; return the record (already stored)."""
    return record_without_process(cell, settings, store, interpreter, "unsupported", cell.unsupported_reason)


def record_without_process(cell: Cell, settings: RunSettings, store: RunStore, interpreter: Interpreter,
                           status: str, reason: str) -> dict:
    """Record a cell no process of its own ran (unsupported here; on a cluster, a task that failed before it could
    start one); its log says why. It got no environment, so no GPU policy either; return the record (stored)."""
    store.log_path(cell.cell_id).write_text(f"not run: {reason}\n")
    now = _now()
    record = {
        **_identity(cell, settings, store.run_id, interpreter),
        "status": status, "reason": reason,
        "exit_code": None, "signal": None, "wall_time_s": 0.0, "started_at": now, "finished_at": now,
        "log_path": log_relative_path(cell.cell_id), "log_tail": "",
        "gpu_policy": None, "threads": None, "contention": None, "node": None, "executor": None,
    }
    store.write_cell(record)
    return record


def run_cell(cell: Cell, settings: RunSettings, store: RunStore, interpreter: Interpreter,
             data_folder: str | None, on_event: Callable[[dict], None]) -> dict:
    """Run one cell in a child process on this machine and return its record (already written to the store)."""
    record = execute_cell(cell, settings, store.run_id, interpreter, data_folder, store.log_path(cell.cell_id),
                          on_event)
    store.write_cell(record)
    return record


def execute_cell(cell: Cell, settings: RunSettings, run_id: str, interpreter: Interpreter,
                 data_folder: str | None, log_path: Path, on_event: Callable[[dict], None],
                 executor: str = "local") -> dict:
    """Run one cell in a child process of INTERPRETER on this machine, its log written to LOG_PATH, and return its
    record (not yet stored): the local executor and a Ray task on a cluster node (bench.cluster) both run this."""
    with tempfile.TemporaryDirectory(prefix="bench-cell-") as scratch:
        config = CellConfig(
            run_id=run_id, cell_id=cell.cell_id, framework=cell.framework,
            adapter=FRAMEWORKS[cell.framework].adapter, task=cell.task,
            dataset=cell.dataset, data_folder=data_folder, device=cell.device, mode=cell.mode,
            precision=cell.precision, repeat=cell.repeat, seed=settings.seed, epochs=settings.epochs_for(cell.task),
            batch_size=cell.batch_size,
            train_samples=settings.train_samples_for(cell.task), test_samples=settings.test_samples_for(cell.task),
            spawned_at=time.time(), result_path=str(Path(scratch) / "result.json"))
        outcome = run_child(config, interpreter.python, log_path, settings.timeout_s, on_event,
                            settings.compile_cache)
    document = outcome.document
    if document.get("status") == "ok":
        document = {**document, "metrics": metrics.derive(document["metrics"], document["epochs_detail"],
                                                          TASKS[cell.task], cell.dataset, outcome.memory,
                                                          machine.device_peak(cell.device, cell.precision),
                                                          outcome.energy,
                                                          trained_samples=config.epochs * (
                                                              document["train_samples"] // config.batch_size)
                                                          * config.batch_size)}
    return {
        **_identity(cell, settings, run_id, interpreter),
        "exit_code": outcome.exit_code, "signal": outcome.signal, "wall_time_s": outcome.wall_time_s,
        "started_at": outcome.started_at, "finished_at": outcome.finished_at,
        "log_path": log_relative_path(cell.cell_id), "log_tail": outcome.log_tail,
        "gpu_policy": gpu_policy(cell.framework, cell.device, cell.precision),
        "threads": outcome.threads,
        "contention": outcome.contention,
        "node": machine.node_info(), "executor": executor,
        **document,
    }


def compile_cache_folders(framework: str, policy: str, scratch: Path) -> dict[str, str]:
    """COMPILE_CACHE_VARIABLES (and, warm, WARM_COMPILE_CACHE_VARIABLES) pointed at the cell's empty scratch folder
    (cold) or at a folder per framework in the user cache (warm)."""
    if policy == "warm":
        root = cache_root() / "compile-cache" / FRAMEWORKS[framework].slug
        folders = {**COMPILE_CACHE_VARIABLES, **WARM_COMPILE_CACHE_VARIABLES}
        return {variable: str(root / name) for variable, name in folders.items()} | WARM_COMPILE_CACHE_SETTINGS
    return {variable: str(scratch / "compile-cache" / name) for variable, name in COMPILE_CACHE_VARIABLES.items()}


def gpu_policy(framework: str, device: str, precision: str = "fp32") -> dict[str, str] | None:
    """The GPU variables a cell of FRAMEWORK on DEVICE at PRECISION gets (bench.registry: the shared policy and the
    framework's own); None on the CPU."""
    return FRAMEWORKS[framework].gpu_policy(precision) if device != "cpu" else None


def child_environment(framework: str, device: str = "cpu", compile_caches: dict[str, str] | None = None,
                      precision: str = "fp32") -> dict[str, str]:
    """The child's environment: ours, this source tree first on the path, and the framework's own variables.

    Every framework gets every CPU this process may use (bench.machine.usable_cpus: affinity mask and cgroup
    quota): OMP_NUM_THREADS and MKL_NUM_THREADS default to that count (Paddle would otherwise set OpenMP to 1 on
    import, and a benchmark must not hand one framework half the machine); a value the user set wins, for every
    framework alike. GPU cells get `gpu_policy`; compile caches go where `compile_caches` says.
    """
    threads = str(machine.usable_cpus())
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, **os.environ,
            **(compile_caches or {}), "PYTHONPATH": str(SOURCE_ROOT), "PYTHONUNBUFFERED": "1",
            **(gpu_policy(framework, device, precision) or {}), **dict(FRAMEWORKS[framework].environment)}


def _pump(process: subprocess.Popen, log, tail: deque, on_event: Callable[[dict], None]) -> None:
    """Copy the child's output to its log; hand progress events to the display."""
    for line in process.stdout:
        event = parse_event(line)
        if event is not None:
            on_event(event)
            continue
        log.write(line)
        log.flush()
        if line.strip():
            tail.append(line.rstrip())


def _kill(process: subprocess.Popen) -> None:
    """Kill the child and everything it started (compiler workers, data loaders)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
