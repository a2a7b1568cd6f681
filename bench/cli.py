"""The `bench` command: list, setup, run, parity, report, compare.

User errors (unknown names, bad numbers, missing or corrupt files) print one line and exit 2; anything else is a
bug and keeps its traceback. A run stopped by SIGTERM or SIGHUP ends as on Ctrl-C, with exit code 128 + its number.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import signal
import sys
import tempfile
import tomllib
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench import datasets, envs
from bench.registry import FRAMEWORKS, SOURCE_ROOT, resolve_framework
from bench.report import FORMATS as REPORT_FORMATS
from bench.settings import (AUTO_REPEATS_MAX, AUTO_REPEATS_MIN, AUTO_REPEATS_PRECISION, COMPILE_CACHES, DEVICES,
                            MODES, RunSettings, parse_datasets, split_list)
from frameworks.errors import UserError
from frameworks.spec import PROFILES, TASKS

EXIT_USER_ERROR = 2
#: Stop a run as Ctrl-C does: a CI timeout or a scheduler's cancel (SIGTERM), a closed terminal (SIGHUP).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived (a CI timeout, a scheduler's cancel, a closed terminal). A KeyboardInterrupt, so
    whatever Ctrl-C does applies unchanged: the running cell is killed and nothing half-done is recorded."""

    def __init__(self, number: int):
        super().__init__(signal.Signals(number).name)
        self.number = number


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors follow the same one-line rule
        raise UserError(message)


def _positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, received {text!r}") from None


def _repeats(text: str) -> int | str:
    return "auto" if text.strip().lower() == "auto" else _positive_int(text)


def _positive_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, received {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bench", description="Benchmark deep-learning frameworks on one common task spec.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("list", help="frameworks (available or not, version, why not), tasks, datasets")

    setup = commands.add_parser("setup", help="build each framework's pinned environment (cached)")
    setup.add_argument("frameworks", nargs="*", help=f"default: all ({', '.join(FRAMEWORKS)})")

    run = commands.add_parser("run", help="run the benchmark matrix, one fresh process per cell")
    run.add_argument("--frameworks", help=f"comma-separated; default: every one set up ({', '.join(FRAMEWORKS)})")
    run.add_argument("--tasks", help=f"comma-separated; default: all ({', '.join(TASKS)})")
    run.add_argument("--device", choices=DEVICES, default="cpu")
    run.add_argument("--mode", dest="modes", help=f"comma-separated modes ({', '.join(MODES)}); default: native, "
                                                  "each framework trained the way its own docs recommend for speed")
    run.add_argument("--profile", choices=PROFILES, default="quick",
                     help="; ".join(f"{p.name}: {p.description}" for p in PROFILES.values()))
    run.add_argument("--epochs", type=_positive_int)
    run.add_argument("--batch-size", type=_positive_int)
    run.add_argument("--train-samples", type=_positive_int,
                     help="a seeded sample of N training samples, every class in proportion")
    run.add_argument("--repeats", type=_repeats, default=1,
                     help=f"each cell again in a fresh process; auto: at least {AUTO_REPEATS_MIN}, then more until "
                          f"each cell's training-speed interval is within ±{AUTO_REPEATS_PRECISION:.0%} "
                          f"(at most {AUTO_REPEATS_MAX})")
    run.add_argument("--compile-cache", choices=COMPILE_CACHES, default="cold",
                     help="cold (default): every cell compiles from an empty cache; warm: keep torch.compile's, "
                          "JAX's caches per framework across cells and runs")
    run.add_argument("--seed", type=_positive_int, default=0, help="initial weights, batch order, dropout")
    run.add_argument("--dataset", help=f"NAME or TASK=NAME, comma-separated ({', '.join(datasets.DATASET_NAMES)}); "
                                       f"default per task: " + ", ".join(f"{t.name}={t.default_dataset}"
                                                                         for t in TASKS.values()))
    run.add_argument("--data-dir", help="folder holding the datasets (also: $BENCH_DATA)")
    run.add_argument("--no-download", action="store_true", help="never download a dataset")
    run.add_argument("--timeout", type=_positive_float, default=1800.0, help="seconds per cell (default 1800)")
    run.add_argument("--python", action="append", metavar="FRAMEWORK=PATH",
                     help="run FRAMEWORK with this interpreter instead of its managed environment")
    run.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    run.add_argument("--resume", metavar="RUN_ID", help="run only the cells missing from this run")
    run.add_argument("--reports", type=Path, default=Path("reports"),
                     help="where the end-of-run HTML report goes (default: reports)")

    parity = commands.add_parser("parity", help="prove every adapter computes the spec: losses and weights after "
                                                "a few steps with dropout off, against PyTorch")
    parity.add_argument("--frameworks", help="comma-separated; default: every one set up")
    parity.add_argument("--tasks", help=f"comma-separated; default: all ({', '.join(TASKS)})")
    parity.add_argument("--seed", type=_positive_int, default=0)
    parity.add_argument("--timeout", type=_positive_float, default=600.0, help="seconds per framework and task")
    parity.add_argument("--python", action="append", metavar="FRAMEWORK=PATH",
                        help="run FRAMEWORK with this interpreter instead of its managed environment")
    parity.add_argument("--out", type=Path, default=Path("results"),
                        help="results folder; the table is kept there as parity-latest.json for reports")

    report = commands.add_parser("report", help="rebuild a report from stored results (several runs combine)")
    report.add_argument("runs", nargs="+", metavar="RUN", help="a run id under --out, or a run folder")
    report.add_argument("--format", choices=REPORT_FORMATS, default="html",
                        help="html (default: the interactive page), md (GitHub) or csv (spreadsheets)")
    _report_paths(report)

    compare = commands.add_parser("compare", help="what changed from RUN_A to RUN_B: significant changes only")
    compare.add_argument("run_a", metavar="RUN_A", help="before: a run id under --out, or a run folder")
    compare.add_argument("run_b", metavar="RUN_B", help="after: a run id under --out, or a run folder")
    compare.add_argument("--format", choices=("html", "md"), default="html")
    _report_paths(compare)
    return parser


def _report_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="where reports go (default: reports)")
    parser.add_argument("--output", "-o", type=Path, help="write to this file instead (default: in --reports)")


