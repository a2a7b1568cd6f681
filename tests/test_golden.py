"""Checked-in run folders written by earlier versions of bench (tests/golden/README.md): they still read, migrate,
report and compare, with what they did not measure shown as missing, never as 0."""
import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from bench import catalogue, cli
from bench.report import compare, content, markdown, spreadsheet
from bench.results import SCHEMA_VERSION, RunStore, validate_cell

GOLDEN = Path(__file__).resolve().parent / "golden"
SCHEMA_1, SCHEMA_2, SCHEMA_3, CURRENT = "20261127-200951", "20261127-200955", "20261127-201008", "20261127-224601"


@pytest.fixture
def results(tmp_path) -> Path:
    """A copy: reading must not write, but a report test writes beside the runs."""
    shutil.copytree(GOLDEN, tmp_path / "results", ignore=shutil.ignore_patterns("README.md"))
    return tmp_path / "results"


@pytest.mark.parametrize("run, version", [(SCHEMA_1, 1), (SCHEMA_2, 2), (SCHEMA_3, 3), (CURRENT, 4)])
def test_every_golden_record_validates_after_migration(run, version):
    for path in sorted((GOLDEN / run / "cells").glob("*.json")):
        document = json.loads(path.read_text())
        assert document["schema_version"] == version
        migrated = validate_cell(document, path)
        assert migrated["schema_version"] == SCHEMA_VERSION
        assert set(catalogue.required_when_ok()) <= set(migrated["metrics"]), "every metric there, null if unmeasured"


def test_a_version_1_record_shows_what_it_did_not_measure_as_missing(results):
    report = content.load([SCHEMA_1], results)
    [setting] = report.settings
    [row] = setting.rows
    assert row[catalogue.TRAIN_SPEED.name].number > 0  # measured then, shown now
    assert row[catalogue.LATENCY.name].text == content.MISSING and row[catalogue.LATENCY.name].note == "not recorded"
    assert row[catalogue.HOST_MEMORY.name].number is None or row[catalogue.HOST_MEMORY.name].detail == "process only"


def test_a_version_2_record_keeps_its_rss_tree_peak_and_its_own_matmul(results):
    [record] = RunStore.open(results, SCHEMA_2).cells()
    metrics = record["metrics"]
    assert metrics["peak_host_tree_kind"] == "rss" and metrics["peak_host_tree_bytes"] > 0
    assert metrics["matmul_flops_per_s"] > 0 and metrics["latency_batch1_ms_p50"] > 0
    assert metrics["inference_samples_per_s_by_batch"]  # measured then; no longer measured, kept as it was


def test_old_and_new_runs_report_together_in_every_format(results, tmp_path, capsys):
    for fmt in ("html", "md", "csv"):
        assert cli.main(["report", SCHEMA_1, SCHEMA_2, SCHEMA_3, CURRENT, "--out", str(results), "--reports",
                         str(tmp_path / "reports"), "--format", fmt]) == 0
    [page] = (tmp_path / "reports").glob("*.html")
    assert page.read_text().count("data:image/svg+xml;base64,") >= 3  # its charts, inline
    report = content.load([SCHEMA_1, SCHEMA_2, SCHEMA_3, CURRENT], results)
    rows = list(csv.DictReader(io.StringIO(spreadsheet.render(report))))
    assert sorted((row["framework"], row["mode"], row["precision"], row["batch_size"]) for row in rows) == [
        ("mxnet", "eager", "fp32", "128"), ("mxnet", "native", "fp32", "128"), ("pytorch", "eager", "fp32", "128"),
        ("pytorch", "native", "bf16", "128"), ("pytorch", "native", "bf16", "64"),
        ("pytorch", "native", "fp32", "128"), ("pytorch", "native", "fp32", "64")]
    [pytorch_eager] = [row for row in rows if (row["framework"], row["mode"]) == ("pytorch", "eager")]
    assert pytorch_eager["ok_repeats"] == "3"  # the same version in three runs: one group of three repeats
    [native] = [row for row in rows if (row["framework"], row["mode"], row["precision"], row["batch_size"]) ==
                ("pytorch", "native", "fp32", "128")]
    assert native["ok_repeats"] == "2"  # schema 3's native cell and today's: older records are fp32 at the spec's batch
    assert report.sweeps and "Batch-size sweep" in page.read_text()
    assert "0" not in {row[catalogue.LATENCY.name] for row in rows}  # missing is empty, never 0
    text, charts = markdown.render(report, "charts")
    assert "pytorch eager" in text and charts


def test_compare_a_version_2_run_with_a_version_3_run(results):
    comparison = compare.compare_runs(SCHEMA_2, SCHEMA_3, results)
    assert [change.label for change in comparison.changes if change.metric == catalogue.TRAIN_SPEED.heading] == \
        ["pytorch eager"]  # the one group both runs have
    assert any("mxnet" in item for item in comparison.only_after)
    assert all(change.verdict in (compare.BETTER, compare.WORSE, compare.SAME) for change in comparison.changes)


def test_compare_a_version_3_run_with_todays_precision_and_batch_axes(results):
    """Older records are fp32 at the spec's batch: they meet today's cell of the same precision and batch, and the
    bf16 and swept cells are only in today's run."""
    comparison = compare.compare_runs(SCHEMA_3, CURRENT, results)
    assert {change.label for change in comparison.changes} == {"pytorch native"}
    assert {change.setting for change in comparison.changes} == {"mnist_mlp on synthetic (cpu)"}
    assert sorted(comparison.only_after) == [
        "mnist_mlp on synthetic (cpu, batch 64 outside the spec): pytorch native",
        "mnist_mlp on synthetic (cpu, bf16): pytorch native",
        "mnist_mlp on synthetic (cpu, bf16, batch 64 outside the spec): pytorch native"]
