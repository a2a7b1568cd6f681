"""Results on disk: `results/<run-id>/manifest.json`, `cells/<cell-id>.json`, `logs/<cell-id>.log`.

Each cell document is written atomically the moment its cell ends, so an interrupted run loses no finished cell.
Every document carries `schema_version`; readers check cell documents against bench/schemas/cell.schema.json,
migrate older versions and refuse newer ones with a message saying what to do.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from bench.metrics import apply_run_device_peak
from frameworks.errors import UserError
from frameworks.protocol import write_json_atomic
from frameworks.spec import TASKS

SCHEMA_VERSION = 4
SCHEMA_PATH = Path(__file__).parent / "schemas" / "cell.schema.json"


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def read_json(path: Path, what: str) -> dict:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no {what} there") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: corrupt {what} ({error})") from None
    if not isinstance(document, dict):
        raise UserError(f"{path}: corrupt {what} (expected a JSON object)")
    return document


def check_version(document: dict, path: Path) -> dict:
    """Migrate an older document to SCHEMA_VERSION; refuse a newer one."""
    version = document.get("schema_version")
    if not isinstance(version, int):
        raise UserError(f"{path}: not a bench results file (no schema_version)")
    if version > SCHEMA_VERSION:
        raise UserError(f"{path}: written by a newer bench (schema {version}, this one reads up to "
                        f"{SCHEMA_VERSION}); upgrade bench to read it")
    if version == 1:
        document = _update_to_2(document)
    if document["schema_version"] == 2:
        document = _update_to_3(document)
    if document["schema_version"] == 3:
        document = _update_to_4(document)
    return document


def _update_to_2(document: dict) -> dict:
    """Version 2 added confidence intervals, latency, inference by batch size, time-to-accuracy, sampled and NVML
    memory and FLOP/s; a version-1 record has none of them: they become null (not measured), never zero."""
    schema = json.loads(SCHEMA_PATH.read_text())
    document = {**document, "schema_version": 2}
    document.setdefault("gpu_policy", None)
    if isinstance(document.get("metrics"), dict):
        document["metrics"] = {**dict.fromkeys(schema["properties"]["metrics"]["properties"]), **document["metrics"]}
    return document


def _update_to_3(document: dict) -> dict:
    """Version 3 added the native mode, what ran (`execution`), loaded frameworks, threads, the compile-cache policy,
    contention, a PSS tree peak and one device peak per device. A version-2 record measured none of these: null.
    Its tree peak summed RSS (said in peak_host_tree_kind); its device peak was the framework's own matmul, kept
    as matmul_flops_per_s, so its utilisation (against that matmul) is dropped rather than shown beside ones that
    mean something else."""
    document = {**document, "schema_version": 3}
    for name in ("execution", "loaded_frameworks", "threads", "compile_cache", "contention"):
        document.setdefault(name, None)
    metrics = document.get("metrics")
    if isinstance(metrics, dict):
        metrics = dict(metrics)
        tree = metrics.pop("peak_host_rss_tree_bytes", None)
        startup, imported = metrics.get("startup_s"), metrics.get("import_s")
        metrics.update(peak_host_tree_bytes=tree, peak_host_tree_kind="rss" if tree is not None else None,
                       launch_s=startup + imported if startup is not None and imported is not None else None,
                       matmul_flops_per_s=metrics.get("device_peak_flops_per_s"), device_peak_flops_per_s=None,
                       device_peak_source=None, utilisation_percent=None)
        document["metrics"] = metrics
    return document


def _update_to_4(document: dict) -> dict:
    """Version 4 added the precision and batch-size axes, the node a cell ran on and its executor (local or a Ray
    cluster). Every earlier cell trained in float32 (TF32 off) on the run's machine (its manifest's), run locally;
    its batch was outside the spec exactly when it differs from the task's. A manifest's settings held one
    `batch_size` (bench.settings.RunSettings.from_dict reads it)."""
    document = {**document, "schema_version": 4}
    if "cell_id" in document:
        document.setdefault("node", None)  # the run's machine: the manifest says which (bench.report.content)
        document.setdefault("executor", None)
        document.setdefault("precision", "fp32")
        task = TASKS.get(document.get("task"))
        document.setdefault("batch_outside_spec", task is not None and document.get("batch_size") != task.batch_size)
    return document


def validate_cell(document: dict, path: Path) -> dict:
    document = check_version(document, path)
    error = next(iter(sorted(_validator().iter_errors(document), key=lambda e: e.path)), None)
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise UserError(f"{path}: invalid cell record at {where}: {error.message}")
    return document


def log_relative_path(cell_id: str) -> str:
    """Where a cell's log lives in its run folder, as its record names it."""
    return f"logs/{cell_id}.log"


