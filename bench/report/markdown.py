"""The report as GitHub-flavoured Markdown: the same content as the HTML page, with the charts as SVG files in a
folder beside it and the ranking under the default weights.

Every string from results goes through `cell` or `text`, which escape what Markdown or GitHub's HTML would
interpret (`<`, `>`, `&`, `|`, backticks, emphasis and link syntax, line breaks).
"""
from __future__ import annotations

import re

from markupsafe import escape

from bench.report import charts
from bench.report import choose, content, environment, html, rosetta

_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")


def text(value) -> str:
    escaped = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", escaped)


def cell(value) -> str:
    return " ".join(text(value).split())  # a table cell is one line


def table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _value(key: str, value: content.Value, contention: str | None = None) -> str:
    if key == "framework":
        label = f"{value.text} ({value.detail})" if value.detail else value.text
        return f"{label} ⚠ contended: {contention}" if contention else label
    if value.number is None and value.note:
        return f"{value.text} ({value.note})"
    return f"{value.text} [{value.detail}]" if value.detail else value.text


def render(report: content.Report, charts_folder: str) -> tuple[str, dict[str, str]]:
    """The Markdown text and the chart files it links to ({relative path: SVG})."""
    out = [f"# Which deep-learning framework? — {text(', '.join(r.run_id for r in report.runs))}", "",
           f"{len(report.records)} cells, {len(report.failures)} not ok; frameworks: "
           f"{text(', '.join(report.frameworks))}; generated {report.generated_at}.", ""]
    if report.synthetic:
        out += ["> **Synthetic data** in " + text(", ".join(s.title for s in report.settings if s.synthetic)) +
                ": synthetic data measures speed and memory only (no accuracy).", ""]
    if report.contended:
        out += ["> **Measured under contention** in " + text(", ".join(report.contended)) + ": other processes took "
                "CPU time while some cells trained; those frameworks are flagged ⚠ contended, never named leader or "
                "tied, and listed after the others in the ranking.", ""]
    if report.skipped:
        out += [f"> **{len(report.skipped)} result file(s) could not be read** and are left out: see Failures.", ""]
    files: dict[str, str] = {}
    palette = charts.colors(report.frameworks)
    out += ["## At a glance", ""]
    for setting in report.settings:
        out += [f"**{text(setting.title)}**", ""]
        if setting.headline and setting.provisional:
            out += [f"_{text(setting.provisional.capitalize())}_", ""]
        out += [f"- {text(lead.title.capitalize())}: **{text(lead.leader)}** ({text(lead.value)})"
                + (f" — tied with {text(', '.join(lead.tied))} (not significant at 95 %)" if lead.tied else "")
                for lead in setting.headline] or ["- fewer than two frameworks measured"]
        if setting.contention_line:
            out += [f"- ⚠ {text(setting.contention_line[:1].upper() + setting.contention_line[1:])}"]
        out.append("")
    weights = choose.PRESETS[choose.DEFAULT_PRESET]
    out += [f"## Choose a framework (default weights, {choose.DEFAULT_PRESET}: "
            + ", ".join(f"{c.title} {weights[c.key]}" for c in choose.choices("cpu")) + ")", "",
            f"Per criterion 0–100, continuous in the distance from the best: 1 − log10(ratio to the best) / "
            f"{choose.LOG_DECADES:g} (speed, latency, memory, import time, first step) or "
            f"1 − (best − accuracy) / {choose.ACCURACY_SPAN:g}; no value scores 0. ★ the best, ≈ tied with it (not "
            "significantly different at 95 %: shown, it does not change the score). ⚠ contended: measured while "
            "other processes took CPU time, listed last without a rank. Score: the weighted mean. The HTML report "
            "lets you set the weights.", ""]
    for setting in report.settings:
        ranking = setting.ranking
        out += [f"**{text(setting.title)}**", ""]
        if setting.provisional:
            out += [f"_{text(setting.provisional.capitalize())}_", ""]
        rows = [[rank or content.MISSING, f"{entry.label} ⚠ contended: {entry.contention}" if entry.contention
                 else entry.label, html.percent(entry.total),
                 *(_score(entry, c.key) if c.key in ranking.measured else "n/a" for c in ranking.criteria)]
                for rank, entry in html.ranked(ranking)]
        rows += [["—", label, f"not ranked: {why}", *([""] * len(ranking.criteria))] for label, why in ranking.unranked]
        out += table(["#", "framework", "score", *(c.title for c in ranking.criteria)], rows)
    out += ["## Leaderboards", ""]
    for setting in report.settings:
        out += [f"### {text(setting.title)}", ""]
        headers = [heading for heading, _ in setting.columns.values()]
        out += table(headers, [[_value(key, row[key], setting.contention.get(row["framework"].text))
                                for key in setting.columns] for row in setting.rows])
        for index, chart in enumerate(charts.for_setting(setting.groups, palette)):
            name = f"{charts_folder}/{setting.anchor}-{index + 1}.svg"
            files[name] = chart.svg
            out += [f"![{text(chart.title)}]({name})", ""] + ([text(chart.caption), ""] if chart.caption else [])
    for across in report.across_machines:
        out += [f"### Across machine types: {text(across['title'])}", "",
                "Steady-state train samples/s, median over repeats; each machine type is ranked on its own above.", ""]
        out += table(["framework", *across["machines"]],
                     [[label, *(value.text for value in values)] for label, values in across["rows"]])
    for index, (title, groups) in enumerate(report.sweeps):
        chart = charts.batch_sweep(groups, palette)
        if chart:
            name = f"{charts_folder}/sweep-{index + 1}.svg"
            files[name] = chart.svg
            out += [f"### Batch-size sweep: {text(title)}", "", f"![{text(chart.title)}]({name})", "",
                    text(chart.caption), ""]
    out += ["## Failures", ""]
    for record in report.failures:
        out += [f"- **{text(record['cell_id'])}** — {text(record['status'])}: {text(record.get('reason'))} "
                f"(exit code {text(record.get('exit_code'))}, log {text(record.get('log_path'))})"]
        if record.get("log_tail"):
            out += ["", "  <details><summary>log tail</summary><pre>"
                    + str(escape(record["log_tail"])).replace("\n", "&#10;") + "</pre></details>"]
    if report.skipped:
        out += ["", "Result files that could not be read (left out of everything above):", ""]
        out += [f"- {text(path)}: {text(why)}" for path, why in report.skipped]
    out += ["" if report.failures or report.skipped else "Every cell finished (status ok).", ""]
    out += _code(report) + _parity(report) + _capacity(report) + _environment(report)
    out += ["## Methodology", "", "Each number is defined in the README's \"What a cell measures\" and \"Repeats, "
            "intervals and 'faster than'\" sections, and in the HTML report's Methodology section.", "",
            "### What ran: modes", "",
            "; ".join(f"**{mode}**: {meaning}" for mode, meaning in content.MODES.items()) + ".", ""]
    keys = ("framework", "mode", "runs_as", "optimizer_update")
    out += table(["framework", "mode", "runs as", "optimizer update"], [[row[key] for key in keys]
                                                                        for row in report.executions])
    return "\n".join(out), files


