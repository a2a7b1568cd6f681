"""What a report says, computed once from stored results and rendered by every format (HTML, Markdown, CSV).

Everything comes from run folders (records and manifests), never from running anything. Leaders and ties come
from `bench.aggregate.leaders`, so the page and the terminal headline agree. A missing number stays missing:
it is shown as "—" with the reason the record gives, never as 0, and a failed cell never becomes a zero. A cell
file that cannot be read is listed with why, and the report is built from the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench import aggregate, catalogue, stats, stored
from bench.catalogue import (ACCURACY, GPU_MEMORY, HOST_MEMORY, LATENCY, LATENCY_P99, PROCESS_MEMORY,
                             TIME_TO_ACCURACY, TRAIN_SPEED, Metric)
from bench.report import choose
from bench.results import RunStore, run_folder
from frameworks.spec import PRECISIONS, TASKS

MISSING = "—"


@dataclass(frozen=True)
class Value:
    """One displayed number: its text, the raw number (sorting, CSV), a secondary line and a tooltip."""
    text: str
    number: float | None = None
    detail: str = ""  # e.g. the confidence interval, shown small under the number
    note: str = ""  # why it is missing, or how it was measured


@dataclass(frozen=True)
class Run:
    run_id: str
    folder: Path
    manifest: dict


@dataclass(frozen=True)
class Lead:
    """One headline sentence: who leads a criterion and who is not significantly behind."""
    title: str
    leader: str
    value: str
    tied: tuple[str, ...]


@dataclass
class Setting:
    """One (task, dataset, device, precision, batch size): the unit every comparison is made within. Frameworks are
    ranked against each other at one precision and one batch size, never across them."""
    task: str
    dataset: str
    device: str
    precision: str
    batch_size: int
    machine: str
    groups: list[aggregate.Group]
    headline: list[Lead] = field(default_factory=list)
    rows: list[dict[str, Value]] = field(default_factory=list)  # leaderboard, one per group, keyed by column
    ranking: choose.Ranking | None = None
    machines_apart: bool = False  # the report holds several machine types: the title names this one's

    @property
    def outside_spec(self) -> bool:
        return any(group.outside_spec for group in self.groups)

    @property
    def title(self) -> str:
        named = self.machines_apart or self.machine == POOLED
        return self.groups[0].setting_title + (f" on {self.machine}" if named else "")

    @property
    def anchor(self) -> str:
        """task-dataset-device, then the precision and batch where they are not fp32 and the spec's."""
        variant = "".join([f"-{self.precision}" if self.precision != "fp32" else "",
                           f"-b{self.batch_size}" if self.outside_spec else ""])
        machine = "-" + "".join(c if c.isalnum() else "-" for c in self.machine.lower()) if self.machines_apart else ""
        return f"{self.task}-{self.dataset}-{self.device}{variant}{machine}"

    @property
    def synthetic(self) -> bool:
        return any(record["synthetic_data"] for g in self.groups for record in g.records)

    @property
    def contention(self) -> dict[str, str]:
        """Why each group measured under contention is flagged, by label."""
        return {g.label: g.contention for g in self.groups if g.contention is not None}

    @property
    def contention_line(self) -> str | None:
        return aggregate.contention_line(self.groups)

    @property
    def provisional(self) -> str | None:
        """The caveat on this setting's headline and ranking while a group has too few repeats."""
        return aggregate.provisional(self.groups)

    @property
    def columns(self) -> dict[str, tuple[str, str]]:
        """The leaderboard's columns here: GPU memory only on a GPU; energy only where a device had a counter."""
        hidden = {GPU_MEMORY.name} if self.device != "cuda" else set()
        hidden |= {metric.name for metric in catalogue.WHERE_MEASURED
                   if not any(group.values(metric.name) for group in self.groups)}
        return {key: column for key, column in COLUMNS.items() if key not in hidden}


