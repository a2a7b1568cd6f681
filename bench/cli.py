"""The `bench` command: list, setup, run, parity, capacity, report, compare.

User errors (unknown names, bad numbers, missing or corrupt files) print one line and exit 2; anything else is a
bug and keeps its traceback. A run stopped by SIGTERM or SIGHUP ends as on Ctrl-C, with exit code 128 + its number.
`bench run`'s options are bench.settings.RunSettings' fields: each one's flag, default and help are declared there
only; options several commands share are added by one function each (add_setting, add_python, add_out, ...).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import itertools
import os
import signal
import sys
import tempfile
import tomllib
from dataclasses import MISSING, Field, asdict, fields, replace
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench import datasets, envs
from bench.registry import FRAMEWORKS, SOURCE_ROOT, resolve_framework
from bench.report import FORMATS as REPORT_FORMATS
from bench.capacity import MAX_TRIES
from bench.settings import AUTO_REPEATS_MAX, MODES, PARITY_TIMEOUT_S, RunSettings, parse_datasets, split_list
from frameworks.errors import UserError
from frameworks.spec import TASKS

EXIT_USER_ERROR = 2
RESULTS_FOLDER, REPORTS_FOLDER = Path("results"), Path("reports")
#: RunSettings' fields by name: each one with a `flag` in its metadata is a `bench run` option
SETTINGS: dict[str, Field] = {spec.name: spec for spec in fields(RunSettings)}
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


def _at_least_one(text: str) -> int:
    """A count or a size that must be positive (bench capacity's batches and tries)."""
    number = _positive_int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, received {text!r}")
    return number


def _repeats(text: str) -> int | str:
    return "auto" if text.strip().lower() == "auto" else _positive_int(text)


#: --memory-cap units, binary
_SIZE_UNITS = {"": 1, "b": 1, "kib": 2**10, "k": 2**10, "mib": 2**20, "m": 2**20, "gib": 2**30, "g": 2**30}


def _size(text: str) -> int:
    """A memory size: a number of bytes, or with a unit (KiB, MiB, GiB)."""
    number, unit = text.strip(), ""
    while number and not number[-1].isdigit():
        number, unit = number[:-1], number[-1] + unit
    if unit.strip().lower() not in _SIZE_UNITS or not number:
        raise argparse.ArgumentTypeError(f"expected a size such as 4GiB or 1500MiB, received {text!r}")
    try:
        size = float(number) * _SIZE_UNITS[unit.strip().lower()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 4GiB or 1500MiB, received {text!r}") from None
    if size <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive size, received {text!r}")
    return int(size)


def _positive_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, received {text!r}") from None


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(split_list(text))


def _whole_numbers(text: str) -> tuple[int, ...]:
    return tuple(_positive_int(item) for item in split_list(text))


#: how an option's text becomes its field's value, by the field's name or else its type; a field not here keeps
#: the text
_CONVERTERS = {"repeats": _repeats, "batch_sizes": _whole_numbers,
               "int": _positive_int, "float": _positive_float, "tuple": _comma_list}


def _help(text: str, default=None) -> str:
    """Help as argparse wants it (a literal %% doubled), the default shown after it where there is one."""
    if isinstance(default, float):
        shown = f"{default:g}"
    elif isinstance(default, tuple):
        shown = ", ".join(default)
    else:
        shown = "" if default is None else str(default)
    return (text + (f" (default: {shown})" if shown else "")).replace("%", "%%")


def add_setting(parser: argparse.ArgumentParser, name: str, default=MISSING, help: str | None = None) -> None:
    """Add RunSettings field NAME's option, as its metadata declares it (flag, help, choices, metavar), with the
    field's default; a command whose own default or help differs passes it (parity's --timeout)."""
    spec = SETTINGS[name]
    option = dict(spec.metadata)
    flag, declared = option.pop("flag"), option.pop("help")
    text, default = help or declared, spec.default if default is MISSING else default
    if spec.type == "bool":  # a switch that flips the default: --no-download
        parser.add_argument(flag, dest=name, action="store_false" if default else "store_true", help=_help(text))
        return
    kind = spec.type.split("[")[0].split(" | ")[0]
    if "choices" not in option:  # argparse shows choices as {a,b}; otherwise the flag's name, not the field's
        option.setdefault("metavar", flag.lstrip("-").replace("-", "_").upper())
    parser.add_argument(flag, dest=name, type=_CONVERTERS.get(name, _CONVERTERS.get(kind)),
                        default=None if default is MISSING or kind == "tuple" else default,
                        help=_help(text, None if default is MISSING else default), **option)


def add_python(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--python", action="append", metavar="FRAMEWORK=PATH",
                        help="run FRAMEWORK with this interpreter instead of its managed environment")


def add_out(parser: argparse.ArgumentParser, help: str = "results folder") -> None:
    parser.add_argument("--out", type=Path, default=RESULTS_FOLDER, help=_help(help, RESULTS_FOLDER))


def add_reports(parser: argparse.ArgumentParser, help: str = "where reports go") -> None:
    parser.add_argument("--reports", type=Path, default=REPORTS_FOLDER, help=_help(help, REPORTS_FOLDER))


def add_report_paths(parser: argparse.ArgumentParser) -> None:
    """report and compare: where stored runs are read and where the report is written; how machines are kept."""
    add_out(parser)
    add_reports(parser)
    parser.add_argument("--output", "-o", type=Path, help="write to this file instead (default: in --reports)")
    parser.add_argument("--pool-machines", action="store_true",
                        help="rank cells of several machine types (a cluster's nodes) together, as one; default: "
                             "each machine type ranked on its own")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bench", description="Benchmark deep-learning frameworks on one common task spec.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("list", help="frameworks (available or not, version, why not), tasks, datasets")

    setup = commands.add_parser("setup", help="build each framework's pinned environment (cached)")
    setup.add_argument("frameworks", nargs="*", help=f"default: all ({', '.join(FRAMEWORKS)})")
    setup.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                       help="cpu (default): the CPU builds; cuda: the CUDA builds (frameworks/requirements/cuda/), "
                            "after checking the NVIDIA driver can run them")

    run = commands.add_parser("run", help="run the benchmark matrix, one fresh process per cell")
    for name, spec in SETTINGS.items():
        if "flag" in spec.metadata:
            add_setting(run, name)
    add_python(run)
    add_out(run)
    run.add_argument("--resume", metavar="RUN_ID", help="run only the cells missing from this run (with either executor)")
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local (default): the cells one after another on this machine; ray: each cell a Ray task "
                          "on a cluster's nodes (needs the ray extra)")
    run.add_argument("--address", metavar="ADDR",
                     help="with --executor ray: the Ray cluster to join (host:port, or ray://host:10001); default: "
                          "a local Ray instance started for the run and stopped after it")
    add_reports(run, help="where the end-of-run HTML report goes")

    parity = commands.add_parser("parity", help="prove every adapter computes the spec: losses and weights after "
                                                "a few steps with dropout off, against PyTorch")
    for name in ("frameworks", "tasks", "precisions", "seed"):
        add_setting(parity, name)
    add_setting(parity, "timeout_s", default=PARITY_TIMEOUT_S, help="seconds per framework and task")
    add_python(parity)
    add_out(parity, help="results folder; the table is kept there as parity-latest.json for reports")

    capacity = commands.add_parser("capacity", help="the largest training batch each framework fits on the device, "
                                                    "and its memory per sample (a fresh process per try)")
    for name in ("frameworks", "tasks", "device", "precisions", "seed"):
        add_setting(capacity, name)
    capacity.add_argument("--mode", dest="capacity_mode", choices=MODES, default="native",
                          help="the mode every try trains in (default: native)")
    capacity.add_argument("--start-batch", type=_at_least_one, metavar="N",
                          help="the first batch tried (default: the task's); it doubles until one does not fit")
    capacity.add_argument("--max-batch", type=_at_least_one, default=65536, metavar="N",
                          help="stop doubling here (default: 65536)")
    capacity.add_argument("--memory-cap", type=_size, metavar="SIZE",
                          help="on a CPU, a try whose processes grow past this is killed and counts as out of memory "
                               "(e.g. 4GiB, 1500MiB; default: half the memory available now); on a GPU the device's "
                               "own memory is the cap")
    capacity.add_argument("--max-tries", type=_at_least_one, default=MAX_TRIES, metavar="N",
                          help=f"tries per framework and task, at most (default: {MAX_TRIES})")
    add_setting(capacity, "timeout_s", default=PARITY_TIMEOUT_S, help="seconds per try")
    add_python(capacity)
    add_out(capacity, help="results folder; the table is kept there as capacity-latest.json for reports")

    report = commands.add_parser("report", help="rebuild a report from stored results (several runs combine)")
    report.add_argument("runs", nargs="+", metavar="RUN", help="a run id under --out, or a run folder")
    report.add_argument("--format", choices=REPORT_FORMATS, default="html",
                        help="html (default: the interactive page), md (GitHub) or csv (spreadsheets)")
    add_report_paths(report)

    compare = commands.add_parser("compare", help="what changed from RUN_A to RUN_B: significant changes only")
    compare.add_argument("run_a", metavar="RUN_A", help="before: a run id under --out, or a run folder")
    compare.add_argument("run_b", metavar="RUN_B", help="after: a run id under --out, or a run folder")
    compare.add_argument("--format", choices=("html", "md"), default="html")
    add_report_paths(compare)
    return parser


