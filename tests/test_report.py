"""The report, Markdown and CSV exports and `bench compare`, from hand-made result folders (no framework needed),
plus one real `bench run` that must end with the report's path.

`write_run` and `HOSTILE` are shared with tests/test_browser.py, which opens the same pages in Chromium.
"""
from __future__ import annotations

import csv
import io
import json
import re
import sys
import zlib
from dataclasses import asdict
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from rich.console import Console

from bench import aggregate, catalogue, display, stored
from bench.registry import FRAMEWORKS
from bench.report import choose, content, rosetta, spreadsheet
from bench.results import SCHEMA_PATH, SCHEMA_VERSION, RunStore
from conftest import bench

METRIC_NAMES = json.loads(SCHEMA_PATH.read_text())["properties"]["metrics"]["properties"]
MIB = 2**20
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def record(framework: str, *, task="mnist_mlp", dataset="mnist", mode="eager", repeat=0, status="ok",
           speed=20_000.0, latency_ms=0.5, memory_mib=400.0, launch_s=2.0, first_step_s=0.05, accuracy=0.95,
           reason=None, log_tail="", version="1.0", contended=False) -> dict:
    """A cell record; throughput windows and latencies are seeded draws around the given medians. CONTENDED: other
    processes used 1.4 CPU cores while it trained."""
    synthetic = dataset == "synthetic"
    document = {
        "framework": framework, "task": task, "dataset": dataset, "synthetic_data": synthetic, "device": "cpu",
        "mode": mode, "precision": "fp32", "repeat": repeat, "seed": 0, "epochs": 2, "batch_size": 128,
        "batch_outside_spec": False, "train_samples": 60_000, "node": None, "executor": "local",
        "test_samples": 10_000, "status": status, "reason": reason, "wall_time_s": 12.5,
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:12+00:00",
        "exit_code": 0 if status == "ok" else 1, "signal": None, "log_tail": log_tail,
        "log_path": f"logs/{framework}.log", "interpreter": {"python": "/usr/bin/python3", "origin": "managed"},
        "cell_id": re.sub(r"[^\w\[\]-]", "_", f"{framework}--{task}--{dataset}--cpu--{mode}--r{repeat}"),
        "contention": {"flagged": contended, "other_cpu_cores": 1.4 if contended else 0.1, "threshold_cores": 0.5,
                       "load_before": 0.3, "gpu_other_processes": None,
                       "reason": "other processes used 1.4 CPU cores (limit 0.5)" if contended else None},
        "execution": {"runs_as": "op by op" if mode == "eager" else "graph (tf.function)",
                      "optimizer_update": "outside (eager)" if mode == "eager" else "inside the graph"},
    }
    if status != "ok":
        return document
    rng = np.random.default_rng(zlib.crc32(f"{framework}{task}{dataset}{repeat}".encode()))
    windows = (speed * (1 + 0.02 * rng.standard_normal(40))).tolist()
    latencies = (latency_ms * (1 + 0.05 * rng.standard_normal(200))).tolist()
    metrics = dict.fromkeys(METRIC_NAMES)
    metrics.update(
        startup_s=0.05, import_s=launch_s - 0.05, launch_s=launch_s, data_s=0.3, build_s=0.5,
        first_step_s=first_step_s, time_to_first_step_s=launch_s + 0.5 + first_step_s, warmup_steps=10,
        warmup_s=0.2, train_s=60_000 * 2 / speed,
        steady_train_s=60_000 * 2 / speed - 0.2, train_samples_per_s=float(np.median(windows)),
        train_samples_per_s_ci_low=float(np.percentile(windows, 35)),
        train_samples_per_s_ci_high=float(np.percentile(windows, 65)), train_samples_per_s_ci_level=0.96,
        train_samples_per_s_cv=0.02, train_samples_per_s_windows=windows, eval_s=0.4, inference_s=1.0,
        inference_samples_per_s=10 * speed, inference_samples_per_s_by_batch={"32": speed, "1000": 10 * speed},
        latency_batch1_ms_samples=latencies, latency_batch1_ms_p50=float(np.median(latencies)),
        latency_batch1_ms_p90=float(np.percentile(latencies, 90)),
        latency_batch1_ms_p99=float(np.percentile(latencies, 99)),
        test_accuracy=None if synthetic else accuracy, test_loss=None if synthetic else 0.2, final_train_loss=0.3,
        accuracy_target=None if synthetic else 0.97,
        time_to_accuracy_s=None if synthetic or accuracy < 0.97 else 60_000 * 2 / speed,
        time_to_accuracy_epoch=None if synthetic or accuracy < 0.97 else 2,
        time_to_accuracy_reason=("no accuracy target for synthetic" if synthetic
                                 else "not reached in 2 epoch(s)" if accuracy < 0.97 else None),
        peak_host_rss_bytes=int(memory_mib * MIB), peak_host_tree_bytes=int(memory_mib * MIB),
        peak_host_tree_kind="pss",
        peak_gpu_reason="no GPU used (device cpu)", peak_gpu_nvml_reason="no GPU used (device cpu)")
    document.update(framework_version=version, framework_settings={"threads": 2}, metrics=metrics, epochs_detail=[
        {"epoch": epoch, "train_loss": 0.5 / epoch, "train_time_s": 60_000 / speed,
         "cumulative_train_time_s": epoch * 60_000 / speed,
         "test_accuracy": None if synthetic else accuracy - 0.02 / epoch, "test_loss": None}
        for epoch in (1, 2)])
    return document


