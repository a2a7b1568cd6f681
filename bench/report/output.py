"""Where reports go: `reports/<run-id>.<format>` (several runs: their ids joined by "+"), relative to the working
directory like `results/`; the end of `bench run` also refreshes `reports/latest.html`."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from bench.report import FORMATS, content, html, markdown, spreadsheet
from frameworks.errors import UserError


def write(runs: list[str], root: Path, reports: Path, fmt: str = "html", output: Path | None = None,
          pool_machines: bool = False) -> Path:
    """Render RUNS (run ids under ROOT, or run folders) as FMT; returns the file written."""
    if fmt not in FORMATS:
        raise UserError(f"unknown report format {fmt!r}; choose from: {', '.join(FORMATS)}")
    report = content.load(runs, root, pool_machines)
    say_skipped(report)
    path = Path(output) if output else Path(reports) / f"{'+'.join(run.run_id for run in report.runs)}.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        path.write_text(html.render(report), encoding="utf-8")
    elif fmt == "csv":
        path.write_text(spreadsheet.render(report), encoding="utf-8")
    else:
        folder = f"{path.stem}-charts"
        text, charts = markdown.render(report, folder)
        for name, svg in charts.items():
            (path.parent / name).parent.mkdir(parents=True, exist_ok=True)
            (path.parent / name).write_text(svg, encoding="utf-8")
        path.write_text(text, encoding="utf-8")
    return path


def write_run_report(run_folder: Path, reports: Path) -> Path:
    """The end-of-run HTML report, and a copy as latest.html."""
    path = write([str(run_folder)], run_folder.parent, reports)
    shutil.copyfile(path, Path(reports) / "latest.html")
    return path


def say_skipped(report: content.Report) -> None:
    """One line on stderr per cell file the report left out; the report lists them under Failures."""
    for path, why in report.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