def run_settings(args: argparse.Namespace) -> RunSettings:
    """RunSettings from the parsed options; an option not given keeps its field's default."""
    given = {name: value for name, value in vars(args).items() if name in SETTINGS and value not in (None, ())}
    dataset = given.pop("datasets", None)
    if given.get("repeats") == "auto":
        given.update(repeats=AUTO_REPEATS_MAX, auto_repeats=True)
    if _env_flag("BENCH_NO_DOWNLOAD"):
        given["download"] = False
    settings = RunSettings(**given)
    return replace(settings, datasets=parse_datasets(dataset, settings.tasks)) if dataset else settings


def cmd_list(args, console: Console) -> int:
    for device in ("cpu", "cuda"):  # the CPU and the CUDA environments, apart
        table = Table(title=f"Frameworks: {device} environments")
        for column in ("framework", "available", "version", "environment", "why not"):
            table.add_column(column)
        for framework in FRAMEWORKS.values():
            interpreter = envs.interpreter_for(framework, {}, device)
            if interpreter is None:
                table.add_row(escape(framework.name), "[red]no[/]", "", str(envs.env_dir(framework, device)),
                              escape(f"environment not built: run `{envs.setup_command(framework.name, device)}`"))
                continue
            version, why_not = envs.probe(framework, interpreter.python, device=device)
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
    device = args.device
    if device == "cuda":
        envs.require_cuda_driver([FRAMEWORKS[name] for name in names])
    for name in names:
        framework = FRAMEWORKS[name]
        requirements = framework.requirements_for(device)
        with console.status(f"{name}: building {envs.env_dir(framework, device)} from "
                            f"{requirements.relative_to(requirements.parents[1])}"):
            interpreter = envs.build_env(framework, log=lambda line: None, device=device)
        version, why_not = envs.probe(framework, interpreter.python, device=device)
        console.print(escape(f"{name}: ") + (f"ready, {framework.distribution_for(device)} {version} "
                                             f"({interpreter.python})"
                                             if version else f"[red]built but does not import: {why_not}[/]"))
    return 0


