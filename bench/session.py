"""One `bench run`: choose frameworks, device and datasets, record the manifest, run the cells, summarise."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bench import aggregate, datasets, envs, machine, sampler, stats
from bench.catalogue import TRAIN_SPEED
from bench.display import RunDisplay, print_headlines, summary_table
from bench.registry import FRAMEWORKS
from bench.results import RunStore, new_run_id
from bench.runner import Cell, plan, record_unsupported, run_cell
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
                         device: str = "cpu") -> dict[str, envs.Interpreter]:
    """Interpreter per framework, from its environment for DEVICE. Frameworks named with --frameworks get a missing
    environment built; with no --frameworks, the ready ones run (and all are built when none is ready: a fresh
    machine's first run). CUDA environments are built only where the driver can run them."""
    named = settings.frameworks or tuple(FRAMEWORKS)
    found = {name: envs.interpreter_for(FRAMEWORKS[name], overrides, device) for name in named}
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
        console: Console) -> tuple[RunStore, list[dict]]:
    note = console.print
    if resume:
        store = RunStore.open(results_root, resume)
        manifest = store.manifest()
        settings = RunSettings.from_dict(manifest["settings"])
        overrides = manifest["python_overrides"]
        device, chosen = manifest["device"], manifest["datasets"]
        interpreters = available_frameworks(settings, overrides, note, device)
        note(f"resuming run {store.run_id}: {len(list(store.cells_folder.glob('*.json')))} cells already done")
    else:
        device = resolve_device(settings.device)
        chosen = {}
        for task in settings.tasks:
            name, folder = resolve_dataset(task, settings, note)
            chosen[task] = {"dataset": name, "folder": folder}
        interpreters = available_frameworks(settings, overrides, note, device)
        settings.frameworks = tuple(interpreters)
        store = RunStore.create(results_root, new_run_id(), {
            "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
            "spec_version": SPEC_VERSION, "seed": settings.seed, "device": device,
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
    check_machine(note)
    settled: set[tuple] = set()
    with RunDisplay(console, len(todo)) as display:
        for index, cell in enumerate(todo, 1):
            if settings.auto_repeats and cell.repeat >= AUTO_REPEATS_MIN:
                if cell.repeat != todo[index - 2].repeat:  # a new round: which cells are precise enough now
                    settled = settled_cells(store.cells())
                if _group_key(cell) in settled:
                    display.cell_skipped(index, len(todo), cell)
                    continue
            if cell.unsupported_reason:  # declared in the registry: recorded, no process started
                display.cell_finished(record_unsupported(cell, settings, store, interpreters[cell.framework]))
                continue
            display.cell_started(index, len(todo), cell)
            record = run_cell(cell, settings, store, interpreters[cell.framework], chosen[cell.task]["folder"],
                              display.event)
            display.cell_finished(record)
    records = store.cells()
    console.print(summary_table(records))
    print_headlines(console, records)
    return store, records
