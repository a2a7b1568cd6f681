"""One `bench run`: choose frameworks, device and datasets, record the manifest, run the cells, summarise."""
from __future__ import annotations

import contextlib
import itertools
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bench import aggregate, cluster, datasets, envs, machine, sampler, stats
from bench.catalogue import TRAIN_SPEED
from bench.display import RunDisplay, print_headlines, summary_table
from bench.registry import FRAMEWORKS
from bench.results import RunStore, new_run_id
from bench.runner import Cell, plan, record_unsupported, record_without_process, run_cell
from bench.settings import AUTO_REPEATS_MIN, AUTO_REPEATS_PRECISION, RunSettings
from frameworks import data
from frameworks.errors import DataError, UserError
from frameworks.spec import SPEC_VERSION, TASKS


def resolve_device(requested: str) -> str:
    present = bool(machine.gpus())
    if requested == "auto":
        return "cuda" if present else "cpu"
    if requested == "cuda" and not present:
        raise UserError("--device cuda: no NVIDIA GPU found (nvidia-smi); use --device cpu or --device auto")
    return requested


def resolve_dataset(task: str, settings: RunSettings, note) -> tuple[str, str | None]:
    """(dataset, folder) for TASK. A dataset the user named must be found; a default may fall back, said aloud."""
    wanted = settings.datasets.get(task)
    candidates = [wanted] if wanted else [TASKS[task].default_dataset,
                                          *(d for d in TASKS[task].datasets if d != TASKS[task].default_dataset)]
    reasons = []
    for name in candidates:
        if name == data.SYNTHETIC:
            if not wanted:
                note(f"[yellow]{task}: no real dataset available ({escape('; '.join(reasons))}); using SYNTHETIC data: "
                     f"throughput and memory only, no accuracy[/]")
            return name, None
        folder = datasets.locate(name, settings.data_dir)
        if folder is None and settings.download:
            try:
                folder = datasets.download(name)
            except DataError as error:
                reasons.append(f"{name}: not found locally, download failed ({error})")
        elif folder is None:
            reasons.append(f"{name}: not found locally, downloads disabled")
        if folder is not None:
            folder = datasets.prepare(name, folder)
            data.load(name, folder)  # read it once here: a corrupt file stops the run before any cell
            if name != candidates[0]:
                note(f"[yellow]{task}: using {name} from {folder} instead of {candidates[0]} "
                     f"({escape('; '.join(reasons))})[/]")
            return name, str(folder)
        if wanted:
            raise DataError(datasets.not_found_message(name, settings.data_dir))
    raise AssertionError("every task accepts synthetic data")


def available_frameworks(settings: RunSettings, overrides: dict[str, str], note,
                         device: str = "cpu", executor: str = "local") -> dict[str, envs.Interpreter]:
    """Interpreter per framework, from its environment for DEVICE. Frameworks named with --frameworks get a missing
    environment built; with no --frameworks, the ready ones run (and all are built when none is ready: a fresh
    machine's first run). CUDA environments are built only where the driver can run them. With the Ray executor
    nothing is built here: each node builds what it lacks (bench.cluster), at the same path as here."""
    named = settings.frameworks or tuple(FRAMEWORKS)
    found = {name: envs.interpreter_for(FRAMEWORKS[name], overrides, device) for name in named}
    if executor == "ray":
        return {name: interpreter or envs.planned_interpreter(FRAMEWORKS[name], device)
                for name, interpreter in found.items()}
    build = [name for name, interpreter in found.items() if interpreter is None]
    if not settings.frameworks and len(build) < len(named):
        for name in build:
            note(escape(f"{name}: {device} environment not set up; skipped (`{envs.setup_command(name, device)}` "
                        "adds it)"))
        build = []
    if build and device == "cuda":
        envs.require_cuda_driver([FRAMEWORKS[name] for name in build])
    for name in build:
        folder = envs.env_dir(FRAMEWORKS[name], device)
        note(escape(f"{name}: building its {device} environment once, cached in {folder} (log: {folder}.log)"))
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(f"{folder}.log", "w") as log:
                found[name] = envs.build_env(FRAMEWORKS[name], log=lambda line: print(line, file=log, flush=True),
                                             device=device)
        except UserError as error:
            note("[red]" + escape(f"{name}: unavailable: {error}") + "[/]")
    ready = {name: interpreter for name, interpreter in found.items() if interpreter is not None}
    if not ready:
        raise UserError(f"no framework environment could be made ready; see `bench list` (frameworks: "
                        f"{', '.join(FRAMEWORKS)})")
    return ready