@dataclass
class Report:
    runs: list[Run]
    records: list[dict]
    settings: list[Setting]
    parity: dict | None
    generated_at: str
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of cell files that could not be read
    capacity: dict | None = None  # `bench capacity`'s stored table beside the runs

    @property
    def synthetic(self) -> bool:
        return any(record["synthetic_data"] for record in self.records)

    @property
    def sweeps(self) -> list[tuple[str, list[aggregate.Group]]]:
        """Batch-size sweeps: (title, groups) for each task, dataset, device and precision measured at more than
        one batch size."""
        found: dict[tuple, list[aggregate.Group]] = {}
        for setting in self.settings:
            key = (*setting.groups[0].setting[:4], setting.machine)
            found.setdefault(key, []).extend(setting.groups)
        apart = any(setting.machines_apart for setting in self.settings)
        return [(f"{groups[0].task} on {groups[0].dataset} ({groups[0].device}, {groups[0].precision})"
                 + (f" on {groups[0].machine}" if apart else ""), groups)
                for groups in found.values() if len({g.batch_size for g in groups}) > 1]

    @property
    def across_machines(self) -> list[dict]:
        """With several machine types (a cluster's nodes): per task, dataset, device, precision and batch, each
        framework's training speed on each machine type side by side (medians; rankings stay per machine type)."""
        if not any(setting.machines_apart for setting in self.settings):
            return []
        tables: dict[tuple, dict] = {}
        for setting in self.settings:
            table = tables.setdefault(setting.groups[0].setting[:5], {
                "title": setting.groups[0].setting_title, "machines": [], "rows": {}})
            table["machines"].append(setting.machine)
            for group in setting.groups:
                table["rows"].setdefault(group.label, {})[setting.machine] = interval_value(group, TRAIN_SPEED)
        return [{**table, "rows": [(label, [values.get(machine, Value(MISSING, None)) for machine in
                                            table["machines"]]) for label, values in table["rows"].items()]}
                for table in tables.values() if len(table["machines"]) > 1]

    @property
    def contended(self) -> list[str]:
        """Titles of the settings with a group measured under contention."""
        return [setting.title for setting in self.settings if setting.contention]

    @property
    def executions(self) -> list[dict[str, str]]:
        """What actually ran per framework and mode, from the records' `execution` (older records: not recorded)."""
        found: dict[tuple[str, str], list[dict]] = {}
        for record in self.records:
            found.setdefault((record["framework"], record["mode"]), []).append(record.get("execution") or {})
        return [{"framework": framework, "mode": mode, "meaning": MODES.get(mode, ""),
                 **{key: " / ".join(sorted({e[key] for e in executions if e.get(key)})) or MISSING
                    for key in ("runs_as", "optimizer_update")}}
                for (framework, mode), executions in sorted(found.items())]

    @property
    def failures(self) -> list[dict]:
        return [record for record in self.records if record["status"] != "ok"]

    @property
    def frameworks(self) -> list[str]:
        return sorted({record["framework"] for record in self.records})

    @property
    def tasks(self) -> list[str]:
        return sorted({record["task"] for record in self.records}, key=task_order)

    def frameworks_of(self, task: str) -> list[str]:
        """Registry names of the frameworks that ran TASK (a version suffix added for combined runs removed)."""
        return sorted({record["framework"].split(" ")[0] for record in self.records if record["task"] == task})

    @property
    def title(self) -> str:
        return "Benchmark report: " + ", ".join(run.run_id for run in self.runs)


#: What each mode asks of a framework; the "what ran" table says what that turned out to be.
MODES = {"native": "the way the framework's own documentation recommends running it",
         "eager": "without a graph compiler, op by op where the framework allows it",
         "compiled": "through the framework's graph compiler"}

#: Leaderboard columns: key -> (heading, what it means), in the table's order: framework, status, then the
#: catalogue's leaderboard metrics (keyed by metric name).
COLUMNS = {
    "framework": ("framework", "framework and mode (version)"),
    "status": ("status", "successful repeats of all repeats"),
    **{metric.name: (metric.heading, metric.help) for metric in catalogue.LEADERBOARD},
}


#: the machine type every record gets with `--pool-machines`
POOLED = "all machine types, pooled"