def cmd_run(args, console: Console) -> int:
    from bench import session

    settings = run_settings(args)
    overrides = envs.parse_python_overrides(args.python, resolve_framework)
    if os.environ.get("BENCH_DATA"):
        datasets.require_folder("$BENCH_DATA", os.environ["BENCH_DATA"])
    _require_writable("--out", args.out)
    _require_writable("--reports", args.reports)
    if args.address and args.executor != "ray":
        raise UserError(f"--address {args.address} names a Ray cluster: add --executor ray")
    if args.executor == "ray":
        from bench import cluster

        cluster.import_ray()  # one line, before anything runs, where the extra is missing
    try:
        with _stop_signals_interrupt():
            store, records = session.run(settings, overrides, args.out, args.resume, console, args.executor,
                                         args.address)
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

    settings = run_settings(args)
    if settings.frameworks:  # the ones named, compared against the reference
        settings = replace(settings, frameworks=(parity.REFERENCE, *settings.frameworks))
    overrides = envs.parse_python_overrides(args.python, resolve_framework)
    _require_writable("--out", args.out)
    interpreters = session.available_frameworks(settings, overrides, console.print)
    if parity.REFERENCE not in interpreters:
        raise UserError(f"parity compares against {parity.REFERENCE}: run `bench setup {parity.REFERENCE}` first")
    limits = "; ".join(f"{precision}: " + ", ".join(f"{kind} {limit:g}" for kind, limit in
                                                    parity.TOLERANCES[precision].items())
                       for precision in settings.precisions)
    table = Table(title=f"Parity against {parity.REFERENCE} in fp32: {parity.PARITY_STEPS} steps, dropout off; "
                        f"largest relative difference allowed: {limits}")
    for column in ("framework", "task", "precision", "loss", "kernels", "biases", "parameters", "result"):
        table.add_column(column)
    rows = parity.run_parity(interpreters, settings.tasks, settings.seed, settings.timeout_s, settings.precisions,
                             on_row=lambda row: console.print(escape(f"{row.framework} {row.task} {row.precision}: "
                                                                     f"{row.status}")))
    for row in rows:
        style = "green" if row.status == "pass" else "bold red"
        found, worst = row.differences or {}, row.worst or {}
        table.add_row(escape(row.framework), row.task, row.precision, _sci(found.get("loss")),
                      *(_sci(found.get(kind)) + (f" {worst[kind]}" if kind in worst else "")
                        for kind in ("kernel", "bias")),
                      f"{row.parameter_count:,}" if row.parameter_count else "—",
                      f"[{style}]{row.status}[/]" + escape(f" {row.reason}" if row.reason else ""))
    console.print(table)
    from bench import stored

    saved = stored.PARITY.save(args.out, reference=parity.REFERENCE, steps=parity.PARITY_STEPS, seed=settings.seed,
                               tolerances={p: parity.TOLERANCES[p] for p in settings.precisions},
                               rows=[asdict(row) for row in rows])
    console.print(escape(f"parity table: {saved} (shown by `bench report`)"), highlight=False)
    # a framework that cannot run a 16-bit recipe here is not a parity failure; one that cannot run float32 is
    return 0 if all(row.status == "pass" or (row.status == "unsupported" and row.precision != "fp32")
                    for row in rows) else 1