class RunStore:
    """One run's folder."""

    def __init__(self, root: Path, run_id: str):
        self.run_id = run_id
        self.folder = Path(root) / run_id
        self.cells_folder = self.folder / "cells"
        self.logs_folder = self.folder / "logs"
        self.manifest_path = self.folder / "manifest.json"

    @classmethod
    def create(cls, root: Path, run_id: str, manifest: dict) -> "RunStore":
        store = cls(root, run_id)
        if store.folder.exists():
            raise UserError(f"{store.folder} already exists; resume it with --resume {run_id} or choose another --out")
        store.cells_folder.mkdir(parents=True)
        store.logs_folder.mkdir()
        write_json_atomic(store.manifest_path, {"schema_version": SCHEMA_VERSION, "run_id": run_id, **manifest})
        return store

    @classmethod
    def open(cls, root: Path, run_id: str) -> "RunStore":
        store = cls(root, run_id)
        if not store.manifest_path.is_file():
            known = sorted(path.parent.name for path in Path(root).glob("*/manifest.json"))
            raise UserError(f"no run {run_id!r} in {root}; runs there: {', '.join(known) or 'none'}")
        store.manifest()  # fail early on a corrupt manifest
        return store

    def manifest(self) -> dict:
        return check_version(read_json(self.manifest_path, "run manifest"), self.manifest_path)

    def update_manifest(self, **fields) -> None:
        write_json_atomic(self.manifest_path, {**self.manifest(), **fields})

    def cell_path(self, cell_id: str) -> Path:
        return self.cells_folder / f"{cell_id}.json"

    def log_path(self, cell_id: str) -> Path:
        return self.folder / log_relative_path(cell_id)

    def has_cell(self, cell_id: str) -> bool:
        return self.cell_path(cell_id).is_file()

    def write_cell(self, record: dict) -> None:
        path = self.cell_path(record["cell_id"])
        write_json_atomic(path, validate_cell(record, path))

    def cells(self) -> list[dict]:
        return apply_run_device_peak([validate_cell(read_json(path, "cell record"), path)
                                      for path in sorted(self.cells_folder.glob("*.json"))])

    def readable_cells(self) -> tuple[list[dict], list[tuple[Path, str]]]:
        """The cells that read and validate, and (path, why) for each that does not: a report shows what it can and
        lists the rest, where `cells` (the end of a run) stops at the first bad file."""
        cells, skipped = [], []
        for path in sorted(self.cells_folder.glob("*.json")):
            try:
                cells.append(validate_cell(read_json(path, "cell record"), path))
            except UserError as error:
                skipped.append((path, str(error).removeprefix(f"{path}: ")))
        return apply_run_device_peak(cells), skipped


def run_folder(path_or_id: str, root: Path) -> Path:
    """A run given as a folder path or as a run id under ROOT."""
    candidate = Path(path_or_id)
    return candidate if (candidate / "manifest.json").is_file() else Path(root) / path_or_id


def load_cells(runs: list[str], root: Path = Path("results")):
    """All cells of one or more runs as a pandas DataFrame, one row per cell, metrics flattened to columns."""
    import pandas as pd

    rows = []
    for run in runs:
        folder = run_folder(run, root)
        store = RunStore.open(folder.parent, folder.name)
        for cell in store.cells():
            row = {key: value for key, value in cell.items() if key not in ("metrics", "epochs_detail")}
            row.update({f"metrics.{key}": value for key, value in (cell.get("metrics") or {}).items()})
            row["epochs_detail"] = cell.get("epochs_detail")
            rows.append(row)
    return pd.DataFrame(rows)
