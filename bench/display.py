"""What the user sees while a run goes: a live progress line per cell, and a summary table at the end."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench import aggregate, catalogue, stats
from bench.catalogue import ACCURACY, HOST_MEMORY, PROCESS_MEMORY
from bench.runner import Cell

STATUS_STYLE = {"ok": "green", "failed": "bold red", "timeout": "bold red", "unsupported": "yellow",
                "skipped": "dim"}


def fmt(value, spec: str = ".3g", missing: str = "—") -> str:
    return missing if value is None else format(value, spec)


class RunDisplay:
    """Progress for a terminal (rich live bar) or plain lines for logs and CI."""

    def __init__(self, console: Console, total: int):
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, disable=not self.live)
        self.bar = self.progress.add_task("starting", total=total)
        self.cell: Cell | None = None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False)

    def cell_started(self, index: int, total: int, cell: Cell) -> None:
        self.cell = cell
        label = escape(f"[{index}/{total}] {cell.cell_id}")
        self.progress.update(self.bar, description=label)
        if not self.live:
            self.note(f"{label}: started")

    def cell_skipped(self, index: int, total: int, cell: Cell) -> None:
        """--repeats auto: this repeat is not needed, the cell's interval is already narrow (or it failed)."""
        self.progress.advance(self.bar)
        self.note(escape(f"[{index}/{total}] {cell.cell_id}: not needed (--repeats auto: settled)"))

    def event(self, event: dict) -> None:
        if event.get("event") != "epoch" or self.cell is None:
            return
        text = escape(f"{self.cell.cell_id}: epoch {event['epoch']}/{event['epochs']}, "
                f"{fmt(event.get('samples_per_s'), ',.0f')} samples/s, loss {fmt(event.get('train_loss'), '.4f')}"
                + (f", test accuracy {event['test_accuracy']:.4f}" if event.get("test_accuracy") is not None else ""))
        if self.live:
            self.progress.update(self.bar, description=text)
        else:
            self.note(text)

    def cell_finished(self, record: dict) -> None:
        self.progress.advance(self.bar)
        style = STATUS_STYLE.get(record["status"], "")
        reason = f" — {record['reason']}" if record.get("reason") else ""
        self.console.print(f"[{style}]{record['status']:>11}[/] " + escape(f"{record['cell_id']} "
                           f"({record['wall_time_s']:.1f} s){reason}"), highlight=False)
        contention = record.get("contention") or {}
        if contention.get("flagged"):
            self.console.print("[bold yellow]  ⚠ measured under contention:[/] " + escape(contention["reason"]),
                               highlight=False)


def summary_table(records: list[dict]) -> Table:
    """One row per cell: its identity and status, then the catalogue's terminal metrics (catalogue.TERMINAL)."""
    table = Table(title="Results", caption="accuracy n/a: synthetic data has no accuracy; train samples/s: "
                  "steady-state median [95 % interval], warm-up excluded (first step shown apart); "
                  "latency: batch 1, median; peak host: the cell's processes (PSS, else RSS); "
                  "⚠ contended: other processes took CPU while it trained, so it is not ranked")
    variants = _variant_columns(records)
    for column in ("framework", "task", "dataset", "mode", *variants, "rep", "status"):
        table.add_column(column)
    for metric in catalogue.TERMINAL:
        table.add_column(metric.heading, justify="right")
    table.add_column("wall s", justify="right")
    for record in sorted(records, key=lambda r: (r["framework"], r["task"], r["mode"], r["precision"],
                                                  r["batch_size"], r["repeat"])):
        metrics = record.get("metrics") or {}
        contended = " [yellow]⚠ contended[/]" if (record.get("contention") or {}).get("flagged") else ""
        table.add_row(
            escape(f"{record['framework']} {record.get('framework_version') or ''}".strip()), record["task"],
            record["dataset"], record["mode"], *(str(record[name]) for name in variants.values()),
            str(record["repeat"]),
            f"[{STATUS_STYLE.get(record['status'], '')}]{record['status']}[/]{contended}",
            *(escape(_cell_text(record, metric)) for metric in catalogue.TERMINAL), f"{record['wall_time_s']:.1f}")
    return table


def _variant_columns(records: list[dict]) -> dict[str, str]:
    """{column: record field} of the precision and batch-size axes, shown where a record leaves the default."""
    shown = {}
    if any(record["precision"] != "fp32" for record in records):
        shown["precision"] = "precision"
    if any(record["batch_outside_spec"] for record in records):  # a sweep, or a batch other than the spec's
        shown["batch"] = "batch_size"
    return shown


def _cell_text(record: dict, metric: catalogue.Metric) -> str:
    """One cell's value as printed: "n/a" for accuracy on synthetic data, the interval after a median with one,
    the process's own peak for host memory in records from before the tree was sampled."""
    metrics = record.get("metrics") or {}
    if metric is ACCURACY and record["synthetic_data"]:
        return "n/a"
    if metric is HOST_MEMORY and metrics.get(metric.name) is None:
        metric = PROCESS_MEMORY
    text = metric.text(metrics.get(metric.name))
    if metric.summary == "median" and (metrics.get(metric.interval_fields[2]) or 0) >= stats.CONFIDENCE:
        low, high = (metrics[name] for name in metric.interval_fields[:2])
        text += f" [{metric.text(low)}–{metric.text(high)}]"
    return text


def print_headlines(console: Console, records: list[dict]) -> None:
    """Per task, dataset and device: who leads each criterion, ties where the difference is not significant, who
    was measured under contention; provisional while a group has fewer than 3 successful repeats."""
    by_setting: dict[tuple, list] = {}
    for group in aggregate.group(records):
        by_setting.setdefault(group.setting, []).append(group)
    machines_apart = len({group.machine for groups in by_setting.values() for group in groups}) > 1
    for groups in by_setting.values():
        lines = aggregate.headline(groups)
        if lines and len(groups) > 1:
            caveat = aggregate.provisional(groups)
            title = groups[0].setting_title + (f" on {groups[0].machine}" if machines_apart else "")
            console.print(escape(title + (f" — {caveat}" if caveat else "") + ":"),
                          style="bold", highlight=False)
            for line in lines:
                console.print(escape(f"  {line}"), highlight=False)