def cmd_capacity(args, console: Console) -> int:
    from bench import capacity, session

    settings = run_settings(args)
    overrides = envs.parse_python_overrides(args.python, resolve_framework)
    _require_writable("--out", args.out)
    device = session.resolve_device(settings.device)
    cap = None
    if device == "cpu":
        cap = args.memory_cap or capacity.default_cap_bytes()
    interpreters = session.available_frameworks(settings, overrides, console.print, device)
    where = f"a memory cap of {cap / 2**20:,.0f} MiB" if cap else "the GPU's own memory"
    console.print(escape(f"capacity on {device} ({where}), mode {args.capacity_mode}: doubling from "
                         f"{args.start_batch or 'the task batch'} up to {args.max_batch}, then bisecting; "
                         f"{capacity.CAPACITY_STEPS} training steps per try, each in a fresh process"),
                  highlight=False)
    results = []
    for task, precision, (name, interpreter) in itertools.product(settings.tasks, settings.precisions,
                                                                  interpreters.items()):
        def report(attempt, name=name, task=task):
            console.print(escape(f"{name} {task} batch {attempt.batch_size}: {attempt.outcome}"
                                 + (f", {attempt.peak_bytes / 2**20:,.0f} MiB" if attempt.peak_bytes else "")
                                 + (f" — {attempt.reason}" if attempt.outcome != capacity.FITS else "")),
                          highlight=False)
        limit = FRAMEWORKS[name].limit_for(device, args.capacity_mode, interpreter.origin, precision)
        if limit is not None:
            console.print(escape(f"{name} {task} {precision}: unsupported — {limit.why}"), highlight=False)
            continue
        results.append(capacity.find_capacity(
            name, task, interpreter, device=device, precision=precision, mode=args.capacity_mode,
            start=args.start_batch or TASKS[task].batch_size, max_batch=args.max_batch, cap_bytes=cap,
            max_tries=args.max_tries, seed=settings.seed, timeout_s=settings.timeout_s, on_try=report))
    table = Table(title=f"Largest training batch on {device} ({where})")
    for column in ("framework", "task", "precision", "largest batch", "too big", "memory per sample", "tries",
                   "verdict"):
        table.add_column(column)
    for found in results:
        per_sample = found.bytes_per_sample
        table.add_row(escape(found.framework), found.task, found.precision, f"{found.largest or '—'}",
                      f"{found.smallest_too_big or '—'}",
                      f"{per_sample / 2**10:,.1f} KiB" if per_sample is not None else "—", str(len(found.tries)),
                      escape(found.verdict))
    console.print(table)
    saved = capacity.save(args.out, results, mode=args.capacity_mode)
    console.print(escape(f"capacity table: {saved} (shown by `bench report`)"), highlight=False)
    return 1 if any(found.failure for found in results) else 0


def cmd_report(args, console: Console) -> int:
    from bench.report import output

    path = output.write(args.runs, args.out, args.reports, args.format, args.output, args.pool_machines)
    console.print(escape(f"report: {path}"), highlight=False)
    return 0


def cmd_compare(args, console: Console) -> int:
    from bench.report import compare

    path, comparison = compare.write(args.run_a, args.run_b, args.out, args.reports, args.format, args.output,
                                     args.pool_machines)
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


COMMANDS = {"list": cmd_list, "setup": cmd_setup, "run": cmd_run, "parity": cmd_parity, "capacity": cmd_capacity,
            "report": cmd_report,
            "compare": cmd_compare}


def main(argv: list[str] | None = None) -> int:
    console = Console() if sys.stdout.isatty() else Console(width=160)  # logs and CI: no wrapping at 80
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args, console)
    except UserError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
