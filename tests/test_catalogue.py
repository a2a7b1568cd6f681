"""The metric catalogue is the one definition of every metric: the JSON Schema agrees with it, and no other module
of the harness or the cell names a metric a report ranks on."""
import json
import re
from pathlib import Path

from bench import catalogue

REPO = Path(__file__).resolve().parent.parent


def test_the_schema_file_is_the_catalogues():
    schema = json.loads(catalogue.SCHEMA_PATH.read_text())
    assert schema["properties"]["metrics"]["properties"] == catalogue.schema_properties(), \
        "run `python -m bench.catalogue` to regenerate the schema's metric properties"
    required = [rule["then"]["properties"]["metrics"]["required"] for rule in schema["allOf"]
                if "required" in rule["then"].get("properties", {}).get("metrics", {})]
    assert required == [catalogue.required_when_ok()]


def test_every_metric_is_defined_once_and_completely():
    names = catalogue.record_fields()
    assert len(names) == len(set(names))
    for metric in catalogue.CATALOGUE:
        assert metric.help and metric.type in ("number", "integer", "string", "array", "object")
        for field in (metric.reason, metric.samples):
            assert field is None or field in catalogue.BY_NAME, f"{metric.name}: {field} is not in the catalogue"
        assert metric.summary is None or metric.samples, f"{metric.name}: a summary of which samples?"
        assert metric.summary in (None, "median") or re.fullmatch(r"p\d{1,2}", metric.summary)
    for metric in catalogue.CRITERIA:
        assert metric.criterion and metric.heading and metric.higher_is_better is not None, metric.name
        assert metric.samples or metric.noise or metric.proportion, f"{metric.name}: no way to judge a difference"
    assert {m.name for m in catalogue.CRITERIA} == {m.name for m in catalogue.CATALOGUE if m.criterion}
    for metric in (*catalogue.LEADERBOARD, *catalogue.TERMINAL):
        assert metric.heading, metric.name


def test_no_module_but_the_catalogue_and_the_measuring_code_names_a_ranked_metric():
    """`grep -rl train_samples_per_s bench frameworks` lists the catalogue, the schema and the child that measures
    it; and the harness's readers (aggregate, display, report) name no ranked metric in a string of their own: they
    read the catalogue's constants. (test_accuracy is also a field of each epoch and of progress events.)"""
    files = [path for folder in ("bench", "frameworks") for path in (REPO / folder).rglob("*")
             if path.suffix in (".py", ".json", ".j2", ".js") and "__pycache__" not in path.parts]
    naming = sorted(str(path.relative_to(REPO)) for path in files if "train_samples_per_s" in path.read_text())
    assert naming == ["bench/catalogue.py", "bench/schemas/cell.schema.json", "frameworks/child.py"]
    readers = [REPO / "bench" / "aggregate.py", REPO / "bench" / "display.py", REPO / "bench" / "session.py",
               *(REPO / "bench" / "report").glob("*.py"), *(REPO / "bench" / "templates").glob("*")]
    for metric in catalogue.CRITERIA:
        if metric is catalogue.ACCURACY:
            continue
        quoted = re.compile(rf"[\"']{metric.name}[\"']")
        assert not [path.name for path in readers if quoted.search(path.read_text())], metric.name