def cmd_list(args, console: Console) -> int:
    table = Table(title="Frameworks")
    for column in ("framework", "available", "version", "environment", "why not"):
        table.add_column(column)
    for framework in FRAMEWORKS.values():
        interpreter = envs.interpreter_for(framework, {})
        if interpreter is None:
            table.add_row(escape(framework.name), "[red]no[/]", "", str(envs.env_dir(framework)),
                          escape(f"environment not built: run `bench setup {framework.name}`"))
            continue
        version, why_not = envs.probe(framework, interpreter.python)
        table.add_row(escape(framework.name), "[green]yes[/]" if version else "[red]no[/]", version or "",
                      interpreter.python, escape(why_not or ""))
    console.print(table)
    tasks = Table(title="Tasks")
    for column in ("task", "network", "parameters", "optimizer", "batch", "datasets"):
        tasks.add_column(column)
    for task in TASKS.values():
        tasks.add_row(task.name, " → ".join(task.architecture), f"{task.parameter_count:,}", task.optimizer.name,
                      str(task.batch_size), ", ".join(task.datasets))
    console.print(tasks)
    found = Table(title="Datasets")
    found.add_column("dataset")
    found.add_column("found at")
    for name in datasets.DATASETS:
        folder = datasets.locate(name, None)
        found.add_row(name, str(folder) if folder else f"[yellow]not found[/] (searched "
                      f"{', '.join(map(str, datasets.candidate_folders(name, None)))}; downloaded on first use)")
    found.add_row(datasets.SYNTHETIC, "generated from the seed: throughput and memory only, no accuracy")
    console.print(found)
    return 0


def cmd_setup(args, console: Console) -> int:
    names = [resolve_framework(name).name for name in args.frameworks] or list(FRAMEWORKS)
    for name in names:
        framework = FRAMEWORKS[name]
        with console.status(f"{name}: building {envs.env_dir(framework)} from {framework.requirements.name}"):
            interpreter = envs.build_env(framework, log=lambda line: None)
        version, why_not = envs.probe(framework, interpreter.python)
        console.print(escape(f"{name}: ") + (f"ready, {framework.distribution} {version} ({interpreter.python})"
                                     if version else f"[red]built but does not import: {why_not}[/]"))
    return 0


def cmd_run(args, console: Console) -> int:
    from bench import session

    tasks = tuple(split_list(args.tasks)) or tuple(TASKS)
    settings = RunSettings(
        frameworks=tuple(split_list(args.frameworks)), tasks=tasks, device=args.device,
        modes=tuple(split_list(args.modes)) or RunSettings.modes, profile=args.profile,
        datasets=parse_datasets(args.dataset, tasks), epochs=args.epochs, batch_size=args.batch_size,
        train_samples=args.train_samples, repeats=AUTO_REPEATS_MAX if args.repeats == "auto" else args.repeats,
        auto_repeats=args.repeats == "auto", compile_cache=args.compile_cache, seed=args.seed, data_dir=args.data_dir,
        timeout_s=args.timeout, download=not args.no_download and not _env_flag("BENCH_NO_DOWNLOAD"))
    overrides = envs.parse_python_overrides(args.python, resolve_framework)
    if os.environ.get("BENCH_DATA"):
        datasets.require_folder("$BENCH_DATA", os.environ["BENCH_DATA"])
    _require_writable("--out", args.out)
    _require_writable("--reports", args.reports)
    try:
        with _stop_signals_interrupt():
            store, records = session.run(settings, overrides, args.out, args.resume, console)
    except KeyboardInterrupt as interrupt:
        number = interrupt.number if isinstance(interrupt, Terminated) else signal.SIGINT
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            console.print(f"[yellow]interrupted ({signal.Signals(number).name}): every finished cell is saved; "
                          f"continue with `bench run --resume RUN_ID` (the run id is printed above)[/]")
        return 128 + number
    failed = sum(record["status"] in ("failed", "timeout") for record in records)
    console.print(escape(f"results: {store.folder}") + (f" ([red]{failed} failed cell(s)[/])" if failed else ""))
    from bench.report import output

    console.print(escape(f"report: {output.write_run_report(store.folder, args.reports)}"), highlight=False)
    return 0


