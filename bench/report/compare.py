"""`bench compare RUN_A RUN_B`: what changed from A to B — a new version of a framework, another machine, another
setting — flagging only what `bench.stats.compare` finds significant at 95 %, group against the same group
(task, dataset, device, precision, batch size, framework, mode) in the other run — and on the same machine type
when a run holds several (a cluster). Both runs are read with the report's loader.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench import aggregate, catalogue, stats
from bench.report import content, html, markdown, output

BETTER, WORSE, SAME = "better", "worse", "no significant change"


@dataclass(frozen=True)
class Change:
    setting: str
    label: str
    metric: str
    before: str
    after: str
    ratio: float | None  # after / before, of the central values
    verdict: str  # BETTER, WORSE or SAME (for B against A)
    p_value: float | None
    method: str


@dataclass
class Comparison:
    before: content.Run
    after: content.Run
    changes: list[Change] = field(default_factory=list)  # every comparison made, significant or not
    status_changes: list[tuple[str, str, str, str]] = field(default_factory=list)  # setting, label, A, B
    only_before: list[str] = field(default_factory=list)
    only_after: list[str] = field(default_factory=list)
    versions: list[tuple[str, str, str]] = field(default_factory=list)  # framework, version in A, in B

    @property
    def significant(self) -> list[Change]:
        return [change for change in self.changes if change.verdict != SAME]


def _groups(report: content.Report, by_machine: bool) -> dict[tuple, tuple[content.Setting, aggregate.Group]]:
    return {(g.task, g.dataset, g.device, g.precision, g.batch_size, g.machine if by_machine else None, g.framework,
             g.mode): (setting, g) for setting in report.settings for g in setting.groups}


def _versions(run: content.Run) -> dict[str, str]:
    return {name: info.get("version") or content.MISSING for name, info in (run.manifest.get("frameworks") or {}).items()}


def compare_runs(run_a: str, run_b: str, root: Path, pool_machines: bool = False) -> Comparison:
    before, after = content.load([run_a], root, pool_machines), content.load([run_b], root, pool_machines)
    for report in (before, after):
        output.say_skipped(report)
    comparison = Comparison(before.runs[0], after.runs[0])
    # Two runs on one machine type each: comparing them is comparing the machines (a new GPU, a new CPU), which
    # the titles say. Runs holding several machine types (a cluster): each machine type meets its own.
    by_machine = any(setting.machines_apart for setting in before.settings + after.settings)
    groups_a, groups_b = _groups(before, by_machine), _groups(after, by_machine)
    comparison.only_before = [f"{s.title}: {g.label}" for key, (s, g) in groups_a.items() if key not in groups_b]
    comparison.only_after = [f"{s.title}: {g.label}" for key, (s, g) in groups_b.items() if key not in groups_a]
    versions_a, versions_b = _versions(comparison.before), _versions(comparison.after)
    comparison.versions = [(name, versions_a[name], versions_b[name]) for name in versions_a
                           if name in versions_b and versions_a[name] != versions_b[name]]
    for key in (key for key in groups_a if key in groups_b):
        (setting, group_a), (_, group_b) = groups_a[key], groups_b[key]
        if bool(group_a.ok) != bool(group_b.ok):
            comparison.status_changes.append((setting.title, group_a.label, content.status_value(group_a).text,
                                              content.status_value(group_b).text))
        for criterion in catalogue.CRITERIA:
            evidence_a, evidence_b = group_a.evidence(criterion), group_b.evidence(criterion)
            if not evidence_a.values or not evidence_b.values:
                continue
            verdict = stats.compare(evidence_b, evidence_a)
            comparison.changes.append(Change(
                setting.title, group_a.label, criterion.heading,
                content.metric_value(group_a, criterion).text, content.metric_value(group_b, criterion).text,
                verdict.ratio, {"a": BETTER, "b": WORSE}.get(verdict.winner, SAME), verdict.p_value, verdict.method))
    return comparison


def render_html(comparison: Comparison) -> str:
    return html.templates().get_template("compare.html.j2").render(comparison=comparison, SAME=SAME,
                                                                           ratio=_ratio)


def render_markdown(comparison: Comparison) -> str:
    text = markdown.text
    out = [f"# What changed: {text(comparison.before.run_id)} → {text(comparison.after.run_id)}", "",
           f"{len(comparison.significant)} significant change(s) at 95 % (bench.stats.compare), "
           f"of {len(comparison.changes)} comparisons.", ""]
    if comparison.versions:
        out += ["## Versions", ""] + markdown.table(["framework", "before", "after"], comparison.versions)
    if comparison.status_changes:
        out += ["## Status", ""] + markdown.table(["setting", "framework", "before", "after"],
                                                  comparison.status_changes)
    out += ["## Significant changes", ""]
    out += markdown.table(["setting", "framework", "metric", "before", "after", "after / before", "verdict"],
                          [[c.setting, c.label, c.metric, c.before, c.after, _ratio(c.ratio), c.verdict]
                           for c in comparison.significant]) if comparison.significant else ["None.", ""]
    for title, items in (("Only in " + comparison.before.run_id, comparison.only_before),
                         ("Only in " + comparison.after.run_id, comparison.only_after)):
        if items:
            out += [f"## {text(title)}", ""] + [f"- {text(item)}" for item in items] + [""]
    return "\n".join(out)


def _ratio(ratio: float | None) -> str:
    return content.MISSING if ratio is None else f"{ratio:.3g}×"


def write(run_a: str, run_b: str, root: Path, reports: Path, fmt: str = "html",
          output: Path | None = None, pool_machines: bool = False) -> tuple[Path, Comparison]:
    comparison = compare_runs(run_a, run_b, root, pool_machines)
    path = Path(output) if output else (Path(reports) /
                                        f"compare-{comparison.before.run_id}-vs-{comparison.after.run_id}.{fmt}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(comparison) if fmt == "html" else render_markdown(comparison), encoding="utf-8")
    return path, comparison
