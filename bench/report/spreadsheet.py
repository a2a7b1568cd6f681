"""The report as CSV for spreadsheets: one row per framework and mode in each setting, raw numbers (not rounded,
bytes not MiB), the default-weight score and rank (no rank for a group measured under contention, said in
`contention`), whether that ranking is provisional, who leads what, and in `notes` why a value is empty.

An empty cell means "no value", never 0. Text that a spreadsheet would run as a formula (starting with =, +, -,
@, tab or carriage return) is prefixed with an apostrophe.
"""
from __future__ import annotations

import csv
import io

from bench import catalogue
from bench.report import choose, content, html


def _metric_columns(metric: catalogue.Metric) -> tuple[str, ...]:
    """A metric's CSV columns: its median, and for a median with an interval the interval's bounds and coverage."""
    return (metric.name, *metric.interval_fields[:3]) if metric.summary == "median" else (metric.name,)


COLUMNS = ("task", "dataset", "device", "precision", "batch_size", "batch_outside_spec", "synthetic_data",
           "framework", "mode", "version", "status", "ok_repeats",
           "repeats", *(column for metric in catalogue.SPREADSHEET for column in _metric_columns(metric)),
           "score_default_weights", "rank_default_weights", "provisional",
           *(f"score_{key}" for key in choose.CRITERION_KEYS), "contention", "leads", "notes")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value):
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def render(report: content.Report) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for setting in report.settings:
        ranks = {entry.label: (rank, entry) for rank, entry in html.ranked(setting.ranking)}
        leads: dict[str, list[str]] = {}
        for lead in setting.headline:
            leads.setdefault(lead.leader, []).append(lead.title)
            for label in lead.tied:
                leads.setdefault(label, []).append(f"{lead.title} (tied)")
        for group, row in zip(setting.groups, setting.rows):
            rank, entry = ranks.get(group.label, (None, None))
            record = {
                "task": group.task, "dataset": group.dataset, "device": group.device,
                "precision": group.precision, "batch_size": group.batch_size,
                "batch_outside_spec": group.outside_spec, "synthetic_data": setting.synthetic, "framework": group.framework, "mode": group.mode,
                "version": row["framework"].detail, "status": row["status"].text, "ok_repeats": len(group.ok),
                "repeats": len(group.records), "score_default_weights": entry.total if entry else None,
                "rank_default_weights": rank, "provisional": setting.provisional, "contention": group.contention,
                "leads": "; ".join(leads.get(group.label, [])),
            }
            for metric in catalogue.SPREADSHEET:
                record.update(_metric_cells(group, metric))
            for key in choose.CRITERION_KEYS:
                record[f"score_{key}"] = entry.scores.get(key) if entry else None
            record["notes"] = _notes(row)
            writer.writerow({key: _safe(value) for key, value in record.items()})
    return buffer.getvalue()


def _notes(row: dict[str, content.Value]) -> str:
    """Why a value is empty, and where one was measured differently from its column (older memory records)."""
    notes = []
    for key, value in row.items():
        heading = content.COLUMNS[key][0]
        if key not in ("framework", "status") and value.number is None and value.note:
            notes.append(f"{heading}: {value.note}")
        elif key == catalogue.HOST_MEMORY.name and value.detail:
            notes.append(f"{heading}: {value.detail}")
    return "; ".join(notes)


def _metric_cells(group, metric: catalogue.Metric) -> dict:
    """The metric's raw median (host memory: the tree's peak, else the process's), with its interval where it has
    one; None where not measured."""
    if metric.summary == "median":
        found = content.interval(group, metric)
        values = (found.median, found.low, found.high, found.level) if found else (None,) * 4
        return dict(zip(_metric_columns(metric), values))
    return {metric.name: content.metric_value(group, metric).number}