def framework_versions(interpreters: dict[str, envs.Interpreter], timeout_s: float,
                       device: str = "cpu") -> dict[str, dict]:
    versions = {}
    for name, interpreter in interpreters.items():
        if not Path(interpreter.python).exists():  # a Ray run whose nodes build it: each record has its version
            versions[name] = {"version": None, "error": "built on the Ray nodes (each record names its version)",
                              "python": interpreter.python, "origin": interpreter.origin}
            continue
        version, why_not = envs.probe(FRAMEWORKS[name], interpreter.python, min(timeout_s, envs.PROBE_TIMEOUT_S),
                                      device)
        versions[name] = {"version": version, "error": why_not, "python": interpreter.python,
                          "origin": interpreter.origin}
    return versions


def check_machine(note) -> None:
    """Say before the first cell whether other processes keep the CPUs busy (each cell checks again, and flags)."""
    busy, top = sampler.machine_load()
    if busy > sampler.CONTENTION_THRESHOLD_CORES:
        busiest = ", ".join(f"{name} (pid {pid}, {cores:.2f})" for name, pid, cores in top)
        note(f"[bold yellow]the machine is busy: other processes use {busy:.2f} cores"
             + escape(f" (busiest now: {busiest})" if busiest else "") + "; "
             f"cells timed while that lasts are flagged as measured under contention and not ranked[/]")
    else:
        note(f"machine quiet: other processes use {busy:.2f} cores (a cell is flagged above "
             f"{sampler.CONTENTION_THRESHOLD_CORES:g})")


def _store_ray_result(finished: cluster.Finished, settings: RunSettings, store: RunStore,
                      interpreters: dict[str, envs.Interpreter], display: RunDisplay) -> list[str]:
    """Write a Ray task's record and log with the run's store; a task that raised is a failed cell (recorded
    without a process of its own, as an unsupported one); a cell lost to the infrastructure is returned."""
    cell = finished.cell
    if finished.lost:
        return [f"{cell.cell_id}: {finished.lost}"]
    if finished.failed_on_node:
        record = record_without_process(cell, settings, store, interpreters[cell.framework], "failed",
                                        finished.failed_on_node)
    else:
        record = finished.record
        store.log_path(cell.cell_id).write_text(finished.log)
        store.write_cell(record)
    display.cell_finished(record)
    return []


def _group_key(cell: Cell | aggregate.Group) -> tuple:
    """A cell of the plan and the group of its repeats (bench.aggregate) share this key."""
    return cell.framework, cell.task, cell.dataset, cell.device, cell.mode, cell.precision, cell.batch_size


def settled_cells(records: list[dict]) -> set[tuple]:
    """--repeats auto: the cells that need no more repeats — at least AUTO_REPEATS_MIN successful ones whose training
    speed is known within ±AUTO_REPEATS_PRECISION (95 %), or a repeat that did not succeed (repeating a failure
    or an unsupported cell buys nothing)."""
    settled = set()
    for group in aggregate.group(records):
        speeds = group.values(TRAIN_SPEED.name)
        precision = stats.relative_halfwidth(speeds)
        if len(group.ok) < len(group.records) or (
                len(speeds) >= AUTO_REPEATS_MIN and precision is not None and precision <= AUTO_REPEATS_PRECISION):
            settled.add(_group_key(group))
    return settled