def write_run(root: Path, run_id: str, records: list[dict], versions: dict[str, str] | None = None) -> Path:
    """A run folder as `bench run` leaves it: manifest and validated cell records."""
    frameworks = sorted({r["framework"] for r in records})
    versions = versions or {}
    store = RunStore.create(root, run_id, {
        "command": "bench run --test", "spec_version": "1", "seed": 0, "device": "cpu",
        "settings": {"profile": "quick", "repeats": 1, "modes": ["eager"], "epochs": None},
        "python_overrides": {}, "datasets": {"mnist_mlp": {"dataset": "mnist", "folder": "/data/mnist"}},
        "machine": {"os": "Linux", "cpu_model": "Test CPU", "cpu_cores": 2, "ram_bytes": 8 * 2**30,
                    "python": "3.11", "gpus": []},
        "frameworks": {name: {"version": versions.get(name, "1.0"), "error": None, "python": f"/envs/{name}/python",
                              "origin": "managed"} for name in frameworks}})
    for document in records:
        store.write_cell({"schema_version": SCHEMA_VERSION, "run_id": run_id, **document})
    return store.folder


def choice_records() -> list[dict]:
    """pytorch trains fastest (tensorflow within noise of it) and answers quickest; mxnet is leanest and imports
    first; paddle failed with a hostile message; cifar_cnn ran on synthetic data."""
    return [
        record("pytorch", speed=50_000, latency_ms=0.2, memory_mib=500, launch_s=3.0, accuracy=0.970),
        record("tensorflow", speed=49_800, latency_ms=0.5, memory_mib=700, launch_s=4.0, accuracy=0.968),
        record("mxnet", speed=20_000, latency_ms=0.8, memory_mib=150, launch_s=0.8, accuracy=0.965),
        record("paddle", status="failed", reason=HOSTILE, log_tail="Traceback\n" + HOSTILE),
        record("pytorch", task="cifar_cnn", dataset="synthetic", speed=300, latency_ms=5, memory_mib=900),
        record("mxnet", task="cifar_cnn", dataset="synthetic", speed=200, latency_ms=6, memory_mib=600),
    ]