def load(runs: list[str], root: Path, pool_machines: bool = False) -> Report:
    """The report of one or more runs, each a run id under ROOT or a run folder. Records of several machine types
    are ranked per machine type unless POOL_MACHINES (`--pool-machines`: one ranking, said in every title)."""
    loaded, records, skipped = [], [], []
    for run in runs:
        folder = run_folder(run, root)
        store = RunStore.open(folder.parent, folder.name)
        loaded.append(Run(store.run_id, store.folder, store.manifest()))
        readable, unreadable = store.readable_cells()
        machine = store.manifest().get("machine") or {}
        records += [{**record, "node": {"cpu_model": POOLED, "gpus": []}} if pool_machines else
                    record if record.get("node") else {**record, "node": machine} for record in readable]
        skipped += [(str(path), why) for path, why in unreadable]
    records = _versions_apart(records)
    parity, capacity = (next(filter(None, (table.load(run.folder.parent) for run in loaded)), None)
                        for table in (stored.PARITY, stored.CAPACITY))
    return Report(loaded, records, settings_of(records), parity,
                  datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), skipped, capacity)


def _versions_apart(records: list[dict]) -> list[dict]:
    """When combined runs hold two versions of one framework, each version is its own row, never pooled."""
    versions: dict[str, set] = {}
    for record in records:
        if record["status"] == "ok":
            versions.setdefault(record["framework"], set()).add(record.get("framework_version"))
    split = {name for name, found in versions.items() if len(found) > 1}
    return [{**record, "framework": f"{record['framework']} {record.get('framework_version')}"}
            if record["framework"] in split else record for record in records]


def settings_of(records: list[dict]) -> list[Setting]:
    by_key: dict[tuple, list[aggregate.Group]] = {}
    for group in aggregate.group(records):
        by_key.setdefault(group.setting, []).append(group)
    settings = []
    machines_apart = len({key[-1] for key in by_key}) > 1
    for key, groups in sorted(by_key.items(), key=_setting_order):
        groups.sort(key=lambda g: (g.framework, g.mode))
        setting = Setting(*key, groups, machines_apart=machines_apart)
        setting.headline = headline(groups)
        setting.rows = [leaderboard_row(g) for g in groups]
        setting.ranking = choose.rank(groups, setting.device)
        settings.append(setting)
    return settings


def task_order(task: str) -> tuple[int, str]:
    """Tasks in the spec's order (the MLP first), unknown ones after."""
    return (list(TASKS).index(task) if task in TASKS else len(TASKS)), task


def _setting_order(item) -> tuple:
    """Tasks in the spec's order, real data before synthetic; then device, precision (as PRECISIONS) and batch."""
    (task, dataset, device, precision, batch_size, machine), groups = item
    return (*task_order(task), dataset == "synthetic", dataset, device, PRECISIONS.index(precision),
            any(group.outside_spec for group in groups), batch_size, machine)


def headline(groups: list[aggregate.Group]) -> list[Lead]:
    leads = []
    for criterion in catalogue.CRITERIA:
        lead = aggregate.leaders(groups, criterion)
        if lead is not None and lead.verdicts:  # a leader among two or more that measured it
            leads.append(Lead(criterion.criterion, lead.leader.label,
                              criterion.with_unit(lead.leader.central(criterion.name)),
                              tuple(g.label for g in lead.tied)))
    return leads


def leaderboard_row(group: aggregate.Group) -> dict[str, Value]:
    version = next((r.get("framework_version") for r in group.records if r.get("framework_version")), None)
    return {"framework": Value(group.label, None, version or "", f"version {version}" if version else ""),
            "status": status_value(group),
            **{metric.name: metric_value(group, metric) for metric in catalogue.LEADERBOARD}}


def status_value(group: aggregate.Group) -> Value:
    ok, total = len(group.ok), len(group.records)
    if ok == total:
        return Value("ok" if total == 1 else f"ok ×{total}", 1.0)
    others = sorted({r["status"] for r in group.records if r["status"] != "ok"})
    text = "/".join(others) if ok == 0 else f"{ok} of {total} ok"
    return Value(text, ok / total, note="; ".join(f"repeat {r['repeat']}: {r['status']} — {r.get('reason')}"
                                                 for r in group.records if r["status"] != "ok"))


def metric_value(group: aggregate.Group, metric: Metric) -> Value:
    """The metric's median over successful repeats as printed, with its interval where it has one, or "—" and why
    there is none."""
    if metric is HOST_MEMORY:
        return host_memory_value(group)
    if metric.summary == "median":
        return interval_value(group, metric)
    return plain_value(group, metric)