def _score(entry: choose.Entry, key: str) -> str:
    """A criterion's score, marked ★ for the best and ≈ for a tie with it."""
    mark = {"leader": " ★", "tied": " ≈"}.get(entry.standing.get(key), "")
    return html.percent(entry.scores[key]) + mark


def _code(report: content.Report) -> list[str]:
    out = ["## Code side by side (lines of code per adapter)", ""]
    for task in report.tasks:
        for excerpt in rosetta.excerpts(report.frameworks_of(task), task):
            out += [f"<details><summary>{text(task)}: {text(excerpt.title)} — {excerpt.lines_of_code} lines "
                    f"({text(excerpt.path)})</summary>", "", "```python", excerpt.code.replace("```", "` ` `"),
                    "```", "", "</details>", ""]
    return out


def _parity(report: content.Report) -> list[str]:
    out = ["## Parity", ""]
    if not report.parity:
        return out + ["No parity table stored beside these runs (`bench parity` writes results/parity-latest.json).", ""]
    parity = report.parity
    out += [f"`bench parity`, {text(parity.get('measured_at'))}: against {text(parity.get('reference'))}, "
            f"{text(parity.get('steps'))} steps, seed {text(parity.get('seed'))}; every precision against fp32.", ""]
    rows = []
    for row in parity["rows"]:
        found = row.get("differences") or {}
        rows.append([row.get("framework"), row.get("task"), row.get("precision"),
                     *(f"{found[kind]:.1e}" if kind in found else content.MISSING for kind in ("loss", "kernel", "bias")),
                     f"{row['parameter_count']:,}" if row.get("parameter_count") else content.MISSING,
                     f"{row.get('status')} {row.get('reason') or ''}".strip()])
    return out + table(["framework", "task", "precision", "loss", "kernels", "biases", "parameters", "result"], rows)


def _capacity(report: content.Report) -> list[str]:
    out = ["## Capacity", ""]
    if not report.capacity:
        return out + ["No capacity table stored beside these runs (`bench capacity` writes "
                      "results/capacity-latest.json).", ""]
    stored = report.capacity
    out += [f"`bench capacity`, {text(stored.get('measured_at'))}: the largest training batch that fitted, mode "
            f"{text(stored.get('mode'))}, {text(stored.get('steps'))} steps per try, each in a fresh process. Memory "
            "per sample: the slope of peak memory against batch size.", ""]
    rows = [[row["framework"], row["task"], row["device"], row["precision"], row["largest_batch"] or content.MISSING,
             row["smallest_too_big"] or content.MISSING,
             f"{row['bytes_per_sample'] / 1024:,.1f}" if row.get("bytes_per_sample") is not None else content.MISSING,
             row["verdict"]] for row in stored["rows"]]
    return out + table(["framework", "task", "device", "precision", "largest batch", "too big", "KiB per sample",
                        "verdict"], rows)


def _environment(report: content.Report) -> list[str]:
    out = ["## Environment", ""]
    for run in report.runs:
        out += [f"### Run {text(run.run_id)}", ""]
        out += table(["", ""], [[label, value] for label, value in environment.environment_rows(run)])
        out += table(["framework", "version", "interpreter", "origin"],
                     [[f["framework"], f["version"], f["python"], f["origin"]] for f in environment.framework_rows(run)])
    return out