def run(settings: RunSettings, overrides: dict[str, str], results_root: Path, resume: str | None,
        console: Console, executor: str = "local", address: str | None = None) -> tuple[RunStore, list[dict]]:
    """One `bench run` (or `--resume`): the plan, then its cells one after another on this machine (`local`) or
    as tasks on a Ray cluster (`ray`, bench.cluster), each record stored the moment its cell ends."""
    note = console.print
    if resume:
        store = RunStore.open(results_root, resume)
        manifest = store.manifest()
        settings = RunSettings.from_dict(manifest["settings"])
        overrides = manifest["python_overrides"]
        device, chosen = manifest["device"], manifest["datasets"]
        interpreters = available_frameworks(settings, overrides, note, device, executor)
        note(f"resuming run {store.run_id}: {len(list(store.cells_folder.glob('*.json')))} cells already done")
    else:
        if executor == "ray" and settings.device == "auto":  # this machine's GPUs say nothing of the nodes'
            raise UserError("--device auto with --executor ray: name the device the cells run on (cpu or cuda)")
        device = resolve_device(settings.device) if executor == "local" else settings.device
        chosen = {}
        for task in settings.tasks:
            name, folder = resolve_dataset(task, settings, note)
            chosen[task] = {"dataset": name, "folder": folder}
        interpreters = available_frameworks(settings, overrides, note, device, executor)
        settings.frameworks = tuple(interpreters)
        store = RunStore.create(results_root, new_run_id(), {
            "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
            "spec_version": SPEC_VERSION, "seed": settings.seed, "device": device, "executor": executor,
            "settings": settings.to_dict(), "python_overrides": overrides, "datasets": chosen,
            "machine": machine.machine_info(), "frameworks": framework_versions(interpreters, settings.timeout_s, device),
        })
    for task, choice in chosen.items():
        where = "SYNTHETIC (no accuracy)" if choice["folder"] is None else choice["folder"]
        note(f"{task}: dataset {choice['dataset']} — {where}")
    cells = plan(settings, interpreters, device, {task: c["dataset"] for task, c in chosen.items()})
    todo = [cell for cell in cells if not store.has_cell(cell.cell_id)]
    unsupported = sum(cell.unsupported_reason is not None for cell in todo)
    note(f"run {store.run_id}: {len(todo) - unsupported} of {len(cells)} cells to run"
         + (f" at most (--repeats auto)" if settings.auto_repeats else "")
         + (f", {unsupported} unsupported here (recorded without a process)" if unsupported else "")
         + f"; results in {store.folder}")
    if executor == "local":
        check_machine(note)
    folders = {task: choice["folder"] for task, choice in chosen.items()}
    lost: list[str] = []
    with contextlib.ExitStack() as stack:
        on_ray = stack.enter_context(cluster.RayExecutor(address, note)) if executor == "ray" else None
        display = stack.enter_context(RunDisplay(console, len(todo)))
        done = 0
        for repeat, round_cells in itertools.groupby(todo, key=lambda cell: cell.repeat):
            to_run = []
            settled = settled_cells(store.cells()) if settings.auto_repeats and repeat >= AUTO_REPEATS_MIN else set()
            for cell in round_cells:  # a new round: which cells are precise enough now (--repeats auto)
                done += 1
                if _group_key(cell) in settled:
                    display.cell_skipped(done, len(todo), cell)
                elif cell.unsupported_reason:  # declared in the registry: recorded, no process started
                    display.cell_finished(record_unsupported(cell, settings, store, interpreters[cell.framework]))
                else:
                    to_run.append(cell)
            if on_ray is not None:
                for finished in on_ray.run(to_run, settings, store.run_id, overrides, folders):
                    lost += _store_ray_result(finished, settings, store, interpreters, display)
                continue
            for cell in to_run:
                display.cell_started(todo.index(cell) + 1, len(todo), cell)
                display.cell_finished(run_cell(cell, settings, store, interpreters[cell.framework], folders[cell.task],
                                               display.event))
    if lost:
        note(f"[bold red]{len(lost)} cell(s) not run: their Ray worker or node was lost "
             f"{cluster.INFRASTRUCTURE_RETRIES + 1} times ({escape('; '.join(lost))}); `bench run --resume "
             f"{store.run_id}` runs them again[/]")
    records = store.cells()
    console.print(summary_table(records))
    print_headlines(console, records)
    return store, records