class _Tables(HTMLParser):
    """Text of every table cell, by table class: {class: [[cell text, ...] per row]}."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: list | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.current = self.tables.setdefault(dict(attrs).get("class") or "", [])
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag in ("td", "th") and self.current is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.current[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data + " ")


def tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


@pytest.fixture
def choice_run(tmp_path) -> Path:
    return write_run(tmp_path / "results", "run-a", choice_records(), versions={"paddle": HOSTILE})


def report_page(run: Path, *args: str) -> tuple[str, Path]:
    completed = bench("report", run.name, "--out", str(run.parent), *args, cwd=run.parent.parent)
    assert completed.returncode == 0, completed.stderr
    path = Path(completed.stdout.split("report: ")[1].strip())
    return (run.parent.parent / path).read_text(), run.parent.parent / path


def test_report_is_one_file_that_needs_no_network(choice_run):
    page, path = report_page(choice_run)
    assert path == choice_run.parent.parent / "reports" / "run-a.html"
    assert "<style>" in page and "<script>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no CDN, no remote anything
    assert "<link" not in page and "@import" not in page
    assert "default-src 'none'" in page  # and the browser is told to refuse any request
    assert page.count('<img class="chart" src="data:image/svg+xml;base64,') >= 6


def test_headline_names_leaders_and_ties(choice_run):
    page, _ = report_page(choice_run)
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    fastest = re.search(r"Fastest to train : (\w+) eager \([\d,]+ samples/s\) — tied with (\w+) eager \(the "
                        r"difference is not significant at 95 %\)", text)
    assert fastest and {fastest[1], fastest[2]} == {"pytorch", "tensorflow"}  # 0.4 % apart: within noise
    assert "Leanest in host memory : mxnet eager" in text
    assert "Quickest to import : mxnet eager" in text


def test_leaderboard_shows_missing_and_failed_values_as_dash_never_zero(choice_run):
    rows = tables(report_page(choice_run)[0])["sortable leaderboard"]
    mnist_header, *mnist = rows[:5]
    paddle = next(row for row in mnist if row[0].startswith("paddle"))
    assert paddle[1] == "failed see Failures"
    assert all(value == "—" for value in paddle[2:])  # no number, and never a zero
    pytorch = next(row for row in mnist if row[0].startswith("pytorch"))
    assert pytorch[mnist_header.index("accuracy")] == "0.9700"
    assert pytorch[mnist_header.index("host MiB")] == "500"
    synthetic_header, *synthetic = rows[5:8]
    assert all(row[synthetic_header.index("accuracy")] == "— synthetic data: no accuracy" for row in synthetic)


def test_synthetic_banner_only_when_synthetic_data_was_used(tmp_path, choice_run):
    page, _ = report_page(choice_run)
    assert 'id="synthetic-banner"' in page and "measures speed and memory only" in page
    real = write_run(tmp_path / "real", "run-real", [record("pytorch"), record("mxnet")])
    assert 'id="synthetic-banner"' not in report_page(real)[0]


def test_failures_list_status_reason_and_log_tail_as_inert_text(choice_run):
    page, _ = report_page(choice_run)
    assert "<script>window.__pwned" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;&lt;img src=x onerror=" in page  # shown, as text
    failures = page[page.index('id="failures"'):page.index('id="code"')]
    assert "paddle--mnist_mlp--mnist--cpu--eager--r0" in failures and "failed" in failures
    assert "Traceback" in failures  # the log tail


def test_embedded_data_cannot_close_its_script_element(tmp_path):
    hostile = "evil</script><script>window.__pwned = 3</script>"
    run = write_run(tmp_path / "results", "run-x", [record(hostile), record("pytorch")])
    page, _ = report_page(run)
    assert page.count("</script>") == 2  # the data block's and the page script's own
    data = json.loads(re.search(r'<script type="application/json" id="choose-data">(.*?)</script>', page, re.S)[1])
    labels = {entry["label"] for entry in data["settings"]["mnist_mlp-mnist-cpu"]["entries"]}
    assert f"{hostile} eager" in labels  # intact once parsed


def test_default_ranking_is_on_the_page_without_javascript(choice_run):
    ranking = tables(report_page(choice_run)[0])["ranking"]
    groups = content.load([str(choice_run)], choice_run.parent).settings[0].groups
    expected = [entry.label for entry in choose.rank(groups, "cpu").entries]
    assert [row[1] for row in ranking[1:5]] == [*expected, "paddle eager"]
    assert expected[0] == "pytorch eager"  # fastest (or tied), quickest to answer, most accurate (or tied)
    assert ranking[4][2].startswith("not ranked: no successful repeat (failed)")


def test_presets_reorder_the_ranking(choice_run):
    groups = content.load([str(choice_run)], choice_run.parent).settings[0].groups
    order = {name: [e.label for e in choose.rank(groups, "cpu", weights).entries]
             for name, weights in choose.PRESETS.items()}
    assert order["balanced"][0] == "pytorch eager"
    assert order["memory-constrained"][0] == "mxnet eager"
    assert order["production inference"][0] == "pytorch eager"


def test_scores_follow_the_documented_formula():
    groups = content.settings_of([
        record("fast", speed=100_000, memory_mib=100, accuracy=0.97), record("tenth", speed=10_000, memory_mib=100,
                                                                           accuracy=0.92),
        record("same", speed=100_000, memory_mib=100, accuracy=0.97, repeat=0, latency_ms=0.5)])[0].groups
    criteria = {c.key: c for c in choose.choices("cpu")}
    train = choose.criterion_scores(groups, criteria["train"])
    best = max(g.central("train_samples_per_s") for g in groups)
    for group in groups:  # the formula for everyone, the tied included
        expected = 1 - np.log10(best / group.central("train_samples_per_s")) / 2
        assert train[group.label] == pytest.approx(expected)
    assert train["tenth eager"] == pytest.approx(0.5, abs=0.01)  # ten times slower: 1 - log10(10) / 2
    accuracy = choose.criterion_scores(groups, criteria["accuracy"])
    assert accuracy["tenth eager"] == pytest.approx(0.5)  # five points below the best: 1 - 0.05 / 0.10
    assert choose.total({"train": 0.5, "accuracy": None}, {"train": 1, "accuracy": 3}, ("train", "accuracy")) == 0.125


def test_markdown_and_csv_carry_the_same_content(choice_run):
    markdown, path = report_page(choice_run, "--format", "md")
    assert path.suffix == ".md"
    assert "Fastest to train: **pytorch eager**" in markdown
    assert "| pytorch eager (1.0) | ok | 0.9700 |" in markdown
    assert "&lt;script&gt;" in markdown and "<script>" not in markdown
    charts = re.findall(r"!\[[^\]]*\]\(([^)]+\.svg)\)", markdown)
    assert charts and all((path.parent / chart).read_text().startswith("<svg") for chart in charts)
    spreadsheet, path = report_page(choice_run, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(spreadsheet)))
    paddle = next(row for row in rows if row["framework"] == "paddle")
    assert paddle["status"] == "failed" and paddle["train_samples_per_s"] == "" and paddle["rank_default_weights"] == ""
    pytorch = next(row for row in rows if row["framework"] == "pytorch" and row["task"] == "mnist_mlp")
    assert float(pytorch["peak_host_tree_bytes"]) == 500 * MIB and pytorch["rank_default_weights"] == "1"
    assert "fastest to train" in pytorch["leads"]


def test_csv_neutralises_spreadsheet_formulas(tmp_path):
    run = write_run(tmp_path / "results", "run-f", [record("=HYPERLINK(1)"), record("pytorch")])
    spreadsheet, _ = report_page(run, "--format", "csv")
    assert "'=HYPERLINK(1)" in spreadsheet and ",=HYPERLINK" not in spreadsheet


def test_rosetta_reads_each_adapter_without_importing_frameworks():
    excerpts = rosetta.excerpts(list(FRAMEWORKS), "mnist_mlp")
    assert [e.path for e in excerpts] == ["frameworks/pytorch.py", "frameworks/tensorflow.py", "frameworks/keras.py",
                                          "frameworks/mxnet.py", "frameworks/paddle.py"]
    for excerpt in excerpts:
        assert "def train_step" in excerpt.code and "def build" in excerpt.code and "def predict" in excerpt.code
        assert "def _mnist_mlp" in excerpt.code and "def _cifar_cnn" not in excerpt.code
        assert "def weights" not in excerpt.code  # not part of building or training
        assert 20 < excerpt.lines_of_code < excerpt.code.count("\n") + 2
    assert "keras[tensorflow], keras[jax], keras[torch]" in [e.title for e in excerpts]
    assert not {"torch", "tensorflow", "keras", "mxnet", "paddle"} & set(sys.modules)


def test_parity_table_is_shown_when_bench_parity_stored_one(choice_run):
    from bench.parity import ParityRow

    assert "No parity table stored" in report_page(choice_run)[0]
    rows = [ParityRow("mxnet", "mnist_mlp", "pass", {"loss": 5.5e-7, "kernel": 5.3e-7, "bias": 7e-6}, {}, 101_770),
            ParityRow("paddle", "mnist_mlp", "unsupported", reason="no bf16 on a CPU", precision="bf16")]
    stored.PARITY.save(choice_run.parent, reference="pytorch", steps=5, seed=0, rows=[asdict(row) for row in rows],
                       tolerances={"fp32": {"loss": 1e-5}, "bf16": {"loss": 3e-2}})
    page = report_page(choice_run)[0]
    parity = tables(page)["sortable"]
    assert ["mxnet", "mnist_mlp", "fp32", "5.5e-07", "5.3e-07", "7.0e-06", "101,770", "pass"] in parity
    assert ["paddle", "mnist_mlp", "bf16", "—", "—", "—", "—", "unsupported — no bf16 on a CPU"] in parity
    assert "fp32: loss 1e-05; bf16: loss 0.03" in page


def test_environment_shows_exact_versions_and_interpreters(choice_run):
    page, _ = report_page(choice_run)
    environment = page[page.index('id="environment"'):page.index('id="methodology"')]
    assert "Test CPU, 2 cores" in environment and "/envs/pytorch/python" in environment
    assert "&lt;img src=x onerror=" in environment  # paddle's hostile version string, as text


def test_two_versions_of_a_framework_in_combined_runs_stay_apart(tmp_path):
    root = tmp_path / "results"
    write_run(root, "old", [record("pytorch", speed=20_000, version="2.0")], versions={"pytorch": "2.0"})
    write_run(root, "new", [record("pytorch", speed=40_000, version="2.1")], versions={"pytorch": "2.1"})
    completed = bench("report", "old", "new", "--out", str(root), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    page = (tmp_path / "reports" / "old+new.html").read_text()
    labels = [row[0] for row in tables(page)["sortable leaderboard"][1:]]
    assert labels == ["pytorch 2.0 eager 2.0", "pytorch 2.1 eager 2.1"]


def test_compare_flags_only_significant_changes(tmp_path):
    root = tmp_path / "results"
    write_run(root, "before", [record("pytorch", speed=20_000), record("mxnet", speed=30_000), record("paddle")])
    write_run(root, "after", [record("pytorch", speed=40_000), record("mxnet", speed=30_000),
                              record("paddle", status="timeout", reason="killed"), record("tensorflow")])
    completed = bench("compare", "before", "after", "--out", str(root), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "mnist_mlp on mnist (cpu), pytorch eager: train samples/s better (" in completed.stdout
    assert "mxnet eager: train samples/s" not in completed.stdout  # same speed: within noise, not flagged
    assert "mnist_mlp on mnist (cpu), paddle eager: ok → timeout" in completed.stdout
    page = (tmp_path / "reports" / "compare-before-vs-after.html").read_text()
    significant = page[page.index("<h2>Significant changes</h2>"):page.index("<details>")]
    assert "pytorch eager" in significant and "mxnet eager" not in significant
    assert "Only in after" in page and "tensorflow eager" in page


@pytest.mark.parametrize("args, message", [
    (["report", "no-such-run"], "no run 'no-such-run'"),
    (["compare", "run-a", "no-such-run"], "no run 'no-such-run'"),
    (["report", "run-a", "--format", "pdf"], "invalid choice: 'pdf'"),
])
def test_bad_input_is_one_line_and_exit_2(choice_run, args, message):
    completed = bench(*args, "--out", str(choice_run.parent), cwd=choice_run.parent.parent)
    assert completed.returncode == 2
    assert message in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


def test_corrupt_manifest_is_one_line_and_exit_2(choice_run):
    (choice_run / "manifest.json").write_text("{not json")
    completed = bench("report", "run-a", "--out", str(choice_run.parent), cwd=choice_run.parent.parent)
    assert completed.returncode == 2
    assert "corrupt run manifest" in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


def test_unreadable_cell_files_are_listed_under_failures_and_the_report_builds(choice_run):
    bad_json, not_object, invalid = sorted((choice_run / "cells").glob("mxnet*.json")) + [
        choice_run / "cells" / "paddle--mnist_mlp--mnist--cpu--eager--r0.json"]
    bad_json.write_text("{not json")
    not_object.write_text("[1, 2]")
    invalid.write_text(json.dumps({**json.loads(invalid.read_text()), "status": "exploded"}))
    completed = bench("report", "run-a", "--out", str(choice_run.parent), cwd=choice_run.parent.parent)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.strip().splitlines() == [
        f"skipped {bad_json}: corrupt cell record (Expecting property name enclosed in double quotes: line 1 "
        "column 2 (char 1))", f"skipped {not_object}: corrupt cell record (expected a JSON object)",
        f"skipped {invalid}: invalid cell record at status: 'exploded' is not one of "
        "['ok', 'failed', 'timeout', 'unsupported', 'skipped']"]
    page = (choice_run.parent.parent / completed.stdout.split("report: ")[1].strip()).read_text()
    failures = page[page.index('id="failures"'):page.index('id="code"')]
    assert all(str(path) in failures for path in (bad_json, not_object, invalid))
    assert "expected a JSON object" in failures and "invalid cell record at status" in failures
    assert 'id="skipped-banner"' in page
    labels = [row[0] for row in tables(page)["sortable leaderboard"] if row[0] != "framework"]
    assert labels == ["pytorch eager 1.0", "tensorflow eager 1.0", "pytorch eager 1.0"]  # the rest, reported
    markdown, _ = report_page(choice_run, "--format", "md")
    assert f"- {bad_json}: corrupt cell record" in markdown.replace("\\_", "_")


def test_scores_have_no_cliff_at_the_significance_line():
    """First steps 2.9 and 3.2 times the leader's fall either side of the significance line (40 % noise): the one
    inside is marked tied, yet both keep the formula's score and land close together. Scoring a tie as the best
    would have put 24 points between them."""
    groups = content.settings_of([record("lead", first_step_s=0.10), record("inside", first_step_s=0.29),
                                  record("past", first_step_s=0.32)])[0].groups
    first_step = next(choice for choice in choose.choices("cpu") if choice.key == "compile")
    assert choose.standings(groups, first_step) == {"lead eager": "leader", "inside eager": "tied"}
    scores = choose.criterion_scores(groups, first_step)
    assert scores["lead eager"] == 1.0 and scores["inside eager"] == pytest.approx(1 - np.log10(2.9) / 2)
    assert 0 < scores["inside eager"] - scores["past eager"] < 0.03


def test_ranking_marks_the_best_and_ties_per_criterion(choice_run):
    header, *rows = tables(report_page(choice_run)[0])["ranking"][:4]
    train, latency = header.index("train"), header.index("latency")
    by_label = {row[1]: row for row in rows}
    assert {by_label[label][train].split()[1] for label in ("pytorch eager", "tensorflow eager")} == {"★", "≈"}
    assert by_label["mxnet eager"][train] == "80"  # 2.5 times slower: 1 - log10(2.5) / 2, no mark
    assert by_label["pytorch eager"][latency] == "100 ★" and by_label["tensorflow eager"][latency] == "80"


def test_default_weights_favour_training_speed():
    """Twice as fast to train against twice as lean and twice as quick to compile: equal weights would pick the
    lean one; the default picks speed."""
    groups = content.settings_of([record("quick", speed=40_000, memory_mib=800, first_step_s=0.2),
                                  record("lean", speed=20_000, memory_mib=400, first_step_s=0.1)])[0].groups
    assert [entry.label for entry in choose.rank(groups, "cpu").entries] == ["quick eager", "lean eager"]
    equal = dict.fromkeys(choose.CRITERION_KEYS, 1)
    assert [entry.label for entry in choose.rank(groups, "cpu", equal).entries] == ["lean eager", "quick eager"]
    weights = choose.PRESETS[choose.DEFAULT_PRESET]
    assert weights["train"] > weights["inference"] > weights["memory"]


def test_rankings_from_fewer_than_three_repeats_are_provisional(tmp_path):
    caveat = "rovisional (1 repeat; 3 or more make it firm — `--repeats 3` or `--repeats auto`)"
    one = [record("pytorch"), record("mxnet", speed=10_000)]
    page, _ = report_page(write_run(tmp_path / "one", "run-1", one))
    assert " ".join(re.sub(r"<[^>]+>", " ", page).split()).count("P" + caveat) == 2  # the headline, the ranking
    markdown, _ = report_page(tmp_path / "one" / "run-1", "--format", "md")
    assert markdown.count("_P" + caveat.replace("`", "\\`") + "_") == 2
    console = Console(record=True, width=200, file=io.StringIO())
    display.print_headlines(console, one)
    assert "mnist_mlp on mnist (cpu) — p" + caveat + ":" in console.export_text()
    three = [record(name, repeat=repeat, speed=speed) for repeat in range(3)
             for name, speed in (("pytorch", 20_000), ("mxnet", 10_000))]
    page, _ = report_page(write_run(tmp_path / "three", "run-3", three))
    assert "or more make it firm" not in page
    console = Console(record=True, width=200, file=io.StringIO())
    display.print_headlines(console, three)
    terminal = console.export_text()
    assert "provisional" not in terminal and "fastest to train: pytorch eager" in terminal


def test_contended_group_is_flagged_and_never_leads(tmp_path):
    records = [record("pytorch", speed=30_000, latency_ms=0.2, contended=True), record("tensorflow", speed=20_000),
               record("mxnet", speed=10_000)]
    lead = aggregate.leaders(aggregate.group(records), catalogue.TRAIN_SPEED)
    assert lead.leader.framework == "tensorflow" and "pytorch" not in [g.framework for g in lead.tied]
    page, _ = report_page(write_run(tmp_path / "results", "run-c", records))
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "Fastest to train : tensorflow eager" in text and "Fastest to infer (batch 1) : pytorch" not in text
    assert "⚠ Measured under contention: not ranked — pytorch eager (1.4 other CPU cores)" in text
    assert 'id="contention-banner"' in page
    reason = 'title="other processes used 1.4 CPU cores (limit 0.5)">⚠ contended</span>'
    assert page.count(reason) == 2  # the ranking and the leaderboard, the reason on hover
    ranking = tables(page)["ranking"]
    assert [row[:2] for row in ranking[1:]] == [["1", "tensorflow eager"], ["2", "mxnet eager"],
                                                ["—", "pytorch eager ⚠ contended"]]
    leaderboard = tables(page)["sortable leaderboard"]
    assert next(row for row in leaderboard if row[0].startswith("pytorch"))[0].startswith("pytorch eager ⚠ contended")
    console = Console(record=True, width=300, file=io.StringIO())
    console.print(display.summary_table(records))
    display.print_headlines(console, records)
    terminal = console.export_text()
    assert "ok ⚠ contended" in terminal and "fastest to train: tensorflow eager" in terminal
    assert "measured under contention: not ranked — pytorch eager (1.4 other CPU cores)" in terminal
    assert 'id="contention-banner"' not in report_page(write_run(tmp_path / "quiet", "run-q", records[1:]))[0]


def test_what_ran_per_framework_and_mode(tmp_path):
    older = {key: value for key, value in record("mxnet").items() if key not in ("execution", "contention")}
    run = write_run(tmp_path / "results", "run-m", [record("tensorflow", mode="native"), record("tensorflow"), older])
    page, _ = report_page(run)
    assert tables(page)["executions"] == [
        ["framework", "mode", "runs as", "optimizer update"], ["mxnet", "eager", "—", "—"],
        ["tensorflow", "eager", "op by op", "outside (eager)"],
        ["tensorflow", "native", "graph (tf.function)", "inside the graph"]]
    markdown, _ = report_page(run, "--format", "md")
    assert "| tensorflow | native | graph (tf.function) | inside the graph |" in markdown


def test_bench_run_ends_with_the_report_path(tmp_path):
    completed = bench("run", "--frameworks", "pytorch", "--profile", "smoke", "--tasks", "mnist_mlp",
                      "--dataset", "synthetic", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    last_line = completed.stdout.strip().splitlines()[-1]
    run_id = next((tmp_path / "results").iterdir()).name
    assert last_line == f"report: reports/{run_id}.html"
    page = (tmp_path / "reports" / f"{run_id}.html").read_text()
    assert page == (tmp_path / "reports" / "latest.html").read_text()
    assert "pytorch native" in page and 'id="synthetic-banner"' in page


def test_batch_sweep_is_compared_per_batch_charted_across_batches_and_keeps_accuracy_out(tmp_path):
    """A sweep: each batch size is its own leaderboard (frameworks compared at one batch), the swept batches are
    labelled outside the spec with their accuracy not compared, and one chart shows the sweep."""
    records = [dict(record(name, speed=speed * batch / 128, accuracy=0.95, repeat=0), batch_size=batch,
                    batch_outside_spec=batch != 128,
                    cell_id=f"{name}--mnist_mlp--mnist--cpu--eager--fp32--b{batch}--r0")
               for name, speed in (("pytorch", 20_000.0), ("tensorflow", 15_000.0)) for batch in (32, 128, 512)]
    run = write_run(tmp_path / "results", "sweep", records)
    report = content.load([str(run)], run.parent)
    assert [setting.title for setting in report.settings] == [
        "mnist_mlp on mnist (cpu)", "mnist_mlp on mnist (cpu, batch 32 outside the spec)",
        "mnist_mlp on mnist (cpu, batch 512 outside the spec)"]
    inside, outside = report.settings[0], report.settings[1]
    assert inside.rows[0]["test_accuracy"].number == pytest.approx(0.95)
    assert outside.rows[0]["test_accuracy"].number is None
    assert "outside the spec's 128: accuracy recorded, not compared" in outside.rows[0]["test_accuracy"].note
    assert not any("accurate" in lead.title for lead in outside.headline)
    assert [title for title, _ in report.sweeps] == ["mnist_mlp on mnist (cpu, fp32)"]
    page, _ = report_page(run)
    assert "Batch-size sweep: mnist_mlp on mnist (cpu, fp32)" in page and "Batch 128 is the spec" in page
    rows = list(csv.DictReader(io.StringIO(spreadsheet.render(report))))
    assert sorted((row["framework"], row["batch_size"], row["batch_outside_spec"], row["test_accuracy"])
                  for row in rows)[:3] == [("pytorch", "128", "False", "0.95"), ("pytorch", "32", "True", ""),
                                           ("pytorch", "512", "True", "")]


def test_several_machine_types_are_ranked_apart_and_tabled_across(tmp_path):
    """A cluster run whose cells ran on two CPU models: one leaderboard and ranking per machine type, never one
    ranking across them, and a table of each framework's speed on each."""
    def on(machine: str, name: str, speed: float) -> dict:
        return dict(record(name, speed=speed), node={"hostname": machine.lower().replace(" ", "-"),
                                                     "cpu_model": machine, "usable_cpus": 2, "gpus": []},
                    cell_id=f"{name}--{machine.replace(' ', '_')}", executor="ray")
    records = [on("CPU A", "pytorch", 20_000.0), on("CPU A", "tensorflow", 10_000.0),
               on("CPU B", "pytorch", 5_000.0), on("CPU B", "tensorflow", 9_000.0)]
    run = write_run(tmp_path / "results", "cluster", records)
    report = content.load([str(run)], run.parent)
    assert [s.title for s in report.settings] == ["mnist_mlp on mnist (cpu) on CPU A", "mnist_mlp on mnist (cpu) on CPU B"]
    leaders = [s.headline[0].leader for s in report.settings if s.headline]
    assert leaders == ["pytorch eager", "tensorflow eager"]  # each machine type's own leader
    [across] = report.across_machines
    assert across["machines"] == ["CPU A", "CPU B"]
    assert [label for label, _ in across["rows"]] == ["pytorch eager", "tensorflow eager"]
    page, _ = report_page(run)
    assert "Across machine types: mnist_mlp on mnist (cpu)" in page
    pooled = content.load([str(run)], run.parent, pool_machines=True)  # asked for: one ranking, said so
    assert [s.title for s in pooled.settings] == ["mnist_mlp on mnist (cpu) on all machine types, pooled"]
    assert not pooled.across_machines
    assert pooled.settings[0].machine == content.POOLED and len(pooled.settings[0].groups[0].records) == 2
