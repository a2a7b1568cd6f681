"""From cell records to answers: cells grouped across repeats, and who leads each criterion — with ties.

A group is one (task, dataset, device, precision, batch size, framework, mode) over its repeats. Its evidence for a criterion is the
per-repeat values when it has two or more successful repeats (the honest unit of replication: a fresh process
each), else the one cell's own samples (throughput windows, single-sample latencies) or its single value.
`bench.stats.compare` decides every "better than"; the terminal summary and the report both use `leaders`.

A group measured under contention (another process took CPU cores while one of its repeats trained) is never named
leader or tied: its numbers measure the machine's other work as much as the framework. Rankings built from fewer
than FIRM_REPEATS successful repeats of a group are provisional: one process's numbers can be an outlier.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench import stats
from bench.catalogue import CRITERIA, SPEC_ONLY, Metric


FIRM_REPEATS = 3  # successful repeats per group from which a ranking is no longer provisional


@dataclass
class Group:
    task: str
    dataset: str
    device: str
    precision: str
    batch_size: int
    machine: str  # machine_type: rankings never mix machine types
    framework: str
    mode: str
    records: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.framework} {self.mode}"

    @property
    def setting(self) -> tuple:
        """What groups compared with each other share: frameworks are ranked at one precision and one batch size."""
        return self.task, self.dataset, self.device, self.precision, self.batch_size, self.machine

    @property
    def setting_title(self) -> str:
        """The setting as people read it; the precision and batch only where they are not fp32 and the spec's."""
        variant = "".join([f", {self.precision}" if self.precision != "fp32" else "",
                           f", batch {self.batch_size} outside the spec" if self.outside_spec else ""])
        return f"{self.task} on {self.dataset} ({self.device}{variant})"

    @property
    def ok(self) -> list[dict]:
        return [record for record in self.records if record["status"] == "ok"]

    @property
    def contended(self) -> list[dict]:
        """The contention measurements of the successful repeats flagged as contended (records from before
        contention was measured have none, and are never flagged)."""
        return [record["contention"] for record in self.ok if (record.get("contention") or {}).get("flagged")]

    @property
    def other_cores(self) -> float | None:
        """The most CPU cores other processes used while a flagged repeat trained."""
        return max((entry.get("other_cpu_cores") or 0.0 for entry in self.contended), default=None)

    @property
    def contention(self) -> str | None:
        """Why this group is not ranked, in the records' words; None when it was not contended."""
        if not self.contended:
            return None
        reasons = sorted({entry["reason"] for entry in self.contended if entry.get("reason")})
        return "; ".join(reasons) or f"other processes used {self.other_cores:.1f} CPU cores while it trained"

    @property
    def outside_spec(self) -> bool:
        """Trained at a batch size other than the spec's (a sweep): its accuracy is not compared (SPEC_ONLY)."""
        return any(record.get("batch_outside_spec") for record in self.records)

    def values(self, name: str) -> list[float]:
        """The metric's value in each successful repeat (nulls left out); none of a SPEC_ONLY metric outside the
        spec."""
        if self.outside_spec and any(metric.name == name for metric in SPEC_ONLY):
            return []
        return [record["metrics"][name] for record in self.ok if record["metrics"].get(name) is not None]

    def summary(self, name: str) -> stats.Summary | None:
        """Median and confidence interval of the metric across repeats."""
        values = self.values(name)
        return stats.summarize(values) if values else None

    def central(self, name: str) -> float | None:
        values = self.values(name)
        return float(np.median(values)) if values else None

    def evidence(self, metric: Metric) -> stats.Measure:
        values = self.values(metric.name)
        if len(values) == 1 and metric.samples:
            values = self.ok[0]["metrics"].get(metric.samples) or values
        trials = self.ok[0].get("test_samples") if metric.proportion and self.ok else None
        return stats.Measure(tuple(values), metric.higher_is_better, trials=trials, noise=metric.noise)


def machine_type(record: dict) -> str:
    """What a record's cell ran on, as rankings keep apart: the name of its GPU for a GPU cell (the one it was given
    where CUDA_VISIBLE_DEVICES names it), else its CPU model. A record with no node ran on its run's machine
    (bench.report.content fills it in from the manifest)."""
    node = record.get("node") or {}
    gpus = node.get("gpus") or []
    if record["device"] == "cuda" and gpus:
        visible = (node.get("gpus_visible") or "").split(",")[0].strip()
        chosen = next((gpu for index, gpu in enumerate(gpus) if visible in (str(index), gpu.get("uuid"))), gpus[0])
        return chosen.get("name") or "unknown GPU"
    return node.get("cpu_model") or "unknown machine"


def group(records: list[dict]) -> list[Group]:
    groups: dict[tuple, Group] = {}
    for record in records:
        key = (record["task"], record["dataset"], record["device"], record["precision"], record["batch_size"],
               machine_type(record), record["framework"], record["mode"])
        groups.setdefault(key, Group(*key)).records.append(record)
    return list(groups.values())


@dataclass(frozen=True)
class Leadership:
    criterion: Metric
    leader: Group
    tied: list[Group]  # not significantly different from the leader
    verdicts: dict[str, stats.Verdict]  # leader against every other contender, by label


def leaders(groups: list[Group], criterion: Metric) -> Leadership | None:
    """The best uncontended group on CRITERION among those that measured it, and those it does not beat
    significantly."""
    contenders = [g for g in groups if g.central(criterion.name) is not None and g.contention is None]
    if not contenders:
        return None
    sign = 1 if criterion.higher_is_better else -1
    best = max(contenders, key=lambda g: sign * g.central(criterion.name))
    verdicts = {g.label: stats.compare(best.evidence(criterion), g.evidence(criterion))
                for g in contenders if g is not best}
    tied = [g for g in contenders if g is not best and verdicts[g.label].winner == "tie"]
    return Leadership(criterion, best, tied, verdicts)


def headline(groups: list[Group]) -> list[str]:
    """One sentence per criterion for the groups of one task, dataset and device."""
    lines = []
    for criterion in CRITERIA:
        lead = leaders(groups, criterion)
        if lead is None or not lead.verdicts:  # a leader needs at least one contender that measured it too
            continue
        sentence = f"{criterion.criterion}: {lead.leader.label}"
        if lead.tied:
            sentence += " — tied with " + ", ".join(g.label for g in lead.tied) + " (not significant at 95 %)"
        lines.append(sentence)
    return lines + list(filter(None, [contention_line(groups)]))


def contention_line(groups: list[Group]) -> str | None:
    """The headline's note on the groups left out of every lead because they were measured under contention."""
    contended = [g for g in groups if g.contention is not None]
    if not contended:
        return None
    return "measured under contention: not ranked — " + ", ".join(
        f"{g.label} ({g.other_cores:.1f} other CPU cores)" for g in contended)


def provisional(groups: list[Group]) -> str | None:
    """The caveat on a ranking of GROUPS whose fewest successful repeats is below FIRM_REPEATS, else None."""
    fewest = min((len(g.ok) for g in groups if g.ok), default=FIRM_REPEATS)
    if fewest >= FIRM_REPEATS:
        return None
    return (f"provisional ({fewest} repeat{'' if fewest == 1 else 's'}; {FIRM_REPEATS} or more make it firm — "
            "`--repeats 3` or `--repeats auto`)")
