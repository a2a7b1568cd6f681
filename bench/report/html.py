"""The HTML report: one self-contained file — inline CSS and script, charts as SVG data URIs, no network request —
that opens from disk in any browser.

Templates live in bench/templates/ and are rendered with autoescaping on, so every string from results (error
messages, log tails, versions, paths) is escaped; the data the page's script reads is embedded with jinja's
`tojson`, which escapes `<`, `>`, `&` and quotes, so no value can close the script element.
"""
from __future__ import annotations

import base64
import hashlib
import math
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from bench.aggregate import Group
from bench.report import charts
from bench.report import choose, content, environment, rosetta
from frameworks.spec import TASKS

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CODE_STYLE = HtmlFormatter(style="friendly")


@lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    script = (TEMPLATES / "report.js").read_text()
    env.globals.update(asset=_asset, code_css=Markup(CODE_STYLE.get_style_defs(".code")), percent=percent,
                       missing=content.MISSING, script=Markup(script),
                       script_hash="sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode())
    return env


def _asset(name: str) -> Markup:
    """A static file of ours (CSS, script) inlined as is: trusted text, written by this project."""
    return Markup((TEMPLATES / name).read_text())


def percent(score: float | None) -> str:
    """A 0..1 score as 0..100, rounded half up (as the page's script rounds)."""
    return content.MISSING if score is None else str(math.floor(score * 100 + 0.5))


def data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def setting_charts(groups: list[Group], palette: dict[str, str]) -> list[dict]:
    return [{"title": chart.title, "caption": chart.caption, "src": data_uri(chart.svg)}
            for chart in charts.for_setting(groups, palette)]


def ranked(ranking: choose.Ranking) -> list[tuple[int | None, choose.Entry]]:
    """(rank, entry) pairs; equal totals share a rank; a contended entry has none (listed, not ranked)."""
    return [(None if entry.contention else
             1 + sum(not other.contention and other.total > entry.total + 1e-12 for other in ranking.entries), entry)
            for entry in ranking.entries]


def code_columns(report: content.Report) -> list[dict]:
    """Per task in the report: each adapter's excerpt, highlighted."""
    found = []
    for task in report.tasks:
        excerpts = rosetta.excerpts(report.frameworks_of(task), task)
        if excerpts:
            found.append({"task": task, "description": TASKS[task].description if task in TASKS else "",
                          "excerpts": [{"excerpt": e, "html": Markup(highlight(e.code, PythonLexer(), HtmlFormatter(
                              nowrap=True)))} for e in excerpts]})
    return found


def render(report: content.Report) -> str:
    palette = charts.colors(report.frameworks)
    views = [{"setting": setting, "charts": setting_charts(setting.groups, palette),
              "ranked": ranked(setting.ranking)} for setting in report.settings]
    data = choose.page_data({setting.anchor: setting.ranking for setting in report.settings})
    sweeps = [{"title": title, "charts": [{"title": chart.title, "caption": chart.caption, "src": data_uri(chart.svg)}
                                          for chart in [charts.batch_sweep(groups, palette)] if chart]}
              for title, groups in report.sweeps]
    return templates().get_template("report.html.j2").render(
        report=report, views=views, data=data, sweeps=sweeps, presets=choose.PRESETS, default_preset=choose.DEFAULT_PRESET,
        criteria=choose.choices("cpu"), decades=choose.LOG_DECADES, accuracy_span=choose.ACCURACY_SPAN,
        modes=content.MODES,
        code=code_columns(report), settings_by_framework=environment.framework_settings(report.records),
        environments=[(run, environment.environment_rows(run), environment.framework_rows(run)) for run in report.runs])