def cmd_parity(args, console: Console) -> int:
    from bench import parity, session

    tasks = tuple(split_list(args.tasks)) or tuple(TASKS)
    named = tuple(split_list(args.frameworks))
    settings = RunSettings(frameworks=(parity.REFERENCE, *named) if named else (), tasks=tasks, seed=args.seed,
                           timeout_s=args.timeout)
    overrides = envs.parse_python_overrides(args.python, resolve_framework)
    _require_writable("--out", args.out)
    interpreters = session.available_frameworks(settings, overrides, console.print)
    if parity.REFERENCE not in interpreters:
        raise UserError(f"parity compares against {parity.REFERENCE}: run `bench setup {parity.REFERENCE}` first")
    limits = ", ".join(f"{kind} {limit:g}" for kind, limit in parity.TOLERANCES.items())
    table = Table(title=f"Parity against {parity.REFERENCE}: {parity.PARITY_STEPS} steps, dropout off; "
                        f"largest relative difference allowed: {limits}")
    for column in ("framework", "task", "loss", "kernels", "biases", "parameters", "result"):
        table.add_column(column)
    rows = parity.run_parity(interpreters, tasks, args.seed, args.timeout,
                             on_row=lambda row: console.print(escape(f"{row.framework} {row.task}: {row.status}")))
    for row in rows:
        style = "green" if row.status == "pass" else "bold red"
        found, worst = row.differences or {}, row.worst or {}
        table.add_row(escape(row.framework), row.task, _sci(found.get("loss")),
                      *(_sci(found.get(kind)) + (f" {worst[kind]}" if kind in worst else "")
                        for kind in ("kernel", "bias")),
                      f"{row.parameter_count:,}" if row.parameter_count else "—",
                      f"[{style}]{row.status}[/]" + escape(f" {row.reason}" if row.reason else ""))
    console.print(table)
    from bench.report import parity_file

    saved = parity_file.save(args.out, rows, reference=parity.REFERENCE, steps=parity.PARITY_STEPS,
                             tolerances=parity.TOLERANCES, seed=args.seed)
    console.print(escape(f"parity table: {saved} (shown by `bench report`)"), highlight=False)
    return 0 if all(row.status == "pass" for row in rows) else 1


def cmd_report(args, console: Console) -> int:
    from bench.report import output

    path = output.write(args.runs, args.out, args.reports, args.format, args.output)
    console.print(escape(f"report: {path}"), highlight=False)
    return 0


def cmd_compare(args, console: Console) -> int:
    from bench.report import compare

    path, comparison = compare.write(args.run_a, args.run_b, args.out, args.reports, args.format, args.output)
    for change in comparison.status_changes:
        console.print(escape(f"{change[0]}, {change[1]}: {change[2]} → {change[3]}"), style="bold red",
                      highlight=False)
    for change in comparison.significant:
        console.print(escape(f"{change.setting}, {change.label}: {change.metric} {change.verdict} "
                             f"({change.before} → {change.after})"),
                      style="green" if change.verdict == compare.BETTER else "red", highlight=False)
    console.print(escape(f"{len(comparison.significant)} significant change(s) of {len(comparison.changes)} "
                         f"comparisons; report: {path}"), highlight=False)
    return 0


def _sci(value: float | None) -> str:
    return "—" if value is None else f"{value:.1e}"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false")


def _require_writable(option: str, folder: Path) -> None:
    """Fail before the first cell, not after the last, when results or reports could not be written there."""
    existing = folder
    while not os.path.lexists(existing):
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{option} {folder}: {existing} is not a folder, so nothing can be written there")
    try:
        tempfile.TemporaryFile(dir=existing).close()  # a real write: root ignores permission bits, not read-only
    except OSError as error:
        raise UserError(f"{option} {folder}: cannot write in {existing} ({error.strerror})") from None


@contextlib.contextmanager
def _stop_signals_interrupt():
    """Turn STOP_SIGNALS into Terminated, an interrupt: by default they would end this process alone and leave its
    cell running. A signal ignored on entry (nohup) stays ignored."""
    def stop(number, frame):
        raise Terminated(number)

    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    for number, handler in previous.items():
        if handler != signal.SIG_IGN:
            signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def version() -> str:
    """The installed distribution's version; from a clone run through PYTHONPATH, pyproject.toml's."""
    try:
        return importlib.metadata.version("dl-framework-bench")
    except importlib.metadata.PackageNotFoundError:
        return tomllib.loads((SOURCE_ROOT / "pyproject.toml").read_text())["project"]["version"]


COMMANDS = {"list": cmd_list, "setup": cmd_setup, "run": cmd_run, "parity": cmd_parity, "report": cmd_report,
            "compare": cmd_compare}


def main(argv: list[str] | None = None) -> int:
    console = Console() if sys.stdout.isatty() else Console(width=160)  # logs and CI: no wrapping at 80
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args, console)
    except UserError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
