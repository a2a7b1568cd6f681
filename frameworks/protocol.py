"""The hand-off between the harness and a cell's child process.

The parent writes a `CellConfig` as JSON and starts `python -m frameworks.child CONFIG.json` in the framework's
environment. The child prints progress events on stdout as lines starting with EVENT_PREFIX (anything else it or
its framework prints goes to the cell's log) and writes its outcome as one JSON document to `result_path`,
atomically. A child that dies before writing it is recorded from its exit status and log by the parent.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

EVENT_PREFIX = "@@bench-event "


@dataclass(frozen=True)
class CellConfig:
    run_id: str
    cell_id: str
    framework: str
    adapter: str  # "module:Class" of the framework's adapter (bench.registry)
    task: str
    dataset: str  # a dataset name, or "synthetic"
    data_folder: str | None  # where the dataset was found; None for synthetic data
    device: str
    mode: str
    repeat: int
    seed: int
    epochs: int
    batch_size: int
    train_samples: int | None  # None: the whole training set
    test_samples: int | None
    spawned_at: float  # the parent's time.time() just before starting the child: for the startup phase
    result_path: str
    parity_steps: int = 0  # > 0: a parity check (that many steps, dropout off), not a benchmark cell
    precision: str = "fp32"  # fp32, tf32, bf16 or fp16 (frameworks.spec.PRECISIONS)
    capacity_steps: int = 0  # > 0: a `bench capacity` try (that many steps at batch_size), not a benchmark cell

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_file(cls, path: str | Path) -> "CellConfig":
        return cls(**json.loads(Path(path).read_text()))


def emit(event: str, **fields) -> None:
    """Send one progress event to the parent."""
    sys.stdout.write(EVENT_PREFIX + json.dumps({"event": event, **fields}, default=str) + "\n")
    sys.stdout.flush()


def parse_event(line: str) -> dict | None:
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        return json.loads(line[len(EVENT_PREFIX):])
    except json.JSONDecodeError:
        return None


def write_json_atomic(path: str | Path, document: dict) -> None:
    """Write to a temporary file beside PATH, then rename: readers never see half a document."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=1, default=str))
    os.replace(temporary, path)