def plain_value(group: aggregate.Group, metric: Metric) -> Value:
    """The median over successful repeats, its notes in the tooltip."""
    values = group.values(metric.name)
    if not values:
        return Value(MISSING, None, note=missing_reason(group, metric))
    median = group.central(metric.name)
    notes = [f"median of {len(values)} repeats" if len(values) > 1 else ""]
    if metric is LATENCY and group.central(LATENCY_P99.name) is not None:
        notes.append(f"p99 {LATENCY_P99.with_unit(group.central(LATENCY_P99.name))}")
    if metric.proportion:
        notes.append(f"on {group.ok[0].get('test_samples') or '?'} test samples")
    if metric.scale != 1:
        notes.append(f"{median / metric.scale:,.1f} {metric.unit}")
    return Value(metric.text(median), median, note="; ".join(filter(None, notes)))


def missing_reason(group: aggregate.Group, metric: Metric) -> str:
    if not group.ok:
        statuses = sorted({r["status"] for r in group.records})
        return f"no successful repeat ({', '.join(statuses)}): see Failures"
    if metric in (ACCURACY, TIME_TO_ACCURACY) and group.ok[0]["synthetic_data"]:
        return "synthetic data: no accuracy"
    if metric in catalogue.SPEC_ONLY and group.outside_spec:
        return (f"batch {group.batch_size}, outside the spec's {TASKS[group.task].batch_size}: accuracy recorded, "
                "not compared")
    reasons = {r["metrics"].get(metric.reason) for r in group.ok} if metric.reason else set()
    reasons.discard(None)
    return "; ".join(sorted(reasons)) or "not recorded"


def host_memory_value(group: aggregate.Group) -> Value:
    """The sampled peak of the cell's process tree, saying whether it summed PSS or RSS; records from before it was
    sampled have only the process's own high-water mark, shown and labelled as such."""
    if not group.values(HOST_MEMORY.name) and group.values(PROCESS_MEMORY.name):
        own = plain_value(group, PROCESS_MEMORY)
        return Value(own.text, own.number, "process only", "this record has no sampled peak of the process tree: "
                     "the process's own high-water mark (ru_maxrss)")
    tree = plain_value(group, HOST_MEMORY)
    if tree.number is None:
        return tree
    kinds = sorted({r["metrics"].get("peak_host_tree_kind") for r in group.ok} - {None})
    return Value(tree.text, tree.number, tree.detail, "; ".join(filter(None, [
        tree.note, f"summed {' and '.join(kind.upper() for kind in kinds)} of the process tree" if kinds else ""])))


@dataclass(frozen=True)
class Interval:
    median: float
    low: float | None
    high: float | None
    level: float  # exact coverage; below stats.CONFIDENCE it is the range
    basis: str  # what it was computed from


def interval(group: aggregate.Group, metric: Metric) -> Interval | None:
    """A median metric's value and interval: across repeats when there are two or more, else the one cell's own
    interval over its samples (the training speed's timing windows)."""
    values = group.values(metric.name)
    if not values:
        return None
    if len(values) > 1:
        summary = stats.summarize(values)
        return Interval(summary.median, summary.ci_low, summary.ci_high, summary.ci_level, f"{len(values)} repeats")
    metrics = group.ok[0]["metrics"]
    low, high, level, _ = (metrics.get(name) for name in metric.interval_fields)
    return Interval(values[0], low, high, level or 0.0,
                    f"{len(metrics.get(metric.samples) or [])} timing windows of one process")


def interval_value(group: aggregate.Group, metric: Metric) -> Value:
    found = interval(group, metric)
    if found is None:
        return Value(MISSING, None, note=missing_reason(group, metric))
    if found.low is None or found.high is None:
        return Value(metric.text(found.median), found.median, note="no interval recorded")
    kind = (f"{found.level:.0%} confidence interval" if found.level >= stats.CONFIDENCE
            else "range (too few values for a 95 % interval)")
    return Value(metric.text(found.median), found.median, f"{metric.text(found.low)}–{metric.text(found.high)}",
                 f"{kind} from {found.basis}")
